#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The shared state of one `rotate` run: the file queue, the results, and the loop each worker
/// thread runs (Keys/README.md §10.2).
///
/// A worker stages a batch of replacing moves (`ReplacingMover.stage`: new files written, not yet
/// named), then makes them durable with one `syncfs`, then switches them (renames). The old
/// files' metadata of the *previous* batch is removed after that same `syncfs`, which also made
/// the previous batch's switches durable — so with syncs on, one `syncfs` per batch keeps the
/// order §10.2 needs (every staged file durable before its switch, every switch durable before
/// the old metadata goes). Without syncs each file is switched and finished as soon as it is
/// staged. A finished move's old inode becomes a spare (`SpareInodes`) that a later move of the
/// same worker overwrites instead of creating a file.
///
/// Small files (`RotationOptions.inPlaceLimit`) join the batch as journaled in-place moves: their
/// journals are committed while the batch fills (made durable by the same `syncfs`), and after
/// the switches their chunks and sidecars, headers and cleanup follow with a `syncfs` between.
final class RotationRun: @unchecked Sendable {
    let store: SealedStore
    let replacing: ReplacingMover
    let journaled: JournaledMover
    let list: DataFileList
    let options: RotationOptions
    private let queue: WorkQueue
    private let budget: ByteBudget
    private let shared: SharedProgress
    private let directoryTimes = DirectoryTimes()
    private let lock = Mutex()
    private(set) var moved = 0
    private(set) var bytesMoved: UInt64 = 0
    private(set) var alreadyCurrent = 0
    private(set) var journaledMoves = 0
    private(set) var reusedInodes = 0
    private(set) var failures: [RotationFailure] = []
    /// A failed syncfs: durability of the steps taken can no longer be promised; the run stops.
    private(set) var fatal: Error?
    /// Switched moves whose old metadata waits for the run's final `syncfs` (`finishRemaining`).
    private var unfinished: [StagedMove] = []

    /// A batch also closes when it holds this many directories open.
    static let maxDirectories = 64

    init(store: SealedStore, replacing: ReplacingMover, journaled: JournaledMover, list: DataFileList,
         options: RotationOptions, progress: ((RotationProgress) -> Void)?) {
        self.store = store; self.replacing = replacing; self.journaled = journaled; self.list = list; self.options = options
        queue = WorkQueue(count: list.entries.count)
        budget = ByteBudget(limit: max(1, options.memoryBudget))
        shared = SharedProgress(totalFiles: list.entries.count, totalBytes: list.totalBytes, callback: progress)
    }

    private struct Staged {
        var entry: DataFileList.Entry
        var move: StagedMove
    }

    /// A small file's journaled move, its journal committed (§7 step 3) when it joined the batch.
    private struct InPlace {
        var entry: DataFileList.Entry
        var move: PreparedMove
        var times: [timespec]
        var failed = false
    }

    private enum Handled {
        case replacing(StagedMove)
        case inPlace(PreparedMove, [timespec])
    }

    /// Per-worker reusable state.
    private final class Worker {
        let directories: BatchDirectories
        let spares: SpareInodes
        var buffers: [Int: ResealBuffers] = [:]
        /// Journals of the batch's in-place moves, one slot each, alive until the batch completes.
        lazy var journalBuffers = MoveBuffers()
        /// A journaled move taken on its own (hard-linked large file, refused rename) while a batch
        /// is open: never the batch's buffers, whose journals are still to be applied.
        lazy var soloBuffers = MoveBuffers()
        init(directories: BatchDirectories, spares: SpareInodes) { self.directories = directories; self.spares = spares }

        func buffers(for layout: ChunkLayout, threads: Int) -> ResealBuffers {
            let key = layout.chunkSize << 8 | Int(layout.suite.rawValue)
            if let b = buffers[key] { return b }
            let b = ResealBuffers(layout: layout, threads: threads)
            buffers[key] = b
            return b
        }
    }

    func work() {
        // Spares wait at most one batch (with syncs, a batch's old inodes are freed for reuse
        // after the next batch's syncfs), so the pool holds about a batch.
        let spares = SpareInodes(pendingFD: store.layout.pendingFD, owner: replacing.stagedOwner, group: replacing.stagedGroup,
                                 maxFiles: options.batchFiles, maxBytes: options.batchBytes + options.batchBytes / 4)
        let worker = Worker(directories: BatchDirectories(root: store.dataDirectory, times: directoryTimes), spares: spares)
        defer {
            worker.directories.closeAll()
            spares.drain()
            lock.locked { reusedInodes += spares.reused }
        }
        var switched: [StagedMove] = []   // waiting for the next syncfs before `finish`
        var carried: Int? = nil
        var exhausted = false
        while !exhausted && lock.locked({ fatal == nil }) {
            var batch: [Staged] = []
            var inPlace: [InPlace] = []
            var bytes: UInt64 = 0
            while true {
                guard let i = carried ?? queue.next() else { exhausted = true; break }
                carried = nil
                let entry = list.entries[i]
                let count = batch.count + inPlace.count
                if count > 0 && (count >= options.batchFiles || bytes + entry.size > options.batchBytes
                                 || worker.directories.count >= RotationRun.maxDirectories) {
                    carried = i
                    break
                }
                switch handle(entry, worker, slot: inPlace.count) {
                case .replacing(let m)?:
                    if options.syncs {
                        batch.append(Staged(entry: entry, move: m))
                    } else if switchStaged(Staged(entry: entry, move: m), worker) {
                        replacing.finish(m, spares: worker.spares)   // its old inode is the next move's new file
                    }
                    bytes += entry.size
                case .inPlace(let m, let t)?: inPlace.append(InPlace(entry: entry, move: m, times: t)); bytes += entry.size
                case nil: break
                }
            }
            // One syncfs: this batch's new files and journals, the previous batch's renames.
            if options.syncs && !(batch.isEmpty && inPlace.isEmpty && switched.isEmpty) {
                do { try store.syncAll() } catch {
                    lock.locked { if fatal == nil { fatal = error } }
                    for s in batch { replacing.abandon(s.move); shared.advance(bytes: s.entry.size) }
                    for j in inPlace { shared.advance(bytes: j.entry.size) }   // committed: any open finishes them
                    lock.locked { unfinished += switched }
                    return
                }
            }
            for m in switched { replacing.finish(m, spares: worker.spares) }
            switched = []
            for s in batch where switchStaged(s, worker) { switched.append(s.move) }
            worker.directories.restoreTimesAndClose()
            if !inPlace.isEmpty && !completeInPlace(&inPlace) { return }
            worker.journalBuffers.release()
        }
        // The last batch's old metadata goes after the run's final syncfs.
        lock.locked { unfinished += switched }
    }

    /// Step 4 of §10.2 for one staged move: true when the new file took the name.
    private func switchStaged(_ s: Staged, _ worker: Worker) -> Bool {
        do {
            try replacing.switchName(s.move)
            lock.locked { moved += 1; bytesMoved += s.move.size }
            shared.advance(bytes: s.entry.size)
            return true
        } catch SealedStoreError.io(_, let e) where e == EACCES || e == EPERM {
            // A directory this process may not write to (or a sticky one it does not own):
            // the old file is untouched; move it in place instead.
            replacing.abandon(s.move)
            _ = handle(s.entry, worker, slot: nil)
        } catch {
            if !(error is SimulatedRotationCrash) { replacing.abandon(s.move) }
            fail(s.entry, error)
        }
        return false
    }

    /// Steps 4–6 of §7 for the batch's journaled moves (journals durable already): chunks and
    /// sidecars, sync, headers, sync, journals removed. False after a failed sync (run stops).
    private func completeInPlace(_ items: inout [InPlace]) -> Bool {
        let steps: [(PreparedMove) throws -> Void] = [journaled.applyChunksAndSidecar, journaled.switchHeader]
        for step in steps {
            for k in items.indices where !items[k].failed {
                do { try step(items[k].move) } catch { items[k].failed = true; fail(items[k].entry, error) }
            }
            if options.syncs {
                do { try store.syncAll() } catch {
                    lock.locked { if fatal == nil { fatal = error } }
                    for item in items where !item.failed { shared.advance(bytes: item.entry.size) }
                    return false
                }
            }
        }
        for item in items where !item.failed {
            try? journaled.cleanup(item.move)
            var t = item.times
            _ = futimens(item.move.fd, &t)
            lock.locked { moved += 1; journaledMoves += 1; bytesMoved += item.move.size }
            shared.advance(bytes: item.entry.size)
        }
        return true
    }

    /// After the run's final `syncfs`: the old metadata of the last batches.
    func finishRemaining() {
        for m in unfinished { replacing.finish(m) }
        unfinished = []
    }

    /// Opens one file and stages its replacement, or (a small file, with `slot` for its journal)
    /// commits its journaled move; a file already done, failed, or moved by the journaled path
    /// on its own (hard links; `slot` nil: the rename was refused) is settled here: nil.
    private func handle(_ entry: DataFileList.Entry, _ worker: Worker, slot: Int?) -> Handled? {
        let name = entry.components.last!
        var fd: Int32 = -1
        defer { if fd >= 0 { close(fd) } }
        do {
            let directory = try worker.directories.fd(for: entry.components.dropLast())
            fd = openAt(directory, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw SealedStoreError.io("open \(entry.path)", errno) }
            // Before any read: the times to give the moved file are those the sandbox last saw.
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw SealedStoreError.io("fstat \(entry.path)", errno) }
            // A rerun skips files an earlier run moved from the header alone (§10.2: the new
            // header only ever appears complete, with its chunks and sidecar, under the name).
            let first = try readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")
            if let h = FileHeader.parseFields(first), h.epoch == replacing.targetEpoch { return settleCurrent(entry) }
            let state = try FileState.load(store: store, fd: fd)
            if state.header.epoch == replacing.targetEpoch { return settleCurrent(entry) }
            let small = options.inPlaceLimit > 0 && state.sidecar.committedSize <= options.inPlaceLimit
            if let slot, small || options.journaledOnly {
                let prepared = try journaled.prepare(fd: fd, state: state, buffers: worker.journalBuffers, slot: slot)
                guard case .move(let m) = prepared else { return settleCurrent(entry) }
                fd = -1   // owned by the move now
                try journaled.commitJournal(m)
                return .inPlace(m, times(of: st))
            }
            if st.st_nlink == 1 && slot != nil {
                let threads = max(1, options.jobs)
                if let m = try replacing.stage(fd: fd, state: state, stat: st, directory: directory, name: name,
                                               buffers: worker.buffers(for: state.layout, threads: threads), spares: worker.spares) {
                    worker.directories.markChanged(entry.components.dropLast())
                    return .replacing(m)
                }
            }
            let owned = fd
            fd = -1
            try moveJournaled(entry, fd: owned, state: state, stat: st, worker)
        } catch {
            fail(entry, error)
        }
        return nil
    }

    private func settleCurrent(_ entry: DataFileList.Entry) -> Handled? {
        lock.locked { alreadyCurrent += 1 }
        shared.advance(bytes: entry.size)
        return nil
    }

    /// The §7 move through a journal, for a file a rename cannot replace; alone, each step
    /// durable before the next when `options.syncs`. Takes ownership of `fd`.
    private func moveJournaled(_ entry: DataFileList.Entry, fd: Int32, state: FileState, stat st: stat, _ worker: Worker) throws {
        // Its chunks are rewritten in place: the file's times are put back afterwards.
        let granted = budget.acquire(Int(clamping: entry.size.multipliedReportingOverflow(by: 2).partialValue))
        defer { budget.release(granted); worker.soloBuffers.release() }
        let prepared: JournaledMover.Prepared
        do { prepared = try journaled.prepare(fd: fd, state: state, buffers: worker.soloBuffers, slot: 0) } catch { close(fd); throw error }
        guard case .move(let m) = prepared else {
            close(fd)
            _ = settleCurrent(entry)
            return
        }
        let steps: [(PreparedMove) throws -> Void] = [journaled.commitJournal, journaled.applyChunksAndSidecar, journaled.switchHeader]
        for step in steps {
            try step(m)
            if options.syncs {
                do { try store.syncAll() } catch { lock.locked { if fatal == nil { fatal = error } }; throw error }
            }
        }
        try? journaled.cleanup(m)
        var t = times(of: st)
        _ = futimens(m.fd, &t)
        lock.locked { moved += 1; journaledMoves += 1; bytesMoved += m.size }
        shared.advance(bytes: entry.size)
    }

    private func fail(_ entry: DataFileList.Entry, _ error: Error) {
        var isDamage = false
        if case SealedStoreError.damaged = error { isDamage = true }
        lock.locked { failures.append(RotationFailure(path: entry.path, message: "\(error)", isDamage: isDamage)) }
        shared.advance(bytes: entry.size)
    }
}

/// The atime and mtime every directory under data/ had when this run first touched it. A switch
/// renames into the directory, which the sandbox would see as a changed directory; the times are
/// put back after each batch. (An interrupted run leaves them changed; its rerun keeps those.)
final class DirectoryTimes: @unchecked Sendable {
    private let lock = Mutex()
    private var original: [ArraySlice<String>: [timespec]] = [:]

    /// Records `fd`'s times under `path` unless recorded already. Must run before any rename
    /// into the directory by the caller (so the first record is always the untouched state).
    func remember(_ path: ArraySlice<String>, fd: Int32) {
        lock.locked {
            guard original[path] == nil else { return }
            var st = stat()
            if fstat(fd, &st) == 0 { original[path] = times(of: st) }
        }
    }

    func original(_ path: ArraySlice<String>) -> [timespec]? { lock.locked { original[path] } }
}

/// The directories of one worker's batch, open until its switches are done (staged moves borrow
/// them). Files come in path order, so a batch usually spans few directories.
final class BatchDirectories {
    private let root: Int32
    private let times: DirectoryTimes
    private var open: [ArraySlice<String>: Int32] = [:]
    private var changed = Set<ArraySlice<String>>()

    init(root: Int32, times: DirectoryTimes) { self.root = root; self.times = times }

    var count: Int { open.count }

    func fd(for path: ArraySlice<String>) throws -> Int32 {
        if let fd = open[path] { return fd }
        let fd = path.isEmpty ? root : try openBeneath(root, Array(path), flags: O_RDONLY | O_DIRECTORY)
        open[path] = fd
        times.remember(path, fd: fd)
        return fd
    }

    func markChanged(_ path: ArraySlice<String>) { changed.insert(path) }

    /// After the batch's renames: directory times back, directories closed.
    func restoreTimesAndClose() {
        for path in changed {
            if let fd = open[path], var t = times.original(path) { _ = futimens(fd, &t) }
        }
        changed = []
        closeAll()
    }

    func closeAll() {
        for (_, fd) in open where fd != root { close(fd) }
        open = [:]
    }
}
