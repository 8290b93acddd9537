import CLinux
import Foundation
import Lisafs

/// `serve --listen PATH`: the socket is bound relative to its directory, so a
/// PATH longer than sockaddr_un's sun_path (107 bytes) works as long as its
/// last component fits; and the socket file is removed when the gofer exits,
/// however it ends, if it is still the one we bound. A helper process forked
/// before lock-down does the removal: the gofer's Landlock rules do not
/// reach the socket's directory.
enum ListenSocket {
    /// sizeof(sockaddr_un.sun_path), the terminating NUL included.
    static let sunPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    static func listen(at path: String) throws -> UnixListener {
        let (directory, name) = split(path)
        guard !name.isEmpty, name != ".", name != ".." else { throw Errno.EINVAL }
        let directoryFD = open(directory, clinux_O_PATH | clinux_O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw Errno.current }
        let listener: UnixListener
        do {
            if path.utf8.count < sunPathLength {
                listener = try UnixListener(path: path)
            } else {
                listener = try inDirectory(directoryFD) { try UnixListener(path: name) }
            }
        } catch {
            close(directoryFD)
            throw error
        }
        defer { close(directoryFD) }
        var info = stat()
        guard fstatat(directoryFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw Errno.current }
        let remover = clinux_spawn_socket_remover(directoryFD, name, UInt64(info.st_dev), UInt64(info.st_ino))
        guard remover > 0 else { throw Errno(-remover) }
        return listener
    }

    /// Directory and last component; "dir/" style trailing slashes are not socket names.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    /// Runs `body` with `directoryFD` as the working directory. The working
    /// directory is per process: only call this while no other thread resolves
    /// relative paths (serve's other threads use absolute paths or held FDs).
    private static func inDirectory<T>(_ directoryFD: Int32, _ body: () throws -> T) throws -> T {
        let previous = open(".", clinux_O_PATH | clinux_O_DIRECTORY | O_CLOEXEC)
        guard previous >= 0 else { throw Errno.current }
        defer { _ = fchdir(previous); close(previous) }
        guard fchdir(directoryFD) == 0 else { throw Errno.current }
        return try body()
    }

    /// For the passthrough server, which has no other signal handling: a
    /// termination signal ends it with exit status 0, as for the store server.
    /// Call before any other thread starts (the signals are blocked
    /// process-wide).
    static func exitOnTerminationSignals() {
        _ = clinux_block_termination_signals()
        let thread = Thread {
            _ = clinux_wait_termination_signal()
            exit(0)
        }
        thread.name = "sealgofer-signals"
        thread.start()
    }
}
