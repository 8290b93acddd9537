#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CLinux

/// An open sealed store: the keyring unwrapped, the store's lock held, directory FDs ready.
/// On-disk format: Keys/README.md.
///
/// How the provider (lisafs gofer) uses it:
/// * `SealedStore.open(at:key:)` once; `dataDirectory` is the FD of data/, under which the provider
///   opens directories and files itself (openat, O_NOFOLLOW). Names are plaintext (format 1).
/// * New regular file: `createFile(in: dirFD, name:, mode:, prepare:)` → a `SealedFile` (empty,
///   committed). It appears under `name` complete with header and sidecar, or not at all; set
///   owner and mode in `prepare` (runs on its FD before it is linked).
/// * Existing file: open its ciphertext FD (openat … O_RDWR|O_NOFOLLOW; O_RDONLY works, it is
///   reopened read-write via /proc/self/fd) and `openFile(descriptor:)`; the store keeps its own
///   dup. Hard links and repeated opens of one inode return the same `SealedFile`: balance every
///   create/open with `close()`.
/// * Size for stat: `file.committedSize` (the ciphertext file's st_size is not the plaintext size).
/// * Fill a scratch: `readChunks(range) { index, plaintext in … }`, `read(offset:count:)`,
///   `readAll()`; each call sees one committed state.
/// * Change detection: `file.digest(of: plaintextChunk)` — keyed, 16 bytes; remember digests of
///   what was read, compare before committing (or compare plaintext directly).
/// * Flush/FSync: `commit([ChunkChange(index, fullChunkPlaintext)], newSize:, durable:)`; chunks
///   that change length at the old/new end and new zero chunks are handled here.
/// * Unlink, or a rename over a regular file: open the victim first (O_PATH is enough), then
///   `removingLink(of: victimFD) { unlinkat(…) / renameat2(…) }`; it returns true when the file has
///   no name left (its sidecar and journal are then removed, at its last `close()` if it is open).
///   After a crash anywhere in it, the next `open` completes or undoes it (Keys/README.md §7.1).
///   `removeFile(descriptor:)` / `removeFile(id)` after an unlink the caller did itself still work,
///   but leave an orphan sidecar if the process dies between the two.
///
/// Threading: every method of `SealedStore` and `SealedFile` is thread-safe. Reads of one file run
/// concurrently; a commit to a file excludes reads and other commits of that file only.
/// Processes: `open` takes an exclusive `flock` on meta/lock, so one process at a time
/// (gofer, import, export, verify) uses a store; `info` needs no lock.
///
/// What fsyncs (Keys/README.md §7): with `Options.orderingSyncs` (default) every commit syncs the
/// journal before overwriting chunks in place and syncs the data before the sidecar that makes it
/// visible, so a power loss cannot tear a committed chunk; `durable: true` additionally syncs
/// the directories (journal rename, sidecar rename) so the commit itself survives power loss.
/// Without `orderingSyncs` non-durable commits do no syncs at all and are atomic against process
/// death only (what `import` uses, followed by one `syncfs`). `createFile` syncs the new file's
/// header and its sidecar under `orderingSyncs`; directory entries under data/ are the provider's
/// to fsync. `open` completes or undoes namespace operations a crash interrupted (meta/pending).
/// data/ and meta/ must be on one mount (new files and removal intents are hard links between them).
public final class SealedStore: @unchecked Sendable {
    public struct Options: Sendable {
        /// Sync in write order even for non-durable commits (power-loss safety of committed chunks).
        public var orderingSyncs = true
        /// Chunk encryptions under one AES-256-GCM file key after which the file moves to a fresh ID.
        public var rekeyThreshold: UInt64 = 1 << 30
        /// Threads used to encrypt/decrypt large batches of chunks.
        public var parallelism = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))
        public init() {}
    }

    public let path: String
    public let config: StoreConfig
    public let keyring: Keyring
    public let options: Options
    let layout: StoreLayout
    private let lockFD: Int32
    private let registryLock = Mutex()
    /// Open files by inode: hard links and repeated opens share one `SealedFile`, and the key stays
    /// valid when a commit moves the file to a fresh ID.
    private var registry: [InodeKey: Registration] = [:]
    private var isClosed = false
    /// Serialises `removingLink` per inode (striped by inode number).
    let removalStripes = (0..<32).map { _ in Mutex() }
    /// Interrupted namespace operations that `open` completed or rolled back (§7.1).
    public private(set) var recoveredOperations = 0
    /// meta/pending entries recovery could not resolve (verify reports them).
    private(set) var unresolvedPending: [String] = []
    /// Files made ahead for `createFile` (guarded by `registryLock`; nil unless started).
    private var creationPool: CreationPool?

    private struct Registration {
        var file: SealedFile
        var handles: Int
        var removeWhenClosed: Bool
    }

    /// FD of `data/` (owned by the store; valid until `close`). The provider opens user files and
    /// directories relative to it.
    public var dataDirectory: Int32 { layout.dataFD }

    // MARK: Create and open

    /// Creates a new store at `path` (an absent or empty directory).
    public static func initialize(at path: String, key: KeyMaterial, suite: CipherSuite? = nil,
                                  chunkSize: Int = StoreConfig.defaultChunkSize,
                                  cost: PassphraseCost = .moderate) throws {
        try Sodium.ensureReady()
        let suite = suite ?? .preferred
        guard suite.isAvailable else { throw SealedStoreError.invalidArgument("\(suite.name) is not supported on this CPU") }
        guard StoreConfig.isValidChunkSize(chunkSize) else {
            throw SealedStoreError.invalidArgument("chunk size must be a power of two between 4096 and 1048576")
        }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw SealedStoreError.io("mkdir \(path)", errno) }
        let root = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SealedStoreError.io("open \(path)", errno) }
        defer { Glibc.close(root) }
        if try !listDirectory(root).isEmpty {
            // An init killed before it wrote the keyring left only its own empty skeleton: start over.
            guard try clearInterruptedInitialization(root) else { throw SealedStoreError.invalidArgument("\(path) is not empty") }
        }
        let config = StoreConfig(storeID: Sodium.randomBytes(16), suite: suite, chunkSize: chunkSize)
        let configBytes = config.serialize()
        let keyring = try Keyring.create(key: key, storeID: config.storeID, configDigest: Sodium.hash(configBytes), cost: cost)
        try ensureDirectory(root, StoreLayout.dataName, mode: 0o755)
        try ensureDirectory(root, StoreLayout.metaName)
        let meta = try openDirectory(root, StoreLayout.metaName)
        defer { Glibc.close(meta) }
        try ensureDirectory(meta, StoreLayout.filesName)
        try ensureDirectory(meta, StoreLayout.journalName)
        try ensureDirectory(meta, StoreLayout.pendingName)
        try createFileAt(meta, StoreLayout.lockName, [], sync: true)
        try syncFD(meta, what: "meta")
        try createFileAt(root, StoreLayout.configName, configBytes, mode: 0o644, sync: true)
        // The keyring last: its presence marks a complete store.
        try replaceFileAt(root, StoreLayout.keyringName, keyring.serialize(), syncFile: true, syncDirectory: true)
    }

    /// True (after removing its files) when `root` holds nothing but what an interrupted `initialize`
    /// writes before the keyring: empty data/, meta/ with lock and empty files/, journal/, pending/,
    /// config, keyring.tmp. Anything else, and the directory is left alone.
    private static func clearInterruptedInitialization(_ root: Int32) throws -> Bool {
        func entries(_ dir: Int32, _ name: String) -> [String]? {
            guard let fd = try? openDirectory(dir, name) else { return nil }
            defer { Glibc.close(fd) }
            return (try? listDirectory(fd))?.map(\.name)
        }
        let top = Set(try listDirectory(root).map(\.name))
        guard top.isSubset(of: [StoreLayout.dataName, StoreLayout.metaName, StoreLayout.configName, StoreLayout.keyringName + ".tmp"]) else { return false }
        if top.contains(StoreLayout.dataName) { guard entries(root, StoreLayout.dataName)?.isEmpty == true else { return false } }
        if top.contains(StoreLayout.metaName) {
            guard let meta = entries(root, StoreLayout.metaName),
                  Set(meta).isSubset(of: [StoreLayout.lockName, StoreLayout.filesName, StoreLayout.journalName, StoreLayout.pendingName]) else { return false }
            let metaFD = try openDirectory(root, StoreLayout.metaName)
            defer { Glibc.close(metaFD) }
            for d in [StoreLayout.filesName, StoreLayout.journalName, StoreLayout.pendingName] where meta.contains(d) {
                guard entries(metaFD, d)?.isEmpty == true else { return false }
            }
            unlinkat(metaFD, StoreLayout.lockName, 0)
        }
        unlinkat(root, StoreLayout.configName, 0)
        unlinkat(root, StoreLayout.keyringName + ".tmp", 0)
        return true
    }

    /// Opens a store with its key. Errors: `.notAStore`, `.keyringDamaged`, `.wrongKey`,
    /// `.configDamaged`, `.storeInUse`.
    public static func open(at path: String, key: KeyMaterial, options: Options = Options()) throws -> SealedStore {
        try Sodium.ensureReady()
        let root = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SealedStoreError.notAStore("cannot open \(path): \(String(cString: strerror(errno)))") }
        var success = false
        defer { if !success { Glibc.close(root) } }
        let (config, keyring) = try StoreRootFiles.read(root, path: path).openKeyring(with: key)
        let meta = try openDirectory(root, StoreLayout.metaName)
        let lockFD = openAt(meta, StoreLayout.lockName, O_RDWR | O_CREAT, 0o600)
        Glibc.close(meta)
        guard lockFD >= 0 else { throw SealedStoreError.io("open meta/lock", errno) }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lockFD)
            throw errno == EWOULDBLOCK ? SealedStoreError.storeInUse : SealedStoreError.io("flock", errno)
        }
        let layout: StoreLayout
        do { layout = try StoreLayout(rootFD: root) } catch { Glibc.close(lockFD); throw error }
        success = true
        let store = SealedStore(path: path, config: config, keyring: keyring, options: options, layout: layout, lockFD: lockFD)
        // Namespace operations a crash interrupted (§7.1); commits are recovered per file, at its open.
        let recovery = PendingRecovery.run(layout: layout)
        store.recoveredOperations = recovery.resolved
        store.unresolvedPending = recovery.unresolved
        return store
    }

    private init(path: String, config: StoreConfig, keyring: Keyring, options: Options, layout: StoreLayout, lockFD: Int32) {
        self.path = path; self.config = config; self.keyring = keyring; self.options = options
        self.layout = layout; self.lockFD = lockFD
    }

    /// Closes every directory FD and releases the lock. Open `SealedFile`s become unusable; files
    /// whose last name was removed while they were open have their metadata removed now.
    public func close() { shutdown(performingDeferredRemovals: true) }

    /// Like a process death, for crash tests: nothing is cleaned up.
    func abandon() { shutdown(performingDeferredRemovals: false) }

    private func shutdown(performingDeferredRemovals: Bool) {
        let closing: (files: [(SealedFile, Bool)], pool: CreationPool?)? = registryLock.locked {
            guard !isClosed else { return nil }
            isClosed = true
            defer { registry = [:]; creationPool = nil }
            return (registry.values.map { ($0.file, $0.removeWhenClosed) }, creationPool)
        }
        guard let (files, pool) = closing else { return }
        pool?.stop(removingEntries: performingDeferredRemovals)
        for (f, remove) in files {
            let pending = f.invalidate()
            if performingDeferredRemovals {
                if remove { try? completeRemoval(pending.removalIDs, recorded: pending.goneIDs) }
                if let id = pending.pendingCreate { abandonPending(id, error: SealedStoreError.closed) }
            }
        }
        layout.closeAll()
        Glibc.close(lockFD)
    }

    deinit { close() }

    /// Syncs the whole filesystem holding the store (used after a bulk import without ordering syncs).
    public func syncAll() throws {
        guard clinux_syncfs(layout.rootFD) == 0 else { throw SealedStoreError.io("syncfs", errno) }
    }

    // MARK: Files

    // createFile, removingLink, removeFile: SealedStore+Namespace.swift.

    /// Opens the ciphertext file behind `descriptor` (any FD of it; the store keeps its own dup,
    /// so the caller may close theirs). Replays or discards an interrupted commit first. Hard links
    /// and repeated opens of one file return the same `SealedFile`; balance each with `close()`.
    public func openFile(descriptor: Int32) throws -> SealedFile {
        try checkOpen()
        // An open file must not be loaded again: recovery would race with its commits.
        if let existing = reuse(try InodeKey(fd: descriptor)) { return existing }
        let fd = try writableDuplicate(of: descriptor)
        do {
            let state = try FileState.load(store: self, fd: fd)
            return register(SealedFile(store: self, fd: fd, inode: try InodeKey(fd: fd), header: state.header, keys: state.keys, sidecar: state.sidecar))
        } catch {
            Glibc.close(fd); throw error
        }
    }

    /// Adds a key epoch with a fresh master key and rewrites the keyring; new files use it.
    @discardableResult
    public func addEpoch() throws -> UInt32 {
        try checkOpen()
        let id = keyring.addEpoch()
        try replaceFileAt(layout.rootFD, StoreLayout.keyringName, keyring.serialize(), syncFile: true, syncDirectory: true)
        return id
    }

    // MARK: Internals

    func checkOpen() throws { if registryLock.locked({ isClosed }) { throw SealedStoreError.closed } }

    /// Steps 1 and 2 of a create, without a reference to the store (the creation pool's thread).
    var pendingFileMaker: PendingFileMaker {
        PendingFileMaker(layout: layout, keyring: keyring, config: config, orderingSyncs: options.orderingSyncs)
    }

    /// The creation pool, if started; throws once the store is closed.
    func openCreationPool() throws -> CreationPool? {
        try registryLock.locked {
            if isClosed { throw SealedStoreError.closed }
            return creationPool
        }
    }

    /// Installs `pool` unless one runs or the store is closed; false then (the caller stops it).
    func installCreationPool(_ pool: CreationPool) -> Bool {
        registryLock.locked {
            guard !isClosed, creationPool == nil else { return false }
            creationPool = pool
            return true
        }
    }

    /// Removes the journal and sidecar of exactly `id` (leftovers of a completed move; a removed
    /// file's metadata goes through `StoreLayout.removeAllMetadata`).
    func removeMetadata(_ id: FileID) throws {
        try layout.removeJournal(id)
        try layout.removeSidecar(id)
    }

    /// The in-memory ID of the open file behind `key` (authoritative while it is open: a commit may
    /// be moving it to a fresh ID).
    func registeredID(_ key: InodeKey) -> FileID? {
        registryLock.locked { registry[key]?.file }?.id
    }

    /// An extra handle on the open file behind `key`, now marked for removal at its last close;
    /// nil when it is not open. The caller closes the handle.
    func retainForRemoval(_ key: InodeKey) -> SealedFile? {
        registryLock.locked {
            guard registry[key] != nil else { return nil }
            registry[key]!.handles += 1
            registry[key]!.removeWhenClosed = true
            return registry[key]!.file
        }
    }

    func retainForRemoval(id: FileID) -> SealedFile? {
        let candidates = registryLock.locked { registry.map { ($0.key, $0.value.file) } }
        guard let key = candidates.first(where: { $0.1.id == id })?.0 else { return nil }
        return retainForRemoval(key)
    }

    private func reuse(_ key: InodeKey) -> SealedFile? {
        registryLock.locked {
            guard registry[key] != nil else { return nil }
            registry[key]!.handles += 1
            return registry[key]!.file
        }
    }

    func register(_ file: SealedFile) -> SealedFile {
        registryLock.locked {
            if registry[file.inode] != nil {   // raced with another opener: keep the first
                registry[file.inode]!.handles += 1
                file.invalidate()
                return registry[file.inode]!.file
            }
            registry[file.inode] = Registration(file: file, handles: 1, removeWhenClosed: false)
            return file
        }
    }

    /// Called by SealedFile.close(); true when this was the last handle.
    func release(_ file: SealedFile) -> (last: Bool, remove: Bool) {
        registryLock.locked {
            guard var r = registry[file.inode], r.file === file else { return (true, false) }
            r.handles -= 1
            if r.handles > 0 { registry[file.inode] = r; return (false, false) }
            registry[file.inode] = nil
            return (true, r.removeWhenClosed)
        }
    }

    /// A read-write FD of the same open file description's inode. O_RDONLY descriptors are
    /// reopened through /proc/self/fd (a journal may need replaying).
    private func writableDuplicate(of descriptor: Int32) throws -> Int32 {
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0 else { throw SealedStoreError.io("fcntl", errno) }
        if flags & O_ACCMODE == O_RDWR {
            let fd = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else { throw SealedStoreError.io("dup", errno) }
            return fd
        }
        let fd = Glibc.open("/proc/self/fd/\(descriptor)", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SealedStoreError.io("reopen descriptor read-write", errno) }
        return fd
    }
}

/// Identity of an open ciphertext file: device and inode.
struct InodeKey: Hashable {
    let dev: UInt64
    let ino: UInt64
    init(fd: Int32) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SealedStoreError.io("fstat", errno) }
        self.init(st)
    }
    init(_ st: stat) { dev = UInt64(st.st_dev); ino = UInt64(st.st_ino) }
}
