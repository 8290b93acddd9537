#if canImport(Glibc)
import Glibc
#endif

/// One response ready to send: MID, payload, and host FDs to donate (owned:
/// the communicator closes them after sending).
struct Response {
    var mid: UInt16
    var payload: [UInt8]
    var fds: [Int32]

    init<M: WireMessage>(_ mid: MID, _ message: M, fds: [Int32] = []) {
        self.mid = mid.rawValue
        self.payload = message.encoded()
        self.fds = fds
    }

    /// An Error (MID 0) response carrying `errno`.
    static func error(_ errno: Errno) -> Response {
        Response(.error, ErrorResp(errno))
    }
}

/// Closes FDs a failed handler will no longer donate.
func closeDonations(_ fds: [Int32]) {
    for fd in fds where fd >= 0 { _ = Glibc.close(fd) }
}
