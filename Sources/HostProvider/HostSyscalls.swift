import CLinux
import Glibc
import Lisafs

/// Small wrappers that turn Linux calls into throwing Swift calls. Every call
/// here is relative to an FD; none resolves a path from the process root
/// except the fixed "/proc/self/fd" directory opened once at start.
typealias Host = HostCalls

extension HostCalls {
    static let noControllingTTY = O_NOCTTY

    /// Sets or clears O_NONBLOCK on the open file description of `fd`.
    static func setNonBlocking(_ fd: Int32, _ on: Bool) throws {
        let flags = try check { clinux_fcntl_int(fd, F_GETFL, 0) }
        let wanted = on ? flags | nonBlocking : flags & ~nonBlocking
        if wanted != flags { try check { clinux_fcntl_int(fd, F_SETFL, wanted) } }
    }

    static func dup(_ fd: Int32) throws -> Int32 {
        try check { clinux_fcntl_int(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// statx of the file `fd` refers to (not following a symlink it refers to).
    static func stat(_ fd: Int32) throws -> Statx {
        var raw = clinux_statx()
        try check { clinux_statx(fd, "", atEmptyPath | atSymlinkNoFollow, clinux_STATX_BASIC_STATS | clinux_STATX_BTIME, &raw) }
        return Statx(raw)
    }

    /// The st_dev of `name` in `dirFD` (for Dirent64), without following symlinks.
    static func device(of name: UnsafePointer<CChar>, in dirFD: Int32) -> (major: UInt32, minor: UInt32)? {
        var raw = clinux_statx()
        guard clinux_statx(dirFD, name, atSymlinkNoFollow, 0, &raw) == 0 else { return nil }
        return (raw.dev_major, raw.dev_minor)
    }
}
