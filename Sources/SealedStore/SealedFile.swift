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
    private let lock = ReadWriteLock()
    private var fd: Int32
    private var header: FileHeader
    private var keys: FileKeys
    private var codec: ChunkCodec
    private var sidecar: Sidecar
    private var valid = true
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

    private func checkValid() throws { if !valid { throw SealedStoreError.closed } }

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

    private func readChunkLocked(_ index: UInt64) throws -> [UInt8] {
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
        let oldSize = sidecar.committedSize
        if changes.isEmpty && newSize == oldSize {
            // Nothing changed (a Flush or FSync of a clean file): no new generation.
            if durable { try dataSyncFD(fd, what: "data file") }
            return
        }
        let oldN = layout.chunkCount(size: oldSize), newN = layout.chunkCount(size: newSize)
        var plain: [UInt64: [UInt8]] = [:]
        for ch in changes {
            guard ch.index < newN else { throw SealedStoreError.invalidArgument("chunk \(ch.index) is beyond the new size \(newSize)") }
            guard ch.plaintext.count == layout.plaintextLength(index: ch.index, size: newSize) else {
                throw SealedStoreError.invalidArgument("chunk \(ch.index) must be \(layout.plaintextLength(index: ch.index, size: newSize)) bytes, got \(ch.plaintext.count)")
            }
            guard plain.updateValue(ch.plaintext, forKey: ch.index) == nil else {
                throw SealedStoreError.invalidArgument("chunk \(ch.index) given twice")
            }
        }
        // Chunks whose length changes at the old end (growth) or the new end (shrink).
        for b in [oldN > 0 && newSize > oldSize ? oldN - 1 : nil, newN > 0 && newSize < oldSize ? newN - 1 : nil].compactMap({ $0 })
        where plain[b] == nil && layout.plaintextLength(index: b, size: oldSize) != layout.plaintextLength(index: b, size: newSize) {
            var p = try readChunkLocked(b)
            let want = layout.plaintextLength(index: b, size: newSize)
            if p.count > want { p.removeLast(p.count - want) } else { p += [UInt8](repeating: 0, count: want - p.count) }
            plain[b] = p
        }
        // New chunks not given read as zeros.
        if newN > oldN {
            for k in oldN..<newN where plain[k] == nil {
                plain[k] = [UInt8](repeating: 0, count: layout.plaintextLength(index: k, size: newSize))
            }
        }
        let count = UInt64(plain.count)
        if header.suite == .aes256gcm && sidecar.encryptions + count > store.options.rekeyThreshold {
            try moveToFreshID(plain, newSize: newSize, durable: durable)
            return
        }
        let syncs = store.options.orderingSyncs || durable
        let sealed = seal(plain, codec: codec)
        let direct = sealed.filter { $0.first >= oldN }
        let journaled = sealed.filter { $0.first < oldN }
        let fileLength = try fileSize(fd: fd)

        // Step 2: unreferenced chunks in place.
        for run in direct { try writeAll(fd: fd, run.bytes, offset: layout.slotOffset(run.first), what: "write chunks") }
        if syncs && !direct.isEmpty { try dataSyncFD(fd, what: "data file") }
        try TestHooks.step(.directWritten)

        var newSC = sidecar
        newSC.committedSize = newSize
        newSC.generation += 1
        newSC.encryptions += count
        newSC.previousFileID = .zero
        let newSCBytes = newSC.serialize(keys: keys)
        if journaled.isEmpty {
            // Step 5 is the commit point.
            try store.layout.writeSidecar(header.fileID, newSCBytes, sync: syncs, syncDirectory: durable)
            sidecar = newSC
            try TestHooks.step(.sidecarWritten)
            if durable && direct.isEmpty { try dataSyncFD(fd, what: "data file") }
            sidecar = newSC
            if fileLength > layout.fileLength(size: newSize) { try FileState.trim(fd: fd, to: layout.fileLength(size: newSize)) }
            return
        }
        let journal = Journal(movesToFreshID: false, fileID: header.fileID, newSidecar: newSCBytes,
                              newHeader: header.serialize(keys: keys), entries: journaled.flatMap { $0.slots(layout: layout, size: newSize) })
        try writeJournal(journal, sync: syncs, syncDirectory: durable)
        sidecar = newSC   // committed: from here on, failures are repaired by replay
        do {
            try TestHooks.step(.journalWritten)
            try FileState.applyJournal(store: store, fd: fd, journal: journal, layout: layout, newSC: newSC, sync: syncs, syncDirectory: durable)
        } catch {
            valid = false   // the journal stays; the next open replays it
            throw error
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
            var plain: [UInt64: [UInt8]] = [:]
            for (k, ch) in changes.enumerated() {
                guard ch.index == first + UInt64(k), ch.plaintext.count == layout.plaintextLength(index: ch.index, size: newSize) else {
                    throw SealedStoreError.invalidArgument("bulk append: bad chunk \(ch.index)")
                }
                plain[ch.index] = ch.plaintext
            }
            guard layout.chunkCount(size: newSize) == first + UInt64(changes.count) else { throw SealedStoreError.invalidArgument("bulk append: size") }
            for run in seal(plain, codec: codec) {
                try writeAll(fd: fd, run.bytes, offset: layout.slotOffset(run.first), what: "write chunks")
            }
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

    /// Re-encrypts the whole file under a fresh file ID and the newest epoch (§5.3).
    private func moveToFreshID(_ changed: [UInt64: [UInt8]], newSize: UInt64, durable: Bool) throws {
        let layout = codec.layout
        let epoch = store.keyring.currentEpoch
        guard let master = store.keyring.masterKey(epoch: epoch) else { throw SealedStoreError.internal("no master key") }
        let newID = FileID.random()
        let newKeys = FileKeys(master: master, epoch: epoch, fileID: newID)
        let newHeader = FileHeader(suite: header.suite, chunkSize: header.chunkSize, epoch: epoch, fileID: newID)
        let newCodec = ChunkCodec(layout: layout, keys: newKeys, headerFields: newHeader.fields)
        var all: [UInt64: [UInt8]] = [:]
        let newN = layout.chunkCount(size: newSize)
        for k in 0..<newN { all[k] = try changed[k] ?? readChunkLocked(k) }
        let sealed = seal(all, codec: newCodec)
        let newSC = Sidecar(suite: header.suite, chunkSize: header.chunkSize, epoch: epoch, fileID: newID, committedSize: newSize,
                            generation: sidecar.generation + 1, encryptions: UInt64(all.count), previousFileID: header.fileID)
        let journal = Journal(movesToFreshID: true, fileID: header.fileID, newSidecar: newSC.serialize(keys: newKeys),
                              newHeader: newHeader.serialize(keys: newKeys), entries: sealed.flatMap { $0.slots(layout: layout, size: newSize) })
        let syncs = store.options.orderingSyncs || durable
        if pendingRemoval {
            // The new sidecar must be found by recovery too if the process dies before the last close.
            try store.layout.createRecord(newID, .gone)
            goneIDs.insert(newID)
        }
        try writeJournal(journal, sync: syncs, syncDirectory: durable)
        let oldID = header.fileID
        header = newHeader; keys = newKeys; codec = newCodec; sidecar = newSC
        _ = oldID
        do {
            try TestHooks.step(.journalWritten)
            try FileState.applyJournal(store: store, fd: fd, journal: journal, layout: layout, newSC: newSC, sync: syncs, syncDirectory: durable)
        } catch {
            valid = false
            throw error
        }
    }

    /// Encrypts chunks into contiguous runs of consecutive indices, in parallel when it pays.
    private func seal(_ plain: [UInt64: [UInt8]], codec: ChunkCodec) -> [SealedRun] {
        let layout = codec.layout
        let indices = plain.keys.sorted()
        var runs: [SealedRun] = []
        var i = 0
        while i < indices.count {
            var j = i + 1
            while j < indices.count && indices[j] == indices[j - 1] + 1 && j - i < 256 { j += 1 }
            let slice = Array(indices[i..<j])
            let lengths = slice.map { plain[$0]!.count + layout.overhead }
            runs.append(SealedRun(first: slice[0], lengths: lengths, bytes: []))
            i = j
        }
        // Flatten to jobs (run, position, offset) and encrypt them on up to `parallelism` threads.
        var jobs: [(run: Int, index: UInt64, offset: Int, length: Int)] = []
        for (r, run) in runs.enumerated() {
            var off = 0
            for (k, l) in run.lengths.enumerated() { jobs.append((r, run.first + UInt64(k), off, l)); off += l }
        }
        let buffers = runs.map { run -> UnsafeMutableRawBufferPointer in
            let total = run.lengths.reduce(0, +)
            let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 16)
            return UnsafeMutableRawBufferPointer(rebasing: p[0..<total])
        }
        defer { for b in buffers { b.baseAddress.map { UnsafeMutableRawPointer($0).deallocate() } } }
        let doJob = { (j: Int) in
            let job = jobs[j]
            plain[job.index]!.withUnsafeBytes { p in
                codec.seal(index: job.index, plaintext: p,
                           into: UnsafeMutableRawBufferPointer(rebasing: buffers[job.run][job.offset..<(job.offset + job.length)]))
            }
        }
        let workers = min(store.options.parallelism, jobs.count)
        if workers > 1 && jobs.count >= 4 {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var j = w
                while j < jobs.count { doJob(j); j += workers }
            }
        } else {
            for j in 0..<jobs.count { doJob(j) }
        }
        for r in 0..<runs.count { runs[r].bytes = Array(buffers[r]) }
        return runs
    }
}

/// Consecutive sealed chunk slots, ready to be written with one pwrite.
struct SealedRun {
    var first: UInt64
    var lengths: [Int]
    var bytes: [UInt8]

    func slots(layout: ChunkLayout, size: UInt64) -> [(index: UInt64, slot: [UInt8])] {
        var out: [(UInt64, [UInt8])] = []
        var off = 0
        for (k, l) in lengths.enumerated() { out.append((first + UInt64(k), Array(bytes[off..<(off + l)]))); off += l }
        return out
    }
}
