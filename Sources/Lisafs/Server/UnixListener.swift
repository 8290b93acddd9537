import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Listener mode: accepts connections on an AF_UNIX stream socket bound at a
/// path; each accepted connection is one more mount served on its own thread.
public final class UnixListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    /// Binds and listens at `path`. A stale socket file left at `path` is
    /// replaced; any other kind of file there is an error (EADDRINUSE).
    public init(path: String, backlog: Int32 = 64) throws {
        self.path = path
        let socket = clinux_unix_socket(Int32(SOCK_STREAM.rawValue))
        guard socket >= 0 else { throw Errno.current }
        var existing = stat()
        if lstat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFSOCK {
            unlink(path)
        }
        guard clinux_unix_bind(socket, path) == 0, Glibc.listen(socket, backlog) == 0 else {
            let error = Errno.current
            _ = Glibc.close(socket)
            throw error
        }
        fd = socket
    }

    deinit { _ = Glibc.close(fd) }

    /// Accepts until `stop()`; every connection is served by `server` on a new
    /// thread. Returns after `stop()` (or if accept fails for good).
    public func run<P: Provider>(serving server: Server<P>) {
        while true {
            let connection = clinux_accept_cloexec(fd)
            if connection < 0 {
                let err = errno
                if err == ECONNABORTED || err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM {
                    server.logger.warning("lisafs listener: accept failed: errno \(err)")
                    if err != ECONNABORTED { usleep(100_000) }
                    continue
                }
                return  // stopped (EINVAL after shutdown) or unusable
            }
            do {
                try server.start(connectionFD: connection)
            } catch {
                server.logger.warning("lisafs listener: cannot start connection: \(error)")
                _ = Glibc.close(connection)
            }
        }
    }

    /// Wakes `run` and makes it return; removes the socket file.
    public func stop() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        unlink(path)
    }
}
