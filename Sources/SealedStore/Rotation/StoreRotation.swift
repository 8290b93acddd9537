#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct RotationOptions: Sendable {
    /// Files moved concurrently (each large file also uses up to this many threads for its chunks).
    public var jobs: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Power-loss safety: files are moved in batches, and one `syncfs` per batch makes the
    /// batch's new files durable before any of them takes its name, and the previous batch's
    /// renames durable before the old files' metadata goes (§10.2). Off: each move is atomic
    /// against process death only, and one `syncfs` runs before the rotation is declared complete.
    public var syncs = true
    /// Journaled moves only (files with hard links): ciphertext bytes (× 2: ciphertext and
    /// journal) held in memory at once across jobs; a larger file waits until it can run alone.
    public var memoryBudget = 512 << 20
    /// A batch of moves closes at this many files or ciphertext bytes (a larger file is a batch
    /// of its own). Bigger batches mean fewer syncs; memory does not grow with them (files are
    /// streamed through a few MiB per worker).
    public var batchFiles = 256
    public var batchBytes: UInt64 = 64 << 20
    /// Tests: move every file through a journal, as rotations before the replacing move did.
    var journaledOnly = false
    /// Files of at most this many plaintext bytes take the journaled move, in batches: on ext4 a
    /// small file's in-place rewrite (no blocks freed or allocated; a journal deleted before
    /// writeback never reaches the disk) costs less than a new inode, and the journal's second
    /// write and MAC are negligible at this size (BENCHMARKS.md, issue 6). 0: none.
    public var inPlaceLimit: UInt64 = 64 << 10
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
    /// Of `moved`: files with several names, moved in place through a journal (§10.2).
    public var journaledMoves = 0
    /// Of `moved`: replacing moves whose new file overwrote the old inode of an earlier move
    /// instead of being created (`SpareInodes`).
    public var reusedInodes = 0
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
/// moved, each file moves atomically (a new file renamed over the old name, or a journal for a file with
/// hard links), and a rerun skips files already moved.
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
        let replacing = ReplacingMover(store: store, targetEpoch: target, targetMaster: master)
        let journaled = JournaledMover(store: store, targetEpoch: target, targetMaster: master, parallelism: max(1, options.jobs))
        let list = try DataFileList.scan(dataFD: store.dataDirectory)
        let run = RotationRun(store: store, replacing: replacing, journaled: journaled, list: list, options: options, progress: progress)
        var report = RotationReport(targetEpoch: target, resumed: resumed)
        report.files = list.entries.count
        DispatchQueue.concurrentPerform(iterations: max(1, min(options.jobs, list.entries.count))) { _ in run.work() }
        if let fatal = run.fatal { throw fatal }
        report.moved = run.moved
        report.journaledMoves = run.journaledMoves
        report.reusedInodes = run.reusedInodes
        report.bytesMoved = run.bytesMoved
        report.alreadyCurrent = run.alreadyCurrent
        report.failures = run.failures.sorted { $0.path < $1.path }
        // Every switch durable, then the old files' metadata of the last batches goes.
        try store.syncAll()
        run.finishRemaining()
        if report.failures.isEmpty {
            // Everything is under the target epoch (and durable): the marker goes.
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
