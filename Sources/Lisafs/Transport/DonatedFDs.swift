import CLinux
import Glibc

/// Helpers for FDs handed to the client with a response.
enum DonatedFDs {
    /// gVisor's server makes every donated FD non-blocking before sending it
    /// (`fdTracker.DonateFD`), and the sentry relies on that for host FDs it
    /// polls (named pipes, sockets). The flag lives on the open file
    /// description, so it is what the client sees. A failure is ignored: the
    /// FD is still usable, just blocking.
    static func makeNonBlocking(_ fds: [Int32]) {
        for fd in fds { _ = clinux_set_nonblocking(fd) }
    }

    /// Closes FDs the communicator owns once they have been sent (the kernel
    /// holds its own references to FDs in flight).
    static func closeAll(_ fds: [Int32]) {
        for fd in fds where fd >= 0 { _ = Glibc.close(fd) }
    }
}
