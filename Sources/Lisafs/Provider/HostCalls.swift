import CLinux
import Glibc

/// Throwing wrappers for the Linux calls every provider makes, shared so that
/// the FD-relative, no-follow discipline lives in one place. Providers extend
/// this type (as `Host` / `Sys`) with the calls only they need.
public enum HostCalls {
    public static let openPath = clinux_O_PATH
    public static let noFollow = clinux_O_NOFOLLOW
    public static let directory = clinux_O_DIRECTORY
    public static let closeOnExec = clinux_O_CLOEXEC
    public static let nonBlocking = clinux_O_NONBLOCK
    public static let atEmptyPath = clinux_AT_EMPTY_PATH
    public static let atSymlinkNoFollow = clinux_AT_SYMLINK_NOFOLLOW
    public static let atSymlinkFollow = clinux_AT_SYMLINK_FOLLOW
    public static let atRemoveDir = clinux_AT_REMOVEDIR

    /// Runs a call returning -1/errno, retrying on EINTR.
    @discardableResult
    public static func check<T: BinaryInteger>(_ call: () -> T) throws -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let err = errno
            if err == EINTR { continue }
            throw Errno(err)
        }
    }

    public static func close(_ fd: Int32) {
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// openat(dirFD, name, flags | O_CLOEXEC | O_NOFOLLOW, mode).
    public static func openAt(_ dirFD: Int32, _ name: FileName, flags: Int32, mode: UInt32 = 0) throws -> Int32 {
        try name.withCString { cName in
            try check { clinux_openat(dirFD, cName, flags | closeOnExec | noFollow, mode) }
        }
    }
}
