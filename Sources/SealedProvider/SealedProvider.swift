import CLinux
import Glibc
import Lisafs
import Logging
import SealedStore

/// Serves `data/` of a sealed store over lisafs.
///
/// Data path: opening a regular file gives it one plaintext *scratch* (an
/// unnamed file in the scratch directory) shared by all its open FDs and donated
/// to the client, which reads and writes it directly. What changed is sealed
/// into the store on Flush, FSync, Close, SetStat(size), periodically while
/// dirty, and at shutdown (see `SealedInode.commitLocked`). Files above the
/// donate limit, or opened while scratch space is exhausted, are served through
/// PRead/PWrite with chunk-level decryption instead.
///
/// Namespace: the served root is `data/`; every walk is one validated name
/// relative to an O_PATH descriptor, without following symlinks, so `meta/`,
/// the keyring and the config are unreachable. Removing a file's last link
/// removes its sidecar and journal; renames and links touch no sidecar.
public final class SealedProvider: Provider, @unchecked Sendable {
    public struct Options: Sendable {
        /// Refuse every mutation (EROFS) and never commit.
        public var readonly = false
        /// Files larger than this are served through RPCs, without a scratch.
        public var donateLimit: UInt64 = 64 << 20
        /// Which opens get the scratch FD donated (see `DonationPolicy`).
        public var donation: DonationPolicy = .all
        /// Scratch bytes beyond which unused scratches are evicted and new opens use RPCs.
        public var scratchLimit: UInt64 = 1 << 30
        /// Scratch directory (nil: a private directory under /dev/shm).
        public var scratchDirectory: String? = nil
        /// Seconds between periodic commits of open dirty files (0: never).
        public var commitInterval: Double = 5
        /// Every this many periodic rounds, open scratches are scanned in full
        /// (writes through shared mappings do not move a tmpfs file's ctime).
        public var fullScanEvery = 6
        /// Dirty bytes of a file served through RPCs that trigger a commit.
        public var directDirtyLimit = 32 << 20
        /// Unused scratches kept as a cache at most.
        public var maxCachedFiles = 256
        /// Read the committed sizes of a directory's files in the background once
        /// walks in it keep missing the size cache (`SizeReadAhead`).
        public var readAheadSizes = true
        /// New files the store keeps ready, made by a background thread, so that a
        /// create only renames one (`SealedStore.startCreationPool`; one descriptor
        /// each; 0: none). Never on a readonly mount.
        public var creationPool = 16

        public init() {}
    }

    public let options: Options
    public let store: SealedStore
    let context: ProviderContext
    let logger: Logger
    private var periodic: PeriodicCommitter?
    private let shutdownLock = Mutex()
    private var isShutDown = false
    /// Process umask at start: creations chmod explicitly when it would strip bits.
    let umaskBits: UInt32

    /// Serves `store` (taking ownership: `shutdown()` closes it).
    public init(store: SealedStore, options: Options = Options(), logger: Logger = Logger(label: "sealgofer.sealed")) throws {
        self.options = options
        self.store = store
        self.logger = logger
        let scratch = try ScratchSpace(path: options.scratchDirectory)
        do {
            context = try ProviderContext(store: store, options: options, scratch: scratch, logger: logger)
        } catch {
            scratch.close()
            throw error
        }
        let old = umask(0o022)
        umask(old)
        umaskBits = UInt32(old)
        if !options.readonly && options.creationPool > 0 {
            // New files and their empty scratches, made ahead on an idle core.
            store.startCreationPool(capacity: min(options.creationPool, 32))
            scratch.startStock(capacity: min(options.creationPool, 32))
        }
        if !options.readonly && options.commitInterval > 0 {
            periodic = PeriodicCommitter(interval: options.commitInterval) { [weak self] round in
                self?.commitPeriodically(round: round)
            }
        }
        logger.info("sealed: scratch \(options.scratchDirectory ?? "private under /dev/shm"), fine timestamps: \(scratch.hasFineTimestamps)")
    }

    deinit { shutdown() }

    public var supportedMIDs: Set<MID> {
        var mids = Set(MID.allCases)
        mids.subtract([.error, .bindAt, .listen, .accept, .connect, .connectWithCreds,
                       .fGetXattr, .fSetXattr, .fListXattr, .fRemoveXattr])
        return mids
    }

    public var isReadonly: Bool { options.readonly }
    public var allowsModifyingDeleted: Bool { true }

    /// Bytes currently held by scratch files.
    public var scratchUsage: Int64 { context.registry.scratchUsage }

    /// What the data path has done so far.
    public var statistics: SealedProviderStatistics { context.statistics.snapshot }

    /// Files with a scratch or RPC state (open or cached).
    public var loadedFileCount: Int { context.registry.count }

    // MARK: Shutdown

    /// Commits every file durably, releases all scratches and closes the store.
    /// Later calls on this provider fail with EIO. Idempotent.
    public func shutdown() {
        let first: Bool = shutdownLock.withLock {
            defer { isShutDown = true }
            return !isShutDown
        }
        guard first else { return }
        periodic?.stop()
        periodic = nil
        context.readAhead?.stop()
        for entry in context.registry.retainAll() {
            entry.lock.withLock {
                do {
                    try entry.commitLocked(.shutdown)
                } catch {
                    logger.error("sealed: commit at shutdown failed for inode \(entry.key.inode): \(error); its last commit stays")
                }
                entry.disposeLocked()
            }
        }
        // Evicted entries still being released hold store handles.
        context.deferredRelease?.stop()
        store.close()
        context.scratch.close()
        context.close()
    }

    /// Commits every file that has been written since its last commit.
    /// (Also what the periodic committer runs.)
    public func commitAll(fullScan: Bool = true) {
        for entry in context.registry.retainAll() {
            entry.lock.withLock {
                guard entry.openCount > 0 || entry.commitFailed else { return }
                do {
                    try entry.commitLocked(fullScan ? .periodicFull : .periodicQuick)
                } catch {
                    logger.warning("sealed: periodic commit failed for inode \(entry.key.inode): \(error)")
                }
            }
            release(entry)
        }
    }

    private func commitPeriodically(round: Int) {
        let every = max(1, options.fullScanEvery)
        commitAll(fullScan: round % every == every - 1)
    }

    /// Drops a reference on an entry, disposing it when it is unused and not
    /// worth keeping, then trims the cache.
    func release(_ entry: SealedInode) {
        entry.lock.withLock {
            if context.registry.dropReferenceLocked(entry, keep: entry.keepWhenUnusedLocked) {
                entry.disposeLocked()
            }
        }
        context.registry.makeRoom(for: 0)
    }

    /// A reference on the inode state of a regular file's node.
    func acquire(_ node: Node) throws -> SealedInode {
        try context.registry.acquire(node.key, context: context) { try Sys.dup(node.fd) }
    }

    // MARK: Nodes

    /// A node for the O_PATH descriptor `fd` (consumed), with its client-visible
    /// stat (`newFile`: a file just created, known to be empty). `name` in `dir`
    /// is where `fd` was just opened: a stat that misses the size cache reads the
    /// header through it rather than through /proc.
    func makeNode(pathFD fd: Int32, newFile: Bool = false, openedAs name: (dir: Node, name: FileName)? = nil) throws -> Created<Node> {
        let ciphertext: Statx
        do {
            ciphertext = try Sys.statx(fd)
        } catch {
            Sys.close(fd)
            throw error
        }
        return makeNode(pathFD: fd, ciphertext: ciphertext, newFile: newFile, openedAs: name)
    }

    /// `makeNode` with the descriptor's statx already taken.
    func makeNode(pathFD fd: Int32, ciphertext: Statx, newFile: Bool = false,
                  openedAs name: (dir: Node, name: FileName)? = nil) -> Created<Node> {
        let node = Node(fd: fd, fileType: FileType.of(ciphertext), key: InodeKey(ciphertext))
        if newFile {
            context.sizes.store(node.key, ciphertext: ciphertext, plaintextSize: 0)
        }
        return Created(node: node, stat: plaintextStat(node, ciphertext: ciphertext, openedAs: name))
    }

    public func mountRoot() throws -> Created<Node> {
        try makeNode(pathFD: try Sys.check { clinux_openat(store.dataDirectory, ".", Sys.openPath | Sys.closeOnExec, 0) })
    }

    public func walk(_ dir: Node, _ name: FileName) throws -> Created<Node> {
        try makeNode(pathFD: try Sys.openAt(dir.fd, name, flags: Sys.openPath), openedAs: (dir, name))
    }

    public func stat(_ node: Node) throws -> Statx {
        plaintextStat(node, ciphertext: try Sys.statx(node.fd))
    }

    public func stat(openFile: OpenFile) throws -> Statx {
        switch openFile.kind {
        case .directory(let fd):
            return try Sys.statx(fd)
        case .file(let entry):
            var st = try Sys.statx(entry.pathFD)
            if let live = entry.lock.withLock({ entry.liveStatLocked() }) { apply(live, to: &st) }
            return st
        }
    }

    /// The ciphertext's stat with the plaintext size: the live size while the
    /// file has a scratch or RPC state, the committed size otherwise.
    func plaintextStat(_ node: Node, ciphertext: Statx, openedAs name: (dir: Node, name: FileName)? = nil) -> Statx {
        var st = ciphertext
        guard node.fileType == FileType.regular else { return st }
        if let entry = context.registry.peek(node.key), let live = entry.lock.withLock({ entry.liveStatLocked() }) {
            apply(live, to: &st)
            return st
        }
        let size: UInt64
        if let cached = context.sizes.lookup(node.key, ciphertext: ciphertext) {
            size = cached
        } else {
            if let name, let readAhead = context.readAhead {
                readAhead.noteMiss(in: name.dir.key, name: name.name.bytes) { try? context.reopen(name.dir.fd, flags: O_RDONLY | Sys.directory) }
            }
            do {
                size = try committedSize(node, openedAs: name)
                context.sizes.store(node.key, ciphertext: ciphertext, plaintextSize: size)
            } catch {
                // Unreadable header or sidecar: opening it fails with EIO; listing still works.
                logger.warning("sealed: cannot read the committed size of inode \(node.key.inode): \(error)")
                size = 0
            }
        }
        st.size = size
        st.blocks = (size + 511) / 512
        return st
    }

    /// The committed size from the store. With the name the node was opened by,
    /// the header is read through a descriptor opened by that name (cheaper than
    /// a reopen through /proc), provided it is still the same inode.
    private func committedSize(_ node: Node, openedAs name: (dir: Node, name: FileName)?) throws -> UInt64 {
        if let name, let fd = HeaderReading.open(in: name.dir.fd, name.name.bytes) {
            defer { Sys.close(fd) }
            if let st = try? Sys.statx(fd), InodeKey(st) == node.key {
                return try store.committedState(descriptor: node.fd, readable: fd).size
            }
        }
        return try store.committedState(descriptor: node.fd).size
    }

    private func apply(_ live: (size: UInt64, blocks: UInt64, mtime: timespec?, ctime: timespec?), to st: inout Statx) {
        st.size = live.size
        st.blocks = live.blocks
        // Writes through the donated FD move the scratch's times first.
        if let m = live.mtime, later(m, than: st.mtime) { st.mtime = StatxTimestamp(sec: Int64(m.tv_sec), nsec: UInt32(m.tv_nsec)) }
        if let c = live.ctime, later(c, than: st.ctime) { st.ctime = StatxTimestamp(sec: Int64(c.tv_sec), nsec: UInt32(c.tv_nsec)) }
    }

    private func later(_ t: timespec, than s: StatxTimestamp) -> Bool {
        Int64(t.tv_sec) > s.sec || (Int64(t.tv_sec) == s.sec && UInt32(t.tv_nsec) > s.nsec)
    }

    public func close(node: Node) { Sys.close(node.fd) }

    public func statfs(_ node: Node) throws -> StatFS {
        var raw = clinux_statfs()
        try Sys.check { clinux_fstatfs(node.fd, &raw) }
        return StatFS(type: raw.type, blockSize: raw.bsize, blocks: raw.blocks, blocksFree: raw.bfree,
                      blocksAvailable: raw.bavail, files: raw.files, filesFree: raw.ffree, nameLength: raw.namelen)
    }

    public func readlink(_ node: Node) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = try buffer.withUnsafeMutableBytes { raw in
            try Sys.check { readlinkat(node.fd, "", raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count) }
        }
        return Array(buffer.prefix(n))
    }
}
