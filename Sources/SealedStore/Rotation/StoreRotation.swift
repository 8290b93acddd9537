#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct RotationOptions: Sendable {
    /// Files moved concurrently (each large file also uses up to this many threads for its chunks).
    public var jobs: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Power-loss safety: files are moved in batches, and each step of the batch's moves is made
    /// durable (one `syncfs`) before the next step begins — journals before any chunk is
    /// overwritten, chunks and sidecars before the headers switch, headers before the journals
    /// go. Off: each move is atomic against process death only, and one `syncfs` runs before the
    /// rotation is declared complete.
    public var syncs = true
    /// Ciphertext bytes (× 2: ciphertext and journal) held in memory at once across jobs; a larger
    /// file runs alone.
    public var memoryBudget = 512 << 20
    /// A batch of moves closes at this many files or ciphertext bytes; a larger file is moved in a
    /// batch of its own, under `memoryBudget`. Bigger batches mean fewer syncs.
    public var batchFiles = 256
    public var batchBytes: UInt64 = 64 << 20
    public init() {}
}

public struct RotationProgress: Sendable {
    public var doneFiles: Int
    public var totalFiles: Int
    /// Ciphertext bytes of the files done so far (what the progress bar and ETA count).
    public var doneBytes: UInt64
    public var totalBytes: UInt64
}

public struct RotationFailure: Sendable {
    public var path: String
    public var message: String
    /// The file failed authentication (as opposed to an I/O or size problem).
    public var isDamage: Bool
}

public struct RotationReport: Sendable {
    public var targetEpoch: UInt32
    /// An earlier, interrupted rotation to `targetEpoch` was resumed (no epoch added).
    public var resumed: Bool
    public var files = 0
    /// Files re-encrypted by this run.
    public var moved = 0
    /// Files found already under the target epoch (an earlier run's work, or hard links).
    public var alreadyCurrent = 0
    /// Plaintext bytes re-encrypted by this run.
    public var bytesMoved: UInt64 = 0
    public var seconds = 0.0
    public var failures: [RotationFailure] = []
    /// True when every file is under the target epoch (the marker is gone).
    public var complete: Bool { failures.isEmpty }
}

/// `sealgofer rotate`: a new epoch, made the encrypting one, and every file moved to it
/// (Keys/README.md §10). Resumable: `meta/rotation` names the target epoch until every file is
/// moved, each file moves atomically through a journal, and a rerun skips files already moved.
///
/// Coordination: takes `KeyringLock` (before unwrapping the keyring, so the keyring it later
/// rewrites cannot have been rekeyed meanwhile) and the store's exclusive lock through
/// `SealedStore.open`, so it refuses with `.storeInUse` while a gofer serves the store.
public enum StoreRotation {
    public static func rotate(path: String, key: KeyMaterial, options: RotationOptions = RotationOptions(),
                              progress: ((RotationProgress) -> Void)? = nil) throws -> RotationReport {
        let start = Date()
        let lock = try KeyringLock.acquire(storePath: path)
        defer { lock.release() }
        let store = try SealedStore.open(at: path, key: key)
        defer { store.close() }

        let (target, resumed) = try chooseTarget(store)
        guard let master = store.keyring.masterKey(epoch: target) else { throw SealedStoreError.internal("no master key for epoch \(target)") }
        let mover = FileMover(store: store, targetEpoch: target, targetMaster: master, parallelism: max(1, options.jobs))
        let list = try DataFileList.scan(dataFD: store.dataDirectory)
        let run = RotationRun(store: store, mover: mover, list: list, options: options, progress: progress)
        var report = RotationReport(targetEpoch: target, resumed: resumed)
        report.files = list.entries.count
        DispatchQueue.concurrentPerform(iterations: max(1, min(options.jobs, list.entries.count))) { _ in run.work() }
        if let fatal = run.fatal { throw fatal }
        report.moved = run.moved
        report.bytesMoved = run.bytesMoved
        report.alreadyCurrent = run.alreadyCurrent
        report.failures = run.failures.sorted { $0.path < $1.path }
        if report.failures.isEmpty {
            // Everything is under the target epoch: durable first, then the marker goes.
            try store.syncAll()
            try RotationMarker.remove(metaFD: store.layout.metaFD)
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// The epoch to move files to: the marker's if a rotation was interrupted, else a new one.
    /// The marker is written before the epoch is added, so a crash in between is resumed too.
    static func chooseTarget(_ store: SealedStore) throws -> (epoch: UInt32, resumed: Bool) {
        let meta = store.layout.metaFD
        let newest = store.keyring.epochs.map(\.id).max() ?? 0
        if let marker = try RotationMarker.read(metaFD: meta) {
            if marker.targetEpoch == store.keyring.currentEpoch && store.keyring.masterKey(epoch: marker.targetEpoch) != nil {
                return (marker.targetEpoch, true)
            }
            if marker.targetEpoch == newest + 1 {   // crashed between writing the marker and adding the epoch
                let added = try store.addEpoch()
                if added != marker.targetEpoch { try RotationMarker(targetEpoch: added).write(metaFD: meta) }
                return (added, true)
            }
            // Stale (e.g. the epoch was retired by hand): start a new rotation.
        }
        try RotationMarker(targetEpoch: newest + 1).write(metaFD: meta)
        let added = try store.addEpoch()
        if added != newest + 1 { try RotationMarker(targetEpoch: added).write(metaFD: meta) }
        return (added, false)
    }
}

/// Hands out indices 0..<count to worker threads.
final class WorkQueue: @unchecked Sendable {
    private let lock = Mutex()
    private var nextIndex = 0
    private let count: Int
    init(count: Int) { self.count = count }
    func next() -> Int? {
        lock.locked {
            guard nextIndex < count else { return nil }
            defer { nextIndex += 1 }
            return nextIndex
        }
    }
}

/// Bounds the bytes held by concurrent moves. A request larger than the limit waits until
/// nothing else is in flight and then runs alone.
final class ByteBudget: @unchecked Sendable {
    private let condition = NSCondition()
    private let limit: Int
    private var inUse = 0
    init(limit: Int) { self.limit = limit }

    func acquire(_ bytes: Int) -> Int {
        let n = min(bytes, limit)
        condition.lock()
        while inUse > 0 && inUse + n > limit { condition.wait() }
        inUse += n
        condition.unlock()
        return n
    }

    func release(_ n: Int) {
        condition.lock()
        inUse -= n
        condition.broadcast()
        condition.unlock()
    }
}

/// Progress counters shared by the workers; the callback runs under the lock, in order.
final class SharedProgress: @unchecked Sendable {
    private let lock = Mutex()
    private var state: RotationProgress
    private let callback: ((RotationProgress) -> Void)?
    init(totalFiles: Int, totalBytes: UInt64, callback: ((RotationProgress) -> Void)?) {
        state = RotationProgress(doneFiles: 0, totalFiles: totalFiles, doneBytes: 0, totalBytes: totalBytes)
        self.callback = callback
    }
    func advance(bytes: UInt64) {
        lock.locked {
            state.doneFiles += 1
            state.doneBytes += bytes
            callback?(state)
        }
    }
}

/// The directory of the previous file, kept open: files come in path order, so a worker mostly
/// opens its next file in the same directory (saves a chain of openat calls per file).
final class DirectoryCache {
    private let root: Int32
    private var components: ArraySlice<String>? = nil
    private var cached: Int32 = -1

    init(root: Int32) { self.root = root }

    func fd(for path: ArraySlice<String>) throws -> Int32 {
        if path.isEmpty { return root }
        if let components, components == path, cached >= 0 { return cached }
        close()
        cached = try openBeneath(root, Array(path), flags: O_RDONLY | O_DIRECTORY)
        components = path
        return cached
    }

    func close() {
        if cached >= 0 { Glibc.close(cached); cached = -1 }
        components = nil
    }
}

/// The shared state of one `rotate` run: the file queue, the results, and the batch loop each
/// worker thread runs.
final class RotationRun: @unchecked Sendable {
    let store: SealedStore
    let mover: FileMover
    let list: DataFileList
    let options: RotationOptions
    private let queue: WorkQueue
    private let budget: ByteBudget
    private let shared: SharedProgress
    private let lock = Mutex()
    private(set) var moved = 0
    private(set) var bytesMoved: UInt64 = 0
    private(set) var alreadyCurrent = 0
    private(set) var failures: [RotationFailure] = []
    /// A failed syncfs: durability of the steps taken can no longer be promised; the run stops.
    private(set) var fatal: Error?

    init(store: SealedStore, mover: FileMover, list: DataFileList, options: RotationOptions,
         progress: ((RotationProgress) -> Void)?) {
        self.store = store; self.mover = mover; self.list = list; self.options = options
        queue = WorkQueue(count: list.entries.count)
        budget = ByteBudget(limit: max(1, options.memoryBudget))
        shared = SharedProgress(totalFiles: list.entries.count, totalBytes: list.totalBytes, callback: progress)
    }

    private struct Item {
        var entry: DataFileList.Entry
        var move: PreparedMove
        var failed = false
    }

    /// One worker: fills a batch with prepared moves, then takes the batch through the steps.
    func work() {
        let buffers = MoveBuffers()
        let directory = DirectoryCache(root: store.dataDirectory)
        defer { directory.close() }
        var carried: Int? = nil
        var exhausted = false
        while !exhausted && lock.locked({ fatal == nil }) {
            var batch: [Item] = []
            var bytes: UInt64 = 0
            var granted = 0
            while true {
                guard let i = carried ?? queue.next() else { exhausted = true; break }
                carried = nil
                let entry = list.entries[i]
                if !batch.isEmpty && (batch.count >= options.batchFiles || bytes + entry.size > options.batchBytes) {
                    carried = i
                    break
                }
                let alone = entry.size > options.batchBytes
                // Only a worker holding nothing waits for the budget, so two workers cannot wait on each other.
                if alone { granted = budget.acquire(Int(clamping: entry.size.multipliedReportingOverflow(by: 2).partialValue)) }
                do {
                    let fd = openAt(try directory.fd(for: entry.components.dropLast()), entry.components.last!, O_RDWR)
                    guard fd >= 0 else { throw SealedStoreError.io("open \(entry.path)", errno) }
                    let prepared: FileMover.Prepared
                    do { prepared = try mover.prepare(fd: fd, buffers: buffers, slot: batch.count) } catch { close(fd); throw error }
                    switch prepared {
                    case .alreadyCurrent:
                        close(fd)
                        lock.locked { alreadyCurrent += 1 }
                        shared.advance(bytes: entry.size)
                    case .move(let m):
                        batch.append(Item(entry: entry, move: m))
                        bytes += entry.size
                    }
                } catch {
                    fail(entry, error)
                }
                if alone { break }
            }
            if !batch.isEmpty { commit(&batch) }
            budget.release(granted)
            buffers.release()
        }
    }

    /// The steps of §7 for every file of the batch, each step durable before the next when
    /// `options.syncs`. A file that fails a step is reported and left where it is: before its
    /// journal's rename it is untouched; after it, any later open completes the move.
    private func commit(_ batch: inout [Item]) {
        let steps: [(FileMover, PreparedMove) throws -> Void] = [
            { try $0.commitJournal($1) }, { try $0.applyChunksAndSidecar($1) }, { try $0.switchHeader($1) },
        ]
        for step in steps {
            for k in batch.indices where !batch[k].failed {
                do { try step(mover, batch[k].move) } catch { batch[k].failed = true; fail(batch[k].entry, error) }
            }
            if options.syncs {
                do { try store.syncAll() } catch {
                    lock.locked { if fatal == nil { fatal = error } }
                    for item in batch where !item.failed { shared.advance(bytes: item.entry.size) }
                    return
                }
            }
        }
        for item in batch where !item.failed {
            // The header is durable: the file is moved. Cleanup leftovers are removed by any later open.
            try? mover.cleanup(item.move)
            lock.locked { moved += 1; bytesMoved += item.move.size }
            shared.advance(bytes: item.entry.size)
        }
    }

    private func fail(_ entry: DataFileList.Entry, _ error: Error) {
        var isDamage = false
        if case SealedStoreError.damaged = error { isDamage = true }
        lock.locked { failures.append(RotationFailure(path: entry.path, message: "\(error)", isDamage: isDamage)) }
        shared.advance(bytes: entry.size)
    }
}
