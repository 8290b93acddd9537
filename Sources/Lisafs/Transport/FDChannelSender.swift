import CLinux
import Glibc

/// The server end of gVisor's fdchannel: a SOCK_SEQPACKET socket on which
/// every FD travels alone, as SCM_RIGHTS on a zero-length datagram. The
/// client reads them with `RecvFDNonblock` after it sees the response, so
/// they must be queued before the response is published.
final class FDChannelSender {
    let fd: Int32

    /// Takes ownership of `fd`.
    init(fd: Int32) { self.fd = fd }

    deinit { _ = Glibc.close(fd) }

    /// Sends `fds` in order and returns how many went. Stops at the first
    /// failure, because the client matches FDs to slots by position. Never
    /// blocks: a client that stops draining its queue only loses donations
    /// (the response says how many were sent), it cannot stall the server.
    func send(_ fds: [Int32]) -> Int {
        var sent = 0
        var empty: UInt8 = 0
        for var donated in fds {
            while true {
                let n = clinux_send_with_fds(fd, &empty, 0, &donated, 1, Int32(MSG_DONTWAIT))
                if n >= 0 { break }
                if errno == EINTR { continue }
                return sent
            }
            sent += 1
        }
        return sent
    }

    /// True unless the client's end is closed (its process died, or it
    /// destroyed the channel).
    var peerIsAlive: Bool { clinux_peer_hung_up(fd) == 0 }
}
