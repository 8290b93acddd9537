import CLinux
import Glibc
import Lisafs

/// Where scratch files live: unnamed (O_TMPFILE) plaintext files in one directory.
///
/// By default a private 0700 directory under /dev/shm, removed again by `close`;
/// an operator who wants a hard cap mounts a size-limited tmpfs and passes it.
/// Scratch files have no name, so nothing is left behind when the process dies.
final class ScratchSpace: @unchecked Sendable {
    let directoryFD: Int32
    /// The directory we created (and remove at close); nil for an operator's directory.
    private let privatePath: String?
    /// Whether a change made after an fstat always gets a ctime different from
    /// the one that fstat returned (multigrain timestamps, Linux ≥ 6.13 on tmpfs).
    /// Otherwise a change in the same clock tick as a commit can keep the ctime,
    /// and commits taken in that tick are re-examined (see ScratchFile.isRacy).
    let hasFineTimestamps: Bool

    init(path: String?) throws {
        var made: String? = nil
        let target: String
        if let path {
            target = path
        } else {
            var template = Array("/dev/shm/sealgofer-scratch-XXXXXX".utf8CString)
            guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw Errno.current
            }
            target = String(cString: created)
            made = target
        }
        let fd = clinux_openat(AT_FDCWD, target, O_RDONLY | Sys.directory | Sys.closeOnExec, 0)
        guard fd >= 0 else {
            let error = Errno.current
            if let made { unlinkat(AT_FDCWD, made, Sys.atRemoveDir) }
            throw error
        }
        directoryFD = fd
        privatePath = made
        hasFineTimestamps = ScratchSpace.probeFineTimestamps(fd)
    }

    /// A new empty scratch file, read-write.
    func create() throws -> Int32 {
        try Sys.check { clinux_open_tmpfile(directoryFD, 0o600) }
    }

    func close() {
        Sys.close(directoryFD)
        if let privatePath { unlinkat(AT_FDCWD, privatePath, Sys.atRemoveDir) }
    }

    /// Writes to one file twice per round with an fstat in between; if the ctime
    /// ever stays the same, timestamps are coarse.
    private static func probeFineTimestamps(_ dirFD: Int32) -> Bool {
        let fd = clinux_open_tmpfile(dirFD, 0o600)
        guard fd >= 0 else { return false }
        defer { Sys.close(fd) }
        var byte: UInt8 = 1
        for _ in 0..<20 {
            guard pwrite(fd, &byte, 1, 0) == 1, let first = try? Sys.fstat(fd) else { return false }
            guard pwrite(fd, &byte, 1, 0) == 1, let second = try? Sys.fstat(fd) else { return false }
            if first.st_ctim.tv_sec == second.st_ctim.tv_sec && first.st_ctim.tv_nsec == second.st_ctim.tv_nsec {
                return false
            }
        }
        return true
    }
}
