import CLinux
import Glibc
import Lisafs
import Logging
import SealedStore

/// Everything the provider keeps about one ciphertext file while it is open or
/// cached: its store handle and either a scratch or a direct (RPC) state.
///
/// Locking: `lock` guards every field below it; the registry's fields are
/// guarded by the registry's lock. Order: an inode's `lock` may be held while
/// taking the registry's lock, never the reverse; two inode locks are only ever
/// combined through `tryLocked` (eviction), so no cycle can form.
final class SealedInode: @unchecked Sendable {
    enum Mode {
        /// Acquired, nothing loaded yet (or only the store handle, for a resize).
        case unloaded
        case scratch(ScratchFile)
        case direct(DirectFile)
        /// Released: every later use fails with EIO.
        case disposed
    }

    let key: InodeKey
    /// O_PATH descriptor of the ciphertext file (owned; closed by dispose).
    let pathFD: Int32
    unowned let context: ProviderContext
    let lock = Mutex()

    // Guarded by the registry's lock.
    var references = 0
    /// Neighbours in the registry's list of unused entries (strong forward, weak back: no cycle).
    var newerUnused: SealedInode?
    weak var olderUnused: SealedInode?

    // Guarded by `lock`.
    var mode: Mode = .unloaded
    var sealed: SealedFile?
    var digester: ChangeDigester?
    var openCount = 0
    /// Set once a writable open exists: until then nothing can differ from the commit.
    var everWritable = false
    /// The last commit failed: the entry holds data that must not be dropped.
    var commitFailed = false
    /// Commits made without `durable` since the last durable one (FSync must sync them).
    var hasUnsyncedCommits = false
    /// The file's last link is gone: nothing is committed any more.
    var isUnlinked = false
    /// Scratch bytes this entry has counted in the registry's usage.
    var accountedBytes: Int64 = 0

    init(key: InodeKey, pathFD: Int32, context: ProviderContext) {
        self.key = key
        self.pathFD = pathFD
        self.context = context
    }

    var logger: Logger { context.logger }

    // MARK: State queries (lock held)

    var isDisposed: Bool { if case .disposed = mode { return true }; return false }

    /// Whether the entry must stay registered when no open file uses it: a clean
    /// scratch is worth keeping as a cache; uncommitted data must never be dropped.
    var keepWhenUnusedLocked: Bool {
        if isUnlinked { return false }
        if commitFailed { return true }
        if case .direct(let d) = mode, d.isDirty { return true }
        if case .scratch = mode { return true }
        return false
    }

    /// Whether eviction may dispose the entry now.
    var isEvictableLocked: Bool {
        if commitFailed && !isUnlinked { return false }
        if case .direct(let d) = mode, d.isDirty, !isUnlinked { return false }
        return true
    }

    /// Plaintext size, blocks and the scratch's times, or nil when nothing is loaded.
    func liveStatLocked() -> (size: UInt64, blocks: UInt64, mtime: timespec?, ctime: timespec?)? {
        switch mode {
        case .scratch(let s):
            guard let st = try? Sys.fstat(s.fd) else { return nil }
            updateAccountingLocked(Int64(st.st_size))
            let changed = st.st_ctim.tv_sec != s.filledCtime.tv_sec || st.st_ctim.tv_nsec != s.filledCtime.tv_nsec
            return (UInt64(max(0, st.st_size)), UInt64(max(0, st.st_blocks)), st.st_mtim, changed ? st.st_ctim : nil)
        case .direct(let d):
            return (d.logicalSize, (d.logicalSize + 511) / 512, nil, nil)
        case .unloaded, .disposed:
            return nil
        }
    }

    // MARK: Store handle

    /// The store handle, opened on first use.
    func sealedLocked() throws -> SealedFile {
        if let sealed { return sealed }
        guard !isDisposed else { throw Errno.EIO }
        do {
            let file = try context.store.openFile(descriptor: pathFD)
            sealed = file
            return file
        } catch {
            throw Errno.fromStore(error)
        }
    }

    /// Runs a read-only operation on the store handle, reopening it once if an
    /// earlier failed commit invalidated it.
    func withSealedLocked<T>(_ body: (SealedFile) throws -> T) throws -> T {
        do {
            return try body(try sealedLocked())
        } catch let error as SealedStoreError where error.isClosedHandle {
            try reopenSealedLocked()
            do { return try body(try sealedLocked()) } catch { throw Errno.fromStore(error) }
        } catch {
            throw Errno.fromStore(error)
        }
    }

    /// Replaces an invalidated handle by a fresh one (the store replays the
    /// interrupted commit's journal) and re-learns what is committed.
    func reopenSealedLocked() throws {
        sealed?.close()
        sealed = nil
        let file = try sealedLocked()
        switch mode {
        case .scratch(let s):
            var digests: [ChangeDigest] = []
            if let digester {
                do {
                    try file.readChunks(0..<file.chunkCount) { _, plain in digests.append(digester.digest(plain)) }
                } catch {
                    throw Errno.fromStore(error)
                }
            }
            s.resetCommitted(digests: digests, size: file.committedSize)
        case .direct(let d):
            d.resetCommitted(size: file.committedSize)
        case .unloaded, .disposed:
            break
        }
        logger.notice("sealed: reopened store file \(file.id) after a failed commit")
    }

    // MARK: Loading

    /// Gives the entry its data path: a scratch filled with the committed
    /// plaintext when the file is small enough and scratch space allows,
    /// otherwise the direct (RPC) path.
    func loadLocked(truncating: Bool) throws {
        let file = try sealedLocked()
        if !context.options.readonly && digester == nil { digester = ChangeDigester(file: file) }
        let size = truncating ? 0 : file.committedSize
        if size <= context.options.donateLimit && context.registry.makeRoom(for: size, excluding: self) {
            do {
                let ct = try Sys.fstat(pathFD)
                let scratch = try ScratchFile.create(space: context.scratch, sealed: file, digester: digester, empty: truncating,
                                                     ciphertextTimes: (ct.st_atim, ct.st_mtim),
                                                     fineTimestamps: context.scratch.hasFineTimestamps)
                mode = .scratch(scratch)
                updateAccountingLocked(Int64(size))
                context.statistics.update { $0.scratchFills += 1 }
                return
            } catch {
                // No scratch (ENOSPC on the scratch filesystem, a damaged chunk):
                // the direct path still serves every intact chunk.
                logger.info("sealed: no scratch for \(file.id) (\(Errno.fromStore(error))); serving it through RPCs")
            }
        }
        let direct = DirectFile(chunkSize: file.chunkSize, committedSize: file.committedSize)
        if truncating { try direct.truncate(to: 0, file) }
        mode = .direct(direct)
        context.statistics.update { $0.directLoads += 1 }
    }

    /// A file just created by the provider: an empty scratch (or direct state).
    /// `ciphertextTimes`: the new ciphertext file's atime and mtime (from the stat
    /// the create answers with).
    func adoptCreatedLocked(_ file: SealedFile, ciphertextTimes times: (atime: timespec, mtime: timespec)) {
        sealed = file
        if !context.options.readonly { digester = ChangeDigester(file: file) }
        // The new scratch carries the ciphertext's times, so stat of the new file
        // does not move until the client writes (as on any filesystem).
        if context.registry.makeRoom(for: 0, excluding: self),
           let scratch = try? ScratchFile.create(space: context.scratch, sealed: file, digester: digester, empty: true,
                                                 ciphertextTimes: times, fineTimestamps: context.scratch.hasFineTimestamps) {
            mode = .scratch(scratch)
        } else {
            mode = .direct(DirectFile(chunkSize: file.chunkSize, committedSize: 0))
        }
    }

    // MARK: Opening and closing

    /// Registers one open file; returns the FD to donate (scratch mode only).
    func openLocked(flags: OpenFlags) throws -> Int32? {
        logger.debug("sealed: open inode \(key.inode) (\(ObjectIdentifier(self))) flags \(flags.rawValue) mode \(mode)")
        if case .disposed = mode { throw Errno.EIO }
        if case .unloaded = mode {
            try loadLocked(truncating: flags.truncates)
        } else if flags.truncates {
            try truncateLocked(to: 0)
        }
        if flags.isWritable || flags.truncates { everWritable = true }
        if flags.truncates { try commitLocked(.sizeChange) }
        openCount += 1
        if case .scratch(let s) = mode, context.options.donation.donates(flags) {
            return donatedDescriptor(s, flags: flags)
        }
        return nil
    }

    /// The FD the client gets for `flags`. A read-write open gets a duplicate of
    /// the scratch's own (read-write) descriptor instead of a reopen through /proc.
    /// The shared file description is harmless to us: the provider only uses
    /// pread/pwrite (the offset is never used), O_APPEND never reaches a provider,
    /// and status flags the client may set on it (O_APPEND, O_DIRECT, O_NONBLOCK)
    /// can only make the client's own later PWrite RPCs or commits of this file
    /// misbehave, which it can do anyway by writing. Other access modes keep a
    /// reopen, so the FD has exactly the access asked for (as gVisor's fsgofer
    /// gives, and the interop suite checks): read-only FDs must not write, and an
    /// O_WRONLY FD gets no read access.
    func donatedDescriptor(_ s: ScratchFile, flags: OpenFlags) -> Int32? {
        if flags.accessMode == 2 { return try? Sys.dup(s.fd) }   // O_RDWR
        return try? context.reopen(s.fd, flags: Int32(bitPattern: flags.accessMode))
    }

    /// One open file closed: the last one commits everything (a full scan, since
    /// shared mappings may have written without moving the ctime).
    func closeOpenLocked() {
        openCount -= 1
        do {
            try commitLocked(openCount == 0 ? .lastClose : .flush)
        } catch {
            logger.error("sealed: commit at close of \(key.inode) failed: \(Errno.fromStore(error)); kept for a later commit")
        }
    }

    // MARK: Accounting and disposal

    /// Tells the registry the scratch's current size.
    func updateAccountingLocked(_ bytes: Int64) {
        let delta = bytes - accountedBytes
        guard delta != 0 else { return }
        accountedBytes = bytes
        context.registry.adjustUsage(by: delta)
    }

    /// Releases every resource. The caller has committed what must be kept.
    /// `deferring`: an evicted cache entry; if its scratch is small, the closes
    /// may run on the background release thread (`DeferredRelease`). The entry is
    /// disposed either way when this returns.
    func disposeLocked(deferring: Bool = false) {
        var scratchFD: Int32? = nil
        if case .scratch(let s) = mode { scratchFD = s.fd }
        let small = accountedBytes <= 64 << 10
        updateAccountingLocked(0)
        mode = .disposed
        let (digester, sealed, pathFD) = (self.digester, self.sealed, self.pathFD)
        self.digester = nil
        self.sealed = nil
        let release = {
            if let scratchFD { Sys.close(scratchFD) }
            sealed?.close()
            Sys.close(pathFD)
            _ = digester   // its secret is zeroed when this last reference goes
        }
        if deferring, small, let queue = context.deferredRelease, queue.enqueue(release) { return }
        release()
    }
}
