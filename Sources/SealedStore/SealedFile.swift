#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One changed chunk for `SealedFile.commit`: its full new plaintext. Its length must be exactly the
/// chunk's length under the new size: `chunkSize`, or less for the last chunk.
public struct ChunkChange: Sendable {
    public var index: UInt64
    public var plaintext: [UInt8]
    public init(index: UInt64, plaintext: [UInt8]) { self.index = index; self.plaintext = plaintext }
}

/// A 16-byte keyed digest of a plaintext chunk (BLAKE2b under the file's digest key): lets a caller
/// remember what a committed chunk contained without keeping its plaintext, to detect changes.
public struct ChunkDigest: Hashable, Sendable { public let bytes: [UInt8] }

/// An open ciphertext file. Obtain from `SealedStore.createFile` or `openFile`; end with `close()`.
/// Thread-safe: reads share a lock, `commit` takes it exclusively.
public final class SealedFile: @unchecked Sendable {
    /// Strong: a file keeps its store alive (the store drops its files on close()).
    let store: SealedStore
    let inode: InodeKey
    let lock = ReadWriteLock()
    var fd: Int32
    var header: FileHeader
    var keys: FileKeys
    var codec: ChunkCodec
    var sidecar: Sidecar
    var valid = true
    /// Created by `createPendingFile` and not yet linked under data/ (import's bulk path).
    var isPendingCreate = false
    /// The file's last name is gone; its metadata goes at its last close (§7.1).
    private var pendingRemoval = false
    /// IDs recorded as meta/pending/<id>.gone while pending removal (more than one if it moved).
    private var goneIDs = Set<FileID>()

    /// What the store must still do for a file it drops (see `SealedStore.shutdown`).
    struct Leftovers {
        var removalIDs: [FileID]
        var goneIDs: Set<FileID>
        var pendingCreate: FileID?
    }

    init(store: SealedStore, fd: Int32, inode: InodeKey, header: FileHeader, keys: FileKeys, sidecar: Sidecar) {
        self.store = store; self.fd = fd; self.inode = inode; self.header = header; self.keys = keys; self.sidecar = sidecar
        codec = ChunkCodec(layout: ChunkLayout(chunkSize: header.chunkSize, suite: header.suite), keys: keys, headerFields: header.fields)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    // MARK: State

    /// Current file ID (changes when a commit moves the file to a fresh key, §5.3).
    public var id: FileID { lock.reading { header.fileID } }
    /// Committed plaintext size.
    public var committedSize: UInt64 { lock.reading { sidecar.committedSize } }
    /// Commit generation (0 after creation).
    public var generation: UInt64 { lock.reading { sidecar.generation } }
    public var chunkSize: Int { header.chunkSize }
    public var suite: CipherSuite { lock.reading { header.suite } }
    public var epoch: UInt32 { lock.reading { header.epoch } }
    /// Chunk encryptions under the current file key.
    public var encryptions: UInt64 { lock.reading { sidecar.encryptions } }
    public var chunkCount: UInt64 { lock.reading { codec.layout.chunkCount(size: sidecar.committedSize) } }
    /// The store's FD of the ciphertext file (borrowed: for fstat/fchmod/fchown/futimens only; never
    /// write through it, never close it).
    public var fileDescriptor: Int32 { lock.reading { fd } }

    /// Ends this handle. The last `close` of a file also performs a deferred removal.
    public func close() {
        let (last, remove) = store.release(self)
        guard last else { return }
        let left = invalidate()
        if remove { try? store.completeRemoval(left.removalIDs, recorded: left.goneIDs) }
        if let id = left.pendingCreate { store.abandonPending(id, error: SealedStoreError.closed) }
    }

    /// Makes the handle unusable; returns what a removal or an unfinished create left to do.
    @discardableResult
    func invalidate() -> Leftovers {
        lock.writing {
            valid = false
            if fd >= 0 { Glibc.close(fd); fd = -1 }
            var ids = [header.fileID]
            for g in goneIDs.sorted(by: { $0.hex < $1.hex }) where g != header.fileID { ids.append(g) }
            let left = Leftovers(removalIDs: ids, goneIDs: goneIDs, pendingCreate: isPendingCreate ? header.fileID : nil)
            isPendingCreate = false
            return left
        }
    }

    /// The file's last name is gone while it is open: record `<id>.gone` so that a crash before its
    /// last close still removes its metadata (at the next open of the store).
    func markPendingRemoval() throws {
        try lock.writing {
            pendingRemoval = true
            if !goneIDs.contains(header.fileID) {
                try store.layout.createRecord(header.fileID, .gone)
                goneIDs.insert(header.fileID)
            }
            try TestHooks.step(.goneRecorded)
        }
    }

    func checkValid() throws { if !valid { throw SealedStoreError.closed } }

    // MARK: Reading

    /// Decrypts committed chunk `index` (an empty array past the end).
    public func readChunk(_ index: UInt64) throws -> [UInt8] {
        try lock.reading {
            try checkValid()
            return try readChunkLocked(index)
        }
    }

    /// Decrypts chunks `range` (clamped to the committed size) and hands each to `body` in order.
    /// All chunks come from one committed state.
    public func readChunks(_ range: Range<UInt64>, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
        try lock.reading {
            try checkValid()
            try readChunksLocked(range, body)
        }
    }

    /// Reads up to `count` plaintext bytes at `offset` from one committed state (short at the end).
    public func read(offset: UInt64, count: Int) throws -> [UInt8] {
        try lock.reading {
            try checkValid()
            let size = sidecar.committedSize
            guard offset < size, count > 0 else { return [] }
            let end = offset + min(UInt64(count), size - offset)
            let c = UInt64(chunkSize)
            var out = [UInt8](); out.reserveCapacity(Int(end - offset))
            try readChunksLocked((offset / c)..<((end + c - 1) / c)) { index, plain in
                let chunkStart = index * c
                let lo = Int(max(offset, chunkStart) - chunkStart)
                let hi = Int(min(end, chunkStart + UInt64(plain.count)) - chunkStart)
                if lo < hi { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: plain[lo..<hi])) }
            }
            return out
        }
    }

    /// The whole committed content (one state).
    public func readAll() throws -> [UInt8] { try read(offset: 0, count: Int.max) }

    private func readChunksLocked(_ range: Range<UInt64>, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
        let n = codec.layout.chunkCount(size: sidecar.committedSize)
        let upper = min(range.upperBound, n)
        guard range.lowerBound < upper else { return }
        // Read in runs of up to 64 chunks so large ranges make few system calls.
        var start = range.lowerBound
        while start < upper {
            let end = min(upper, start + 64)
            let plain = try readRunLocked(start..<end)
            for (i, p) in plain.enumerated() { try p.withUnsafeBytes { try body(start + UInt64(i), $0) } }
            start = end
        }
    }

    /// Keyed digest of a plaintext chunk, for change detection by the caller.
    public func digest(of plaintext: UnsafeRawBufferPointer) -> ChunkDigest {
        let key = lock.reading { keys.digest }
        return ChunkDigest(bytes: Sodium.keyedHash(key: key, plaintext, outputLength: 16))
    }

    func readChunkLocked(_ index: UInt64) throws -> [UInt8] {
        guard index < codec.layout.chunkCount(size: sidecar.committedSize) else { return [] }
        return try readRunLocked(index..<(index + 1))[0]
    }

    /// Reads and decrypts consecutive committed chunks (caller holds the lock).
    private func readRunLocked(_ range: Range<UInt64>) throws -> [[UInt8]] {
        let layout = codec.layout
        let size = sidecar.committedSize
        let lengths = range.map { layout.plaintextLength(index: $0, size: size) }
        let total = lengths.reduce(0) { $0 + $1 + layout.overhead }
        var raw = [UInt8](repeating: 0, count: total)
        let got = try raw.withUnsafeMutableBytes { try readUpTo(fd: fd, $0, offset: layout.slotOffset(range.lowerBound), what: "read chunks") }
        var out = [[UInt8]](repeating: [], count: lengths.count)
        var failures = [Int](repeating: 0, count: lengths.count)   // 0 ok, 1 short, 2 auth
        var offsets = [Int](); var o = 0
        for l in lengths { offsets.append(o); o += l + layout.overhead }
        for i in 0..<lengths.count { out[i] = [UInt8](repeating: 0, count: lengths[i]) }
        let work = { (i: Int) in
            let slotLen = lengths[i] + layout.overhead
            if offsets[i] + slotLen > got { failures[i] = 1; return }
            let ok = raw.withUnsafeBytes { r in
                out[i].withUnsafeMutableBytes { p in
                    self.codec.open(index: range.lowerBound + UInt64(i), slot: UnsafeRawBufferPointer(rebasing: r[offsets[i]..<(offsets[i] + slotLen)]), into: p)
                }
            }
            if !ok { failures[i] = 2 }
        }
        if lengths.count >= 4 && store.options.parallelism > 1 {
            let o = UnsafeMutableBufferPointer<[UInt8]>.allocate(capacity: lengths.count)
            let f = UnsafeMutableBufferPointer<Int>.allocate(capacity: lengths.count)
            _ = o.initialize(from: out); _ = f.initialize(from: failures)
            defer { o.deinitialize(); o.deallocate(); f.deallocate() }
            let workers = min(store.options.parallelism, lengths.count)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < lengths.count {
                    let slotLen = lengths[i] + layout.overhead
                    if offsets[i] + slotLen > got { f[i] = 1 } else {
                        let ok = raw.withUnsafeBytes { r in
                            o[i].withUnsafeMutableBytes { p in
                                self.codec.open(index: range.lowerBound + UInt64(i), slot: UnsafeRawBufferPointer(rebasing: r[offsets[i]..<(offsets[i] + slotLen)]), into: p)
                            }
                        }
                        f[i] = ok ? 0 : 2
                    }
                    i += workers
                }
            }
            out = Array(o); failures = Array(f)
        } else {
            for i in 0..<lengths.count { work(i) }
        }
        if let bad = failures.firstIndex(where: { $0 != 0 }) {
            let index = range.lowerBound + UInt64(bad)
            for i in 0..<out.count { wipe(&out[i]) }
            throw SealedStoreError.damaged(Damage(failures[bad] == 1 ? .truncated : .chunk, fileID: header.fileID, chunk: index,
                                                  detail: failures[bad] == 1 ? "chunk is cut short" : "chunk authentication failed"))
        }
        return out
    }

    // MARK: Committing

    /// Atomically replaces the committed content by: the old content with `changes` applied,
    /// resized to `newSize` (growth reads as zeros). Chunks whose length changes at the old or new
    /// end are re-encrypted here if not given. After a crash at any instant the file reads as
    /// exactly the old or exactly the new content. `durable` makes the new state survive power loss
    /// on return (fsync of data, journal, sidecar and their directories).
    public func commit(_ changes: [ChunkChange], newSize: UInt64, durable: Bool) throws {
        try lock.writing {
            try checkValid()
            try commitLocked(changes, newSize: newSize, durable: durable)
        }
    }

    private func commitLocked(_ changes: [ChunkChange], newSize: UInt64, durable: Bool) throws {
        let layout = codec.layout
        let newN = layout.chunkCount(size: newSize)
        var jobs: [SealJob] = []
        jobs.reserveCapacity(changes.count)
        for ch in changes {
            guard ch.index < newN else { throw SealedStoreError.invalidArgument("chunk \(ch.index) is beyond the new size \(newSize)") }
            guard ch.plaintext.count == layout.plaintextLength(index: ch.index, size: newSize) else {
                throw SealedStoreError.invalidArgument("chunk \(ch.index) must be \(layout.plaintextLength(index: ch.index, size: newSize)) bytes, got \(ch.plaintext.count)")
            }
            jobs.append(SealJob(index: ch.index, length: ch.plaintext.count, source: .bytes(ch.plaintext)))
        }
        jobs.sort { $0.index < $1.index }
        for k in jobs.indices.dropFirst() where jobs[k].index == jobs[k - 1].index {
            throw SealedStoreError.invalidArgument("chunk \(jobs[k].index) given twice")
        }
        _ = try commitPlannedLocked(jobs, newSize: newSize, durable: durable, source: -1, observe: nil)
    }

    /// The commit protocol (Keys/README.md §7) for `given` (sorted, distinct, validated) chunks.
    /// Chunks whose length changes at the old or new end are added here if not given (from their
    /// committed plaintext), new chunks not given as zeros. `.descriptor` sources read from
    /// `source`. Returns whether such a read came back short.
    func commitPlannedLocked(_ given: [SealJob], newSize: UInt64, durable: Bool, source: Int32,
                             observe: ChunkObserver?) throws -> Bool {
        let layout = codec.layout
        let oldSize = sidecar.committedSize
        if given.isEmpty && newSize == oldSize {
            // Nothing changed (a Flush or FSync of a clean file): no new generation.
            if durable { try dataSyncFD(fd, what: "data file") }
            return false
        }
        let oldN = layout.chunkCount(size: oldSize), newN = layout.chunkCount(size: newSize)
        var jobs = given
        func isGiven(_ index: UInt64) -> Bool {
            var lo = 0, hi = given.count
            while lo < hi { let m = (lo + hi) / 2; if given[m].index < index { lo = m + 1 } else { hi = m } }
            return lo < given.count && given[lo].index == index
        }
        // Chunks whose length changes at the old end (growth) or the new end (shrink).
        for b in [oldN > 0 && newSize > oldSize ? oldN - 1 : nil, newN > 0 && newSize < oldSize ? newN - 1 : nil].compactMap({ $0 })
        where !isGiven(b) && layout.plaintextLength(index: b, size: oldSize) != layout.plaintextLength(index: b, size: newSize) {
            var p = try readChunkLocked(b)
            let want = layout.plaintextLength(index: b, size: newSize)
            if p.count > want { p.removeLast(p.count - want) } else { p += [UInt8](repeating: 0, count: want - p.count) }
            jobs.append(SealJob(index: b, length: want, source: .bytes(p)))
        }
        // New chunks not given read as zeros.
        if newN > oldN {
            for k in oldN..<newN where !isGiven(k) {   // never a boundary chunk: those are < oldN
                jobs.append(SealJob(index: k, length: layout.plaintextLength(index: k, size: newSize), source: .zeros))
            }
        }
        if jobs.count > given.count { jobs.sort { $0.index < $1.index } }
        let count = UInt64(jobs.count)
        if header.suite == .aes256gcm && sidecar.encryptions + count > store.options.rekeyThreshold {
            return try moveToFreshID(jobs, newSize: newSize, durable: durable, source: source, observe: observe)
        }
        let syncs = store.options.orderingSyncs || durable
        let firstJournaled = jobs.firstIndex { $0.index >= oldN } ?? jobs.count
        let journaledJobs = Array(jobs[..<firstJournaled])
        let directJobs = Array(jobs[firstJournaled...])
        let fileLength = try fileSize(fd: fd)
        let parallelism = store.options.parallelism

        // Steps 1–2: unreferenced chunks are sealed and written in place, run by run.
        let direct = try ChunkPipeline.seal(directJobs, codec: codec, source: source, parallelism: parallelism,
                                            into: .file(fd), observe: observe)
        if syncs && !directJobs.isEmpty { try dataSyncFD(fd, what: "data file") }
        try TestHooks.step(.directWritten)
        // Step 1 for referenced chunks: sealed into memory for the journal.
        let journaled = try ChunkPipeline.seal(journaledJobs, codec: codec, source: source, parallelism: parallelism,
                                               into: .memory, observe: observe)
        defer { journaled.slots.map(PageMemory.release) }
        let shortRead = direct.shortRead || journaled.shortRead

        var newSC = sidecar
        newSC.committedSize = newSize
        newSC.generation += 1
        newSC.encryptions += count
        newSC.previousFileID = .zero
        let newSCBytes = newSC.serialize(keys: keys)
        if journaledJobs.isEmpty {
            // Step 5 is the commit point.
            try store.layout.writeSidecar(header.fileID, newSCBytes, sync: syncs, syncDirectory: durable)
            sidecar = newSC
            try TestHooks.step(.sidecarWritten)
            if durable && directJobs.isEmpty { try dataSyncFD(fd, what: "data file") }
            if fileLength > layout.fileLength(size: newSize) { try FileState.trim(fd: fd, to: layout.fileLength(size: newSize)) }
            return shortRead
        }
        let journal = Journal(movesToFreshID: false, fileID: header.fileID, newSidecar: newSCBytes,
                              newHeader: header.serialize(keys: keys), entries: entries(journaledJobs, journaled))
        try writeJournal(journal, sync: syncs, syncDirectory: durable)
        sidecar = newSC   // committed: from here on, failures are repaired by replay
        do {
            try TestHooks.step(.journalWritten)
            try FileState.applyJournal(store: store, fd: fd, journal: journal, layout: layout, newSC: newSC, sync: syncs, syncDirectory: durable)
        } catch {
            valid = false   // the journal stays; the next open replays it
            throw error
        }
        return shortRead
    }

    /// Journal entries from slots sealed into memory.
    private func entries(_ jobs: [SealJob], _ sealed: ChunkPipeline.Sealed) -> [(index: UInt64, slot: [UInt8])] {
        guard let slots = sealed.slots else { return [] }
        let overhead = codec.layout.overhead
        return jobs.indices.map { j in
            let o = sealed.slotOffsets[j]
            return (jobs[j].index, Array(UnsafeRawBufferPointer(rebasing: slots[o..<(o + jobs[j].length + overhead)])))
        }
    }

    // MARK: Bulk path (import)

    /// Appends whole chunks beyond the in-memory size without touching the sidecar (a file from
    /// `createPendingFile`, not yet linked under data/). `changes` must be consecutive from the current chunk count.
    func appendBulk(_ changes: [ChunkChange], newSize: UInt64) throws {
        try lock.writing {
            try checkValid()
            let layout = codec.layout
            let first = layout.chunkCount(size: sidecar.committedSize)
            guard sidecar.committedSize % UInt64(layout.chunkSize) == 0 else { throw SealedStoreError.invalidArgument("bulk append after a partial chunk") }
            var jobs: [SealJob] = []
            jobs.reserveCapacity(changes.count)
            for (k, ch) in changes.enumerated() {
                guard ch.index == first + UInt64(k), ch.plaintext.count == layout.plaintextLength(index: ch.index, size: newSize) else {
                    throw SealedStoreError.invalidArgument("bulk append: bad chunk \(ch.index)")
                }
                jobs.append(SealJob(index: ch.index, length: ch.plaintext.count, source: .bytes(ch.plaintext)))
            }
            guard layout.chunkCount(size: newSize) == first + UInt64(changes.count) else { throw SealedStoreError.invalidArgument("bulk append: size") }
            _ = try ChunkPipeline.seal(jobs, codec: codec, source: -1, parallelism: store.options.parallelism, into: .file(fd), observe: nil)
            sidecar.committedSize = newSize
            sidecar.encryptions += UInt64(changes.count)
        }
    }

    /// Creates the sidecar of a bulk-written file (generation 1) and links it as `directory/name`:
    /// from here on it is an ordinary committed file. `prepare` runs on its FD first (attributes).
    func finishBulk(in directory: Int32, name: String, prepare: ((Int32) throws -> Void)? = nil) throws {
        try lock.writing {
            try checkValid()
            guard isPendingCreate else { throw SealedStoreError.invalidArgument("finishBulk: not a pending file") }
            try prepare?(fd)
            var sc = sidecar
            sc.generation = 1
            do {
                try store.linkPending(header.fileID, sidecar: sc.serialize(keys: keys), in: directory, name: Array(name.utf8))
            } catch {
                isPendingCreate = false   // linkPending cleaned up (or, simulated crash, must leave all as is)
                valid = false
                throw error
            }
            isPendingCreate = false
            sidecar = sc
        }
    }

    /// Writes `<id>.j.tmp`, syncs, renames to `<id>.j`: the commit point (§7 step 3).
    private func writeJournal(_ journal: Journal, sync: Bool, syncDirectory: Bool) throws {
        let dir = store.layout.journalFD
        let name = StoreLayout.journalName(journal.fileID)
        try replaceFileAt(dir, name, journal.serialize(keys: keys), syncFile: sync, syncDirectory: syncDirectory)
    }

    /// Re-encrypts the whole file under a fresh file ID and the newest epoch (§5.3): `changed`
    /// (sorted) as given, every other chunk from its committed plaintext.
    private func moveToFreshID(_ changed: [SealJob], newSize: UInt64, durable: Bool, source: Int32,
                               observe: ChunkObserver?) throws -> Bool {
        let layout = codec.layout
        let epoch = store.keyring.currentEpoch
        guard let master = store.keyring.masterKey(epoch: epoch) else { throw SealedStoreError.internal("no master key") }
        let newID = FileID.random()
        let newKeys = FileKeys(master: master, epoch: epoch, fileID: newID)
        let newHeader = FileHeader(suite: header.suite, chunkSize: header.chunkSize, epoch: epoch, fileID: newID)
        let newCodec = ChunkCodec(layout: layout, keys: newKeys, headerFields: newHeader.fields)
        let newN = layout.chunkCount(size: newSize)
        var all: [SealJob] = []
        all.reserveCapacity(Int(newN))
        var g = 0
        for k in 0..<newN {
            if g < changed.count && changed[g].index == k { all.append(changed[g]); g += 1; continue }
            all.append(SealJob(index: k, length: layout.plaintextLength(index: k, size: newSize), source: .bytes(try readChunkLocked(k))))
        }
        let sealed = try ChunkPipeline.seal(all, codec: newCodec, source: source, parallelism: store.options.parallelism,
                                            into: .memory, observe: observe)
        defer { sealed.slots.map(PageMemory.release) }
        let newSC = Sidecar(suite: header.suite, chunkSize: header.chunkSize, epoch: epoch, fileID: newID, committedSize: newSize,
                            generation: sidecar.generation + 1, encryptions: UInt64(all.count), previousFileID: header.fileID)
        let journal = Journal(movesToFreshID: true, fileID: header.fileID, newSidecar: newSC.serialize(keys: newKeys),
                              newHeader: newHeader.serialize(keys: newKeys), entries: entries(all, sealed))
        let syncs = store.options.orderingSyncs || durable
        if pendingRemoval {
            // The new sidecar must be found by recovery too if the process dies before the last close.
            try store.layout.createRecord(newID, .gone)
            goneIDs.insert(newID)
        }
        try writeJournal(journal, sync: syncs, syncDirectory: durable)
        header = newHeader; keys = newKeys; codec = newCodec; sidecar = newSC
        do {
            try TestHooks.step(.journalWritten)
            try FileState.applyJournal(store: store, fd: fd, journal: journal, layout: layout, newSC: newSC, sync: syncs, syncDirectory: durable)
        } catch {
            valid = false
            throw error
        }
        return sealed.shortRead
    }
}
