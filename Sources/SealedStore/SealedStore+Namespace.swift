#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Creating and removing files so that a crash at any instant leaves either the state before or
/// the state after the operation, once `open` has run recovery (Keys/README.md §7.1).
///
/// Create: the new inode is made in meta/pending as `<id>.new` with its complete header, then its
/// sidecar, then `<id>.new` is renamed to its name under data/ (the instant it becomes visible,
/// with its sidecar already there; RENAME_NOREPLACE, or link then unlink where the filesystem
/// lacks it). Recovery drops a `.new` whose link count is 1. With a creation pool
/// (`startCreationPool`) the first two steps are done ahead of time by a background thread.
///
/// Removal of a name: `removingLink` first hard-links the inode as meta/pending/`<id>.unlink`, runs
/// the caller's unlink or rename, and then knows from the link count whether a name is left. If
/// none is, the metadata goes (at the last close if the file is still open, recorded meanwhile by
/// `<id>.gone`), then the `.unlink` link. Recovery finishes the removal of any `.unlink` entry
/// whose link count is 1, and of every `.gone`.
extension SealedStore {
    // MARK: Create

    /// Creates a new empty ciphertext file `name` in `directory` (an FD under data/), with a fresh
    /// file ID, its header and its sidecar; `name` must not exist (EEXIST otherwise). The file
    /// appears under its name complete, or not at all. `prepare` runs on the new file's FD before
    /// it is linked there (fchown, fchmod: the file never shows under its name with other owners).
    public func createFile(in directory: Int32, name: String, mode: UInt32 = 0o644,
                           prepare: ((Int32) throws -> Void)? = nil) throws -> SealedFile {
        try createFile(in: directory, nameBytes: Array(name.utf8), mode: mode, prepare: prepare)
    }

    /// `createFile` for a name given as bytes, which need not be UTF-8 (the sandbox's names are
    /// bytes): no temporary name, so nothing but the final name ever appears under data/.
    public func createFile(in directory: Int32, nameBytes name: [UInt8], mode: UInt32 = 0o644,
                           prepare: ((Int32) throws -> Void)? = nil) throws -> SealedFile {
        let pool = try openCreationPool()
        guard !name.isEmpty, !name.contains(0) else { throw SealedStoreError.invalidArgument("invalid file name") }
        if let pool, let entry = pool.take(epoch: keyring.currentEpoch) {
            return try createFromPool(entry, pool, in: directory, name: name, mode: mode, prepare: prepare)
        }
        let p = try beginCreate(mode: mode)
        do {
            try prepare?(p.fd)
            try linkPending(p.id, sidecar: p.sidecar.serialize(keys: p.keys), in: directory, name: name)
            let inode = try InodeKey(fd: p.fd)
            return register(SealedFile(store: self, fd: p.fd, inode: inode, header: p.header, keys: p.keys, sidecar: p.sidecar))
        } catch {
            abandonPending(p.id, error: error)
            if !(error is SimulatedCrash) { Glibc.close(p.fd) }
            throw error
        }
    }

    /// A create served by the creation pool: the entry already has its header and sidecar, so
    /// what is left is what the requester decides (mode, owner) and the rename (§7.1 step 3).
    private func createFromPool(_ entry: CreationPool.Entry, _ pool: CreationPool, in directory: Int32, name: [UInt8],
                                mode: UInt32, prepare: ((Int32) throws -> Void)?) throws -> SealedFile {
        let p = entry.pending
        do {
            // As open(2) with `mode` would have made it.
            let wanted = mode & 0o7777 & ~pool.umask
            pool.noteRequestedMode(wanted)
            if wanted != entry.mode { guard fchmod(p.fd, mode_t(wanted)) == 0 else { throw SealedStoreError.io("chmod a new file", errno) } }
            // Made a while ago: it must look made now (atime, mtime; the rename sets the ctime).
            guard futimens(p.fd, nil) == 0 else { throw SealedStoreError.io("set the times of a new file", errno) }
            try prepare?(p.fd)
            try namePending(p.id, in: directory, name: name)
        } catch {
            pool.discard(entry)
            throw error
        }
        do {
            try TestHooks.step(.createLinked)
        } catch {
            if !(error is SimulatedCrash) {
                _ = (name + [0]).withUnsafeBufferPointer { n in n.withMemoryRebound(to: CChar.self) { unlinkat(directory, $0.baseAddress!, 0) } }
                try? layout.removeSidecar(p.id)
                Glibc.close(p.fd)
            }
            throw error
        }
        return register(SealedFile(store: self, fd: p.fd, inode: entry.inode, header: p.header, keys: p.keys, sidecar: p.sidecar))
    }

    /// Starts the creation pool: a background thread keeps up to `capacity` new files ready
    /// (each holds one descriptor), so that `createFile` only renames one. No-op when it runs
    /// already. Stopped, and its entries removed, by `close`. Not for readonly use: every entry
    /// is a file in the store.
    public func startCreationPool(capacity: Int) {
        guard capacity > 0, (try? checkOpen()) != nil else { return }
        let pool = CreationPool(maker: pendingFileMaker, capacity: min(capacity, 256), umask: Self.processUmask())
        if !installCreationPool(pool) { pool.stop(removingEntries: true) }
    }

    /// The process umask, from /proc/self/status, which reads it without changing it: setting
    /// and restoring it would give files another thread creates meanwhile the wrong mode. Without
    /// /proc, the set-and-restore it is (at start-up, before anything else creates files).
    static func processUmask() -> UInt32 {
        if let bytes = try? readSmallFile(path: "/proc/self/status", limit: 1 << 16),
           let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
           let mask = UInt32(line.dropFirst("Umask:".count).filter { $0 != "\t" && $0 != " " }, radix: 8) {
            return mask
        }
        let mask = Glibc.umask(0o077)
        Glibc.umask(mask)
        return UInt32(mask)
    }

    /// Entries in the creation pool now (0 without one).
    public var creationPoolCount: Int { ((try? openCreationPool()) ?? nil)?.count ?? 0 }

    /// Files the creation pool made so far and its failed attempts.
    public var creationPoolStatistics: (made: Int, failures: Int) {
        ((try? openCreationPool()) ?? nil)?.statistics ?? (0, 0)
    }

    /// Waits up to `seconds` for the creation pool to be full (tests, benchmarks).
    @discardableResult
    public func waitForFullCreationPool(seconds: Double) -> Bool {
        ((try? openCreationPool()) ?? nil)?.waitUntilFull(seconds: seconds) ?? false
    }

    /// The bulk path of `import`: a file that stays in meta/pending while its chunks are appended
    /// (`SealedFile.appendBulk`) and is linked under data/ by `SealedFile.finishBulk`. An import
    /// killed half-way leaves no partial file under data/.
    func createPendingFile(mode: UInt32) throws -> SealedFile {
        try checkOpen()
        let p = try beginCreate(mode: mode)
        do {
            let file = SealedFile(store: self, fd: p.fd, inode: try InodeKey(fd: p.fd), header: p.header, keys: p.keys, sidecar: p.sidecar)
            file.isPendingCreate = true
            return register(file)
        } catch {
            abandonPending(p.id, error: error)
            Glibc.close(p.fd)
            throw error
        }
    }

    struct PendingFile {
        let fd: Int32
        let id: FileID
        let header: FileHeader
        let keys: FileKeys
        let sidecar: Sidecar
    }

    /// meta/pending/<id>.new, created exclusively, with its complete header.
    private func beginCreate(mode: UInt32) throws -> PendingFile {
        try pendingFileMaker.begin(mode: mode, hooks: true)
    }

    /// Creates the sidecar of pending file `id`, gives the file its name `directory/name`
    /// (meta/pending/<id>.new goes with it). On failure everything is undone (the pending entry last).
    func linkPending(_ id: FileID, sidecar: [UInt8], in directory: Int32, name: [UInt8]) throws {
        var sidecarCreated = false, named = false
        do {
            try createFileAt(try layout.sidecarDirectory(id), StoreLayout.sidecarName(id), sidecar, sync: options.orderingSyncs)
            sidecarCreated = true
            try TestHooks.step(.createSidecar)
            try namePending(id, in: directory, name: name)
            named = true
            try TestHooks.step(.createLinked)
        } catch {
            if !(error is SimulatedCrash) {
                if named {
                    _ = (name + [0]).withUnsafeBufferPointer { n in n.withMemoryRebound(to: CChar.self) { unlinkat(directory, $0.baseAddress!, 0) } }
                }
                if sidecarCreated { try? layout.removeSidecar(id) }
            }
            abandonPending(id, error: error)
            throw error
        }
    }

    /// §7.1 step 3 (and 4): meta/pending/<id>.new becomes `directory/name` in one rename that
    /// fails with EEXIST if the name exists (RENAME_NOREPLACE). Where the filesystem has no
    /// RENAME_NOREPLACE (EINVAL), a hard link then the unlink of the entry, as format 1 first
    /// did: recovery treats a `.new` with a second link as a finished create.
    func namePending(_ id: FileID, in directory: Int32, name: [UInt8]) throws {
        let pending = PendingKind.new.name(id)
        let result: Int32 = (name + [0]).withUnsafeBufferPointer { n in
            n.withMemoryRebound(to: CChar.self) { target in
                if clinux_renameat2(layout.pendingFD, pending, directory, target.baseAddress!, clinux_RENAME_NOREPLACE) == 0 { return 0 }
                guard errno == EINVAL || errno == ENOSYS else { return errno }
                guard linkat(layout.pendingFD, pending, directory, target.baseAddress!, 0) == 0 else { return errno }
                // Done: a failure here only leaves an entry the next open removes.
                unlinkat(layout.pendingFD, pending, 0)
                return 0
            }
        }
        guard result == 0 else { throw SealedStoreError.io("create \(String(decoding: name, as: UTF8.self))", result) }
    }

    /// Removes meta/pending/<id>.new after a failed create (not after a simulated crash).
    func abandonPending(_ id: FileID, error: Error) {
        guard !(error is SimulatedCrash) else { return }
        unlinkat(layout.pendingFD, PendingKind.new.name(id), 0)
    }

    // MARK: Remove

    /// Runs `operation` — an unlinkat of a name of the ciphertext file behind `victim`, or a
    /// rename over it — so that a crash at any instant leaves the file either still named with its
    /// metadata, or gone with its metadata (after the next open's recovery). `victim` is any FD of
    /// the file (O_PATH included), opened before the operation. Returns true when the file has no
    /// name left: its sidecar and journal are removed now, or at its last `close()` if it is open.
    /// A victim that is not a store file (no header) just has `operation` run.
    @discardableResult
    public func removingLink(of victim: Int32, _ operation: () throws -> Void) throws -> Bool {
        try checkOpen()
        var st = stat()
        guard fstat(victim, &st) == 0 else { throw SealedStoreError.io("fstat", errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { try operation(); return false }
        let key = InodeKey(st)
        // Removals of one inode run one at a time: each counts its own pending link.
        return try removalStripes[Int(key.ino % UInt64(removalStripes.count))].locked {
            guard let id = registeredID(key) ?? headerFields(of: victim)?.fileID else {
                try operation()
                return try linkCount(victim) == 0
            }
            let linked = !TestHooks.noPendingLinks && linkIntoPending(victim, PendingKind.unlink.name(id))
            let kind: PendingKind = linked ? .unlink : .unlinking
            if !linked { try layout.createRecord(id, .unlinking) }
            do {
                try TestHooks.step(.unlinkIntent)
                try operation()
            } catch {
                if !(error is SimulatedCrash) { try? layout.removeRecord(id, kind) }
                throw error
            }
            // From here on a failure leaves the intent in place: the next open finishes the removal.
            try TestHooks.step(.unlinkDone)
            let names = try linkCount(victim) - (linked ? 1 : 0)
            if names > 0 {
                try layout.removeRecord(id, kind)
                return false
            }
            try removeUnnamed(key, id: id)
            try TestHooks.step(.metadataRemoved)
            try layout.removeRecord(id, kind)
            return true
        }
    }

    /// Removes the sidecar and any journal of a file whose last link is already gone (prefer
    /// `removingLink`, which leaves no window for a crash between the unlink and this call). If
    /// the file is open, removal happens when its last handle closes.
    public func removeFile(_ id: FileID) throws {
        try checkOpen()
        if let open = retainForRemoval(id: id) { try deferRemoval(open) } else { try layout.removeAllMetadata(id) }
    }

    /// `removeFile` for the file behind `descriptor` (e.g. an FD kept across its last unlinkat):
    /// the ID is read from the header (no authentication needed to delete).
    public func removeFile(descriptor: Int32) throws {
        try checkOpen()
        let key = try InodeKey(fd: descriptor)
        if let open = retainForRemoval(key) { try deferRemoval(open); return }
        guard let header = headerFields(of: descriptor) else {
            throw SealedStoreError.damaged(Damage(.header, detail: "malformed header"))
        }
        try layout.removeAllMetadata(header.fileID)
    }

    /// The file behind `key` has no name left: remove its metadata now, or record `.gone` and let
    /// its last `close()` do it.
    private func removeUnnamed(_ key: InodeKey, id: FileID) throws {
        if let open = retainForRemoval(key) {
            try deferRemoval(open)
        } else {
            try layout.removeAllMetadata(id)
        }
    }

    /// Marks an open file (retained by `retainForRemoval`) for removal and drops that retain.
    private func deferRemoval(_ file: SealedFile) throws {
        do {
            try file.markPendingRemoval()
        } catch let crash as SimulatedCrash {
            throw crash   // a dead process closes nothing
        } catch {
            file.close()
            throw error
        }
        file.close()
    }

    /// Deletes the metadata of a removed file (all IDs it had while pending removal), then its
    /// `.gone` records. Called at its last close.
    func completeRemoval(_ ids: [FileID], recorded: Set<FileID>) throws {
        for id in ids { try layout.removeAllMetadata(id) }
        try TestHooks.step(.metadataRemoved)
        for id in recorded { try layout.removeRecord(id, .gone) }
    }

    // MARK: Helpers

    /// The unauthenticated header of the file behind `descriptor` (O_PATH descriptors are reopened
    /// through /proc/self/fd to read it).
    func headerFields(of descriptor: Int32) -> FileHeader? {
        var bytes = (try? readBytes(fd: descriptor, count: FileHeader.length, offset: 0, what: "read header")) ?? []
        if bytes.count < FileHeader.length {
            let fd = Glibc.open("/proc/self/fd/\(descriptor)", O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { return nil }
            defer { Glibc.close(fd) }
            bytes = (try? readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")) ?? []
        }
        return FileHeader.parseFields(bytes)
    }

    /// Hard-links the inode behind `fd` as meta/pending/`name`. AT_EMPTY_PATH needs
    /// CAP_DAC_READ_SEARCH; the /proc/self/fd magic link does not.
    private func linkIntoPending(_ fd: Int32, _ name: String) -> Bool {
        let atEmptyPath: Int32 = 0x1000
        if linkat(fd, "", layout.pendingFD, name, atEmptyPath) == 0 { return true }
        return linkat(AT_FDCWD, "/proc/self/fd/\(fd)", layout.pendingFD, name, AT_SYMLINK_FOLLOW) == 0
    }

    private func linkCount(_ fd: Int32) throws -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SealedStoreError.io("fstat", errno) }
        return UInt64(st.st_nlink)
    }
}
