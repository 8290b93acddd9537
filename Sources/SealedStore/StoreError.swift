/// Errors of the sealed store. The CLI maps `.wrongKey`, `.keyringDamaged`, `.usage` and friends to
/// exit status 2 and `.damaged` to 1; the provider maps `.damaged` to EIO.
public enum SealedStoreError: Error, CustomStringConvertible, Equatable {
    /// The supplied key file or passphrase does not open this keyring.
    case wrongKey
    /// The keyring's bytes are not what was written (checksum or AEAD failure, bad structure).
    case keyringDamaged(String)
    /// `config` is malformed or does not match the keyring.
    case configDamaged(String)
    /// STORE is not a sealed store (missing config/keyring/data/meta).
    case notAStore(String)
    /// Another process holds the store's lock.
    case storeInUse
    /// Bad key file, bad option, bad argument to the API.
    case invalidArgument(String)
    /// Stored data failed authentication or is structurally wrong.
    case damaged(Damage)
    /// A system call failed.
    case io(String, Int32)
    /// The file was removed (removeFile) or its handle closed.
    case closed
    case `internal`(String)

    public var description: String {
        switch self {
        case .wrongKey: return "wrong key or passphrase"
        case .keyringDamaged(let why): return "keyring damaged: \(why)"
        case .configDamaged(let why): return "config damaged: \(why)"
        case .notAStore(let why): return "not a sealed store: \(why)"
        case .storeInUse: return "store is in use by another process"
        case .invalidArgument(let why): return why
        case .damaged(let d): return d.description
        case .io(let op, let e): return "\(op): \(String(cString: strerrorSafe(e)))"
        case .closed: return "file handle closed or file removed"
        case .internal(let why): return "internal error: \(why)"
        }
    }
}

/// One finding of damage: which file (by ID and, when known, path), which chunk, what.
public struct Damage: Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, Codable {
        case header = "header"                  // header malformed or MAC mismatch
        case unknownEpoch = "unknown-epoch"
        case missingSidecar = "missing-sidecar"
        case sidecar = "sidecar"                // sidecar malformed or MAC mismatch
        case sidecarMismatch = "sidecar-mismatch"
        case truncated = "truncated"
        case chunk = "chunk"                    // chunk failed authentication
        case journal = "journal"                // journal malformed or MAC mismatch
        case duplicateFileID = "duplicate-file-id"
        case orphanSidecar = "orphan-sidecar"
        case orphanJournal = "orphan-journal"
        case pendingOperation = "pending-operation"   // meta/pending entry recovery could not resolve
        case keyring = "keyring"
        case config = "config"
        case unreadable = "unreadable"
    }
    public var kind: Kind
    public var fileID: FileID?
    public var path: String?
    public var chunk: UInt64?
    public var detail: String

    public init(_ kind: Kind, fileID: FileID? = nil, path: String? = nil, chunk: UInt64? = nil, detail: String) {
        self.kind = kind; self.fileID = fileID; self.path = path; self.chunk = chunk; self.detail = detail
    }

    public var description: String {
        var s = "damaged"
        if let path { s += " \(path)" }
        if let fileID { s += " [file \(fileID.hex)]" }
        if let chunk { s += " chunk \(chunk)" }
        return s + ": \(kind.rawValue): \(detail)"
    }
}

#if canImport(Glibc)
import Glibc
#endif
func strerrorSafe(_ e: Int32) -> UnsafePointer<CChar> { UnsafePointer(strerror(e)) }
