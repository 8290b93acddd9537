import CLinux
import Glibc
import Lisafs
import SealedStore

/// Where scratch files live: unnamed (O_TMPFILE) plaintext files in one directory.
///
/// `serve` with CAP_SYS_ADMIN passes a private, size-limited tmpfs of its own
/// (`makePrivateTmpfs`), so the sandbox's writes through donated scratch FDs
/// hit ENOSPC at the cap instead of filling the host's /dev/shm. Otherwise a
/// private 0700 directory under /dev/shm, removed again by `close`; an operator
/// who wants a hard cap then mounts a size-limited tmpfs and passes it.
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
        if let path, let held = ScratchSpace.descriptor(named: path) {
            // A directory without a path (the detached tmpfs): use the held
            // descriptor itself; resolving /proc/self/fd needs /proc access a
            // non-dumpable process may not have.
            let fd = fcntl(held, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else { throw Errno.current }
            directoryFD = fd
            privatePath = nil
            hasFineTimestamps = ScratchSpace.probeFineTimestamps(fd)
            return
        }
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

    /// N for a path "/proc/self/fd/N" naming an open directory of this process.
    static func descriptor(named path: String) -> Int32? {
        let prefix = "/proc/self/fd/"
        guard path.hasPrefix(prefix), let fd = Int32(path.dropFirst(prefix.count)), fd >= 0,
              let info = try? Sys.fstat(fd), (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return fd
    }

    /// Empty scratch files made ahead by a background thread (nil: none), each
    /// with its fstat taken right after it was made.
    private var stock: RefillingStock<Made>?
    private let stockLock = Mutex()

    /// A new empty scratch file and, when it was made ahead, its stat then
    /// (nothing has touched it since).
    struct Made {
        let fd: Int32
        let stat: stat?
    }

    /// A new empty scratch file, read-write.
    func create() throws -> Int32 {
        try Sys.check { clinux_open_tmpfile(directoryFD, 0o600) }
    }

    /// A new empty scratch file: from the stock when there is one.
    func take() throws -> Made {
        if let made = stockLock.withLock({ stock })?.take() { return made }
        return Made(fd: try create(), stat: nil)
    }

    /// Keeps up to `capacity` empty scratch files ready (one descriptor each).
    func startStock(capacity: Int) {
        guard capacity > 0 else { return }
        let dir = directoryFD
        let made = RefillingStock<Made>(name: "sealgofer-scratch-pool", capacity: capacity) {
            let fd = clinux_open_tmpfile(dir, 0o600)
            guard fd >= 0 else { throw Errno.current }
            guard let st = try? Sys.fstat(fd) else { Sys.close(fd); throw Errno.EIO }
            return Made(fd: fd, stat: st)
        }
        let old: RefillingStock<Made>? = stockLock.withLock {
            defer { stock = made }
            return stock
        }
        if let old { for m in old.stop() { Sys.close(m.fd) } }
    }

    /// Stops the stock (its files have no name: closing them is all).
    func stopStock() {
        let old: RefillingStock<Made>? = stockLock.withLock {
            defer { stock = nil }
            return stock
        }
        if let old { for m in old.stop() { Sys.close(m.fd) } }
    }

    func close() {
        stopStock()
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

/// A private tmpfs for scratch files (see ScratchSpace).
public enum ScratchTmpfs {
    /// The bytes a private scratch tmpfs may hold for `scratchLimit`: the
    /// limit plus an eighth and 4 MiB for what the limit's accounting does not
    /// see (page rounding of every file, scratches being filled while others
    /// are evicted).
    public static func tmpfsSize(scratchLimit: UInt64) -> UInt64 {
        let (sum, overflow) = scratchLimit.addingReportingOverflow(scratchLimit / 8 + (4 << 20))
        return overflow ? UInt64.max / 2 : sum
    }

    /// A private tmpfs for scratch files, sized by `tmpfsSize`: mounted nowhere,
    /// so no other process sees it and it vanishes with the last descriptor.
    /// Returns a directory descriptor; pass it on as `"/proc/self/fd/N"`
    /// (`SealedProvider.Options.scratchDirectory`). Throws EPERM without CAP_SYS_ADMIN, ENOSYS
    /// before Linux 5.2.
    public static func makePrivateTmpfs(scratchLimit: UInt64) throws -> Int32 {
        let fd = clinux_private_tmpfs(tmpfsSize(scratchLimit: scratchLimit))
        guard fd >= 0 else { throw Errno(-fd) }
        return fd
    }

    /// Whether a private tmpfs should take the place of an operator's (or
    /// `run`'s) scratch `directory`: yes when it is on a tmpfs (so the scratch
    /// was meant to be in RAM anyway) larger than the private one would be,
    /// such as /dev/shm; no for a disk, which is a deliberate choice, and for
    /// a tmpfs at least as small, which already caps the sandbox's writes.
    public static func shouldReplace(_ directory: String, scratchLimit: UInt64) -> Bool {
        let fd = clinux_openat(AT_FDCWD, directory, Sys.openPath | Sys.directory | Sys.closeOnExec, 0)
        guard fd >= 0 else { return false }
        defer { Sys.close(fd) }
        var info = clinux_statfs()
        guard clinux_fstatfs(fd, &info) == 0, info.type == clinux_TMPFS_MAGIC else { return false }
        let (capacity, overflow) = info.blocks.multipliedReportingOverflow(by: UInt64(max(info.bsize, 0)))
        return overflow || capacity > tmpfsSize(scratchLimit: scratchLimit)
    }
}
