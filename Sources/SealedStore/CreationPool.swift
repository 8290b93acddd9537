#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// New files made ahead of need (Keys/README.md §7.1, "Creation pool"): each is exactly what
/// steps 1 and 2 of a create leave on disk — `meta/pending/<id>.new` with its
/// complete header, and its sidecar, both synced under ordering syncs — so a create served from
/// the pool only sets the mode, times and owner and renames the entry to its name.
///
/// Nothing new on disk: a process death with a full pool leaves `.new` entries with link count
/// 1, which the next `open` drops with their sidecars, as after any create killed before its
/// name appeared. `close` removes the entries still in stock (sidecar, then entry).
///
/// Each entry is tied to the epoch whose master key made its file key; an entry of another
/// epoch than the current one (a rotation never runs beside a serving store, but `addEpoch` is
/// public) is discarded when taken.
final class CreationPool: @unchecked Sendable {
    struct Entry {
        let pending: SealedStore.PendingFile
        let inode: InodeKey
        /// Permission bits the file was created with.
        let mode: UInt32
    }

    /// Mode of pooled files until a create sets the requested one.
    static let poolMode: UInt32 = 0o600

    private let stock: RefillingStock<Entry>
    private let modeHint = ModeHint()
    private let maker: PendingFileMaker
    /// The process umask when the pool started: a pooled create applies `mode & ~umask`,
    /// as open(2) would have.
    let umask: UInt32

    init(maker: PendingFileMaker, capacity: Int, umask: UInt32) {
        self.maker = maker
        self.umask = umask
        let hint = modeHint
        stock = RefillingStock(name: "sealgofer-create-pool", capacity: capacity) {
            try CreationPool.makeEntry(maker, mode: hint.mode)
        }
    }

    /// Steps 1 and 2 of a create for a file nobody has asked for yet.
    private static func makeEntry(_ maker: PendingFileMaker, mode: UInt32) throws -> Entry {
        let p = try maker.begin(mode: mode, hooks: false)
        do {
            try maker.createSidecar(p)
            var st = stat()
            guard fstat(p.fd, &st) == 0 else { throw SealedStoreError.io("fstat", errno) }
            // Derived now rather than by the first request that needs them.
            _ = p.keys.data
            _ = p.keys.digest
            return Entry(pending: p, inode: InodeKey(st), mode: UInt32(st.st_mode) & 0o7777)
        } catch {
            try? maker.layout.removeSidecar(p.id)
            maker.abandon(p.id)
            Glibc.close(p.fd)
            throw error
        }
    }

    /// An entry made under `epoch`, or nil (then the caller creates the file itself).
    func take(epoch: UInt32) -> Entry? {
        while let entry = stock.take() {
            if entry.pending.header.epoch == epoch { return entry }
            discard(entry)
        }
        return nil
    }

    /// Removes an entry that will not be used: sidecar first, then the `.new` entry (the
    /// order recovery would use), then its descriptor.
    func discard(_ entry: Entry) {
        try? maker.layout.removeSidecar(entry.pending.id)
        maker.abandon(entry.pending.id)
        Glibc.close(entry.pending.fd)
    }

    /// A create from the pool asked for `mode` (after the umask): entries made from now on get
    /// it, so that while creates keep asking for one mode (the usual case) none needs a chmod.
    /// Entries live in meta/pending, out of the client's reach, whatever their mode.
    func noteRequestedMode(_ mode: UInt32) { modeHint.set(mode) }

    /// The permission bits new entries are made with (set-ID and sticky bits never).
    private final class ModeHint: Sendable {
        private let bits = Atomic<UInt32>(CreationPool.poolMode)
        var mode: UInt32 { bits.load(ordering: .relaxed) }
        func set(_ mode: UInt32) { bits.store(mode & 0o777, ordering: .relaxed) }
    }

    var count: Int { stock.count }
    var statistics: (made: Int, failures: Int) { stock.statistics }
    func waitUntilFull(seconds: Double) -> Bool { stock.waitUntilFull(seconds: seconds) }

    /// Stops the refill thread and removes every entry in stock (`close`), or leaves them on
    /// disk as a process death would (`abandon`, crash tests).
    func stop(removingEntries: Bool) {
        for entry in stock.stop() {
            if removingEntries { discard(entry) } else { Glibc.close(entry.pending.fd) }
        }
    }
}

/// Steps 1 and 2 of a create (§7.1), shared by `createFile`, `import` and the creation pool.
/// Holds what they need from the store but not the store itself, so the pool's thread keeps
/// nothing alive.
struct PendingFileMaker: @unchecked Sendable {
    let layout: StoreLayout
    let keyring: Keyring
    let config: StoreConfig
    let orderingSyncs: Bool

    /// meta/pending/<id>.new, created exclusively with `mode`, with its complete header.
    func begin(mode: UInt32, hooks: Bool) throws -> SealedStore.PendingFile {
        let epoch = keyring.currentEpoch
        guard let master = keyring.masterKey(epoch: epoch) else { throw SealedStoreError.internal("no master key") }
        let id = FileID.random()
        let keys = FileKeys(master: master, epoch: epoch, fileID: id)
        let header = FileHeader(suite: config.suite, chunkSize: config.chunkSize, epoch: epoch, fileID: id)
        let sidecar = Sidecar(suite: config.suite, chunkSize: config.chunkSize, epoch: epoch, fileID: id, committedSize: 0,
                              generation: 0, encryptions: 0, previousFileID: .zero)
        let fd = openAt(layout.pendingFD, PendingKind.new.name(id), O_RDWR | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw SealedStoreError.io("create a new file", errno) }
        do {
            try writeAll(fd: fd, header.serialize(keys: keys), offset: 0, what: "write header")
            if orderingSyncs { try dataSyncFD(fd, what: "new file") }
            if hooks { try TestHooks.step(.createIntent) }
        } catch {
            if !(error is SimulatedCrash) {
                abandon(id)
                Glibc.close(fd)
            }
            throw error
        }
        return SealedStore.PendingFile(fd: fd, id: id, header: header, keys: keys, sidecar: sidecar)
    }

    /// Step 2: the sidecar of a pending file (generation 0).
    func createSidecar(_ p: SealedStore.PendingFile) throws {
        try createFileAt(try layout.sidecarDirectory(p.id), StoreLayout.sidecarName(p.id), p.sidecar.serialize(keys: p.keys),
                         sync: orderingSyncs)
    }

    /// Removes meta/pending/<id>.new.
    func abandon(_ id: FileID) {
        unlinkat(layout.pendingFD, PendingKind.new.name(id), 0)
    }
}
