#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Old files of finished replacing moves, kept by one worker to be overwritten as the new files
/// of its next moves instead of being deleted (Keys/README.md §10.2, "spare inodes").
///
/// Why: a replacing move otherwise allocates every page of the new file and frees every page of
/// the old one (on tmpfs: page-cache insertion, LRU and memory-cgroup accounting per page; on
/// ext4: block allocation and discard). That kernel work cost about a fifth of a move's CPU;
/// overwriting pages that already exist costs only the copy. (BENCHMARKS.md, issue 6.)
///
/// A spare is the `pending/<old>.unlink` entry of a move whose switch is done and whose old
/// sidecar is removed (with syncs: after the `syncfs` that made the switch durable). Its link
/// count is 1, so recovery would remove it and the old ID's metadata — nothing else. Taking it
/// renames it to `pending/<new>.new`, which recovery removes with the new ID's metadata: either
/// way a crash leaves nothing behind, and no name under data/ ever points at a spare.
final class SpareInodes {
    private let pendingFD: Int32
    private let owner: uid_t
    private let group: gid_t
    private var spares: [(name: String, length: UInt64, mapping: InodeMapping?)] = []
    private var bytes: UInt64 = 0
    private let maxFiles: Int
    private let maxBytes: UInt64
    /// Spares are written through a shared mapping only on tmpfs (and old files are read through
    /// one that a spare keeps: `InodeMapping`), whose page cache is the file: a
    /// file system that tracks writes to mapped pages (ext4's `page_mkwrite`) takes a
    /// write-protect fault on the first store to every page, which cost more than pwrite's copy
    /// (share of rotation CPU in AES: on ext4 60–63 % mapped, 72 % with pwrite; on tmpfs 73–74 %
    /// mapped, 71–72 % with pwrite).
    private let mappable: Bool
    /// Spares taken as new files (for the report and tests).
    private(set) var reused = 0

    /// `owner`/`group`: what a file freshly created in meta/pending gets. Only spares owned so are
    /// kept, so a reused inode needs the same `fchown` as a fresh one (never one this process may
    /// be refused).
    init(pendingFD: Int32, owner: uid_t, group: gid_t, maxFiles: Int, maxBytes: UInt64) {
        self.pendingFD = pendingFD; self.owner = owner; self.group = group
        self.maxFiles = maxFiles; self.maxBytes = maxBytes
        var fs = clinux_statfs()
        mappable = clinux_fstatfs(pendingFD, &fs) == 0 && fs.type == clinux_TMPFS_MAGIC
    }

    /// Keeps the `.unlink` entry `name` (an old file of `length` bytes, owned by `uid`/`gid`,
    /// maybe still mapped by `mapping`) as a spare. False: not wanted (pool full, other owner);
    /// the caller unlinks it.
    func keep(_ name: String, length: UInt64, uid: uid_t, gid: gid_t, mapping: InodeMapping?) -> Bool {
        guard uid == owner, gid == group, spares.count < maxFiles, bytes + length <= maxBytes else { return false }
        spares.append((name, length, mappable ? mapping : nil))
        bytes += length
        return true
    }

    /// A spare taken as a move's new file: open for reading and writing, no longer than the new
    /// file (exactly as long when `mappable`).
    struct Taken {
        let fd: Int32
        /// Every page of the file exists and writing through a shared mapping is cheaper than pwrite.
        let mappable: Bool
        /// The mapping the spare was read through as an old file, covering the new length (nil:
        /// map it afresh).
        let mapping: InodeMapping?
    }

    /// Whether old files should be read through an `InodeMapping` (it can become a spare's).
    var carriesMappings: Bool { mappable }

    /// Renames a spare to `stagedName` (which must not exist), opens it and cuts it to `length`
    /// bytes if it was longer; on tmpfs, if shorter, `fallocate`s the rest so that every page
    /// exists before it is mapped (the pages it had are reused: that is the point). Nil: no spare
    /// could be taken (none left, or it turned out unusable and is gone); the caller creates a
    /// fresh file under `stagedName`. Throws (nothing left behind) when the file system has no
    /// space for the extension.
    func take(as stagedName: String, length: UInt64) throws -> Taken? {
        while let spare = spares.popLast() {
            bytes -= spare.length
            let renamed = spare.name.withCString { old in
                stagedName.withCString { clinux_renameat2(pendingFD, old, pendingFD, $0, clinux_RENAME_NOREPLACE) }
            }
            guard renamed == 0 else { unlinkat(pendingFD, spare.name, 0); continue }
            let fd = openAt(pendingFD, stagedName, O_RDWR)
            var st = stat()
            guard fd >= 0 && fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_nlink == 1
                  && st.st_uid == owner && st.st_gid == group else {
                // Not what was kept (cannot happen while the store lock is held): never write into it.
                if fd >= 0 { close(fd) }
                unlinkat(pendingFD, stagedName, 0)
                continue
            }
            do {
                let allocated = try resize(fd: fd, from: st, to: length)
                reused += 1
                let mapping = allocated ? spare.mapping.flatMap { UInt64($0.length) >= length ? $0 : nil } : nil
                return Taken(fd: fd, mappable: allocated, mapping: mapping)
            } catch {
                close(fd)
                unlinkat(pendingFD, stagedName, 0)
                throw error
            }
        }
        return nil
    }

    /// True: every page of `[0, length)` exists, ready for a mapping. False: the file is to be
    /// written with pwrite (which extends it to `length`): not tmpfs, or no `fallocate`.
    private func resize(fd: Int32, from st: stat, to length: UInt64) throws -> Bool {
        let current = UInt64(st.st_size)
        if current > length {
            guard ftruncate(fd, off_t(length)) == 0 else { throw SealedStoreError.io("truncate a reused file", errno) }
        }
        guard mappable else { return false }
        // A hole (a sparse old file) would be allocated on the first write through the mapping,
        // where a full file system is SIGBUS: allocate all of it then, not just the extension.
        let whole = UInt64(st.st_blocks) * 512 < min(current, length)
        let from = whole ? 0 : min(current, length)
        guard from < length else { return true }
        if clinux_fallocate(fd, 0, Int64(from), Int64(length - from)) == 0 { return true }
        let e = errno
        if e == EOPNOTSUPP || e == ENOSYS { return false }   // pwrite extends it
        throw SealedStoreError.io("allocate a reused file", e)
    }

    /// Deletes every spare left (the end of a worker's run, or a failure).
    func drain() {
        for spare in spares { unlinkat(pendingFD, spare.name, 0) }
        spares = []
        bytes = 0
    }

    deinit { drain() }
}
