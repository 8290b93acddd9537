import Glibc
import Lisafs

extension HostProvider {
    /// A control-FD handle: one host FD on the file, opened without following
    /// symlinks. Directories and regular files get a readable FD when
    /// permissions allow (needed for f*xattr); everything else, and anything
    /// unreadable, an O_PATH FD.
    public final class Node: @unchecked Sendable {
        public let fd: Int32
        public let fileType: UInt32
        /// True for an O_PATH FD (no I/O, no f*xattr, no fchmod on it).
        public let isPathOnly: Bool
        /// Lazily opened O_WRONLY FD for ftruncate (regular files only).
        private var writableFD: Int32 = -1
        private let lock = Mutex()

        init(fd: Int32, fileType: UInt32, isPathOnly: Bool) {
            self.fd = fd
            self.fileType = fileType
            self.isPathOnly = isPathOnly
        }

        /// The writable FD, opened once through /proc/self/fd.
        func writable(reopen: (Int32, Int32) throws -> Int32) throws -> Int32 {
            try lock.withLock {
                if writableFD < 0 { writableFD = try reopen(fd, O_WRONLY) }
                return writableFD
            }
        }

        func closeAll() {
            Host.close(fd)
            lock.withLock {
                Host.close(writableFD)
                writableFD = -1
            }
        }
    }

    /// An open-FD handle: a host FD opened with the client's access mode.
    public final class OpenFile: @unchecked Sendable {
        public let fd: Int32
        init(fd: Int32) { self.fd = fd }
    }

    /// A bound AF_UNIX socket. `fd` is non-blocking and never leaves the
    /// gofer; the client gets a dup of `notificationFD`, an epoll instance
    /// watching `fd` for pending connections once it listens.
    public final class BoundSocket: @unchecked Sendable {
        public let fd: Int32
        let notificationFD: Int32
        init(fd: Int32, notificationFD: Int32) {
            self.fd = fd
            self.notificationFD = notificationFD
        }
    }
}
