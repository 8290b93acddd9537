import Lisafs
import SealedStore

extension Errno {
    /// The errno a client sees for a failure of the sealed store: the system
    /// call's errno for I/O failures (ENOSPC, EIO, EDQUOT…), EIO for anything that
    /// failed authentication or is structurally wrong (never wrong plaintext).
    static func fromStore(_ error: Error) -> Errno {
        if let errno = error as? Errno { return errno }
        guard let storeError = error as? SealedStoreError else { return .EIO }
        switch storeError {
        case .io(_, let code): return code > 0 ? Errno(code) : .EIO
        case .invalidArgument: return .EINVAL
        default: return .EIO
        }
    }
}

extension SealedStoreError {
    /// True when a `SealedFile` handle was invalidated (a commit failed after its
    /// commit point; reopening replays the journal).
    var isClosedHandle: Bool {
        if case .closed = self { return true }
        return false
    }
}
