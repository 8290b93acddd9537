#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Sees the plaintext of a chunk while it is hot in the cache (a sealed chunk just before it is
/// encrypted, an opened chunk just after it is decrypted). Called from worker threads, concurrently,
/// once per chunk; the buffer is only valid during the call.
public typealias ChunkObserver = (UInt64, UnsafeRawBufferPointer) -> Void

/// Hands out work items to a few threads, and keeps the first error one of them hit.
public final class WorkCursor: @unchecked Sendable {
    private let lock = Mutex()
    private var next = 0
    private let count: Int
    private var failure: Error?
    private var flagged = false

    public init(count: Int) { self.count = count }

    /// The next item to do, or nil when all are taken or a worker failed.
    public func take() -> Int? {
        lock.locked {
            guard failure == nil, next < count else { return nil }
            next += 1
            return next - 1
        }
    }

    /// Records an error (the first one is kept) and stops handing out work.
    public func fail(_ error: Error) { lock.locked { if failure == nil { failure = error } } }

    public func rethrow() throws { if let f = lock.locked({ failure }) { throw f } }

    /// A sticky flag any worker may raise (e.g. "a read came back short").
    public func raiseFlag() { lock.locked { flagged = true } }
    public var isFlagged: Bool { lock.locked { flagged } }

    /// Runs `body(worker)` on `workers` threads (inline when 1) and rethrows the first failure.
    public func run(workers: Int, _ body: (Int) throws -> Void) throws {
        let n = max(1, workers)
        if n == 1 {
            do { try body(0) } catch { fail(error) }
        } else {
            DispatchQueue.concurrentPerform(iterations: n) { w in
                do { try body(w) } catch { fail(error) }
            }
        }
        try rethrow()
    }
}

/// Large buffers straight from mmap. Freeing a large malloc block moves glibc's
/// dynamic mmap/trim thresholds, after which the server's per-RPC 1 MiB reply
/// arrays were served from a heap top that was trimmed and regrown (faulted in
/// again) on every PRead: 3x the CPU of a PRead in sealed-bench. The pipeline's
/// buffers therefore never touch malloc.
enum PageMemory {
    /// Fails with ENOMEM (a commit of a huge rewrite can ask for a lot) rather than trapping.
    static func allocate(_ bytes: Int) throws -> UnsafeMutableRawBufferPointer {
        let length = (max(bytes, 1) + 4095) & ~4095
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw SealedStoreError.io("mmap of \(length) bytes", errno) }
        return UnsafeMutableRawBufferPointer(start: p, count: length)
    }

    static func release(_ buffer: UnsafeMutableRawBufferPointer) {
        if let base = buffer.baseAddress { munmap(base, buffer.count) }
    }
}

/// Page-aligned buffers for the pipeline's workers, kept between calls so that a commit or a scratch
/// fill does not fault fresh pages in for every chunk it moves. Thread-safe. Buffers hold plaintext
/// (never keys); the scratch files hold the same plaintext anyway.
public final class WorkBuffers: @unchecked Sendable {
    public static let shared = WorkBuffers()
    private let lock = Mutex()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private let keep = 16
    private let keepBytes = 8 << 20

    /// A buffer of at least `bytes` bytes (give it back with `give`).
    public func take(_ bytes: Int) throws -> UnsafeMutableRawBufferPointer {
        let want = max(bytes, 4096)
        if let b = lock.locked({ () -> UnsafeMutableRawBufferPointer? in
            // Best fit: a large buffer taken for a small request would make the
            // next large request allocate (and fault in) a fresh one.
            var pick: Int? = nil
            for (i, b) in free.enumerated() where b.count >= want && (pick == nil || b.count < free[pick!].count) { pick = i }
            return pick.map { free.remove(at: $0) }
        }) { return b }
        return try PageMemory.allocate(want)
    }

    public func give(_ buffer: UnsafeMutableRawBufferPointer) {
        let kept = lock.locked { () -> Bool in
            guard free.count < keep, buffer.count <= keepBytes else { return false }
            free.append(buffer)
            return true
        }
        if !kept { PageMemory.release(buffer) }
    }

    func with<R>(_ bytes: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        let b = try take(bytes)
        defer { give(b) }
        return try body(UnsafeMutableRawBufferPointer(rebasing: b[0..<bytes]))
    }
}

/// Where the plaintext of one chunk to seal comes from.
enum PlaintextSource {
    /// Exactly the chunk's length.
    case bytes([UInt8])
    /// `pread` from the pipeline's source descriptor at index × chunkSize; what is missing (the
    /// file shrank meanwhile) reads as zeros.
    case descriptor
    case zeros
}

struct SealJob {
    var index: UInt64
    /// Plaintext length (≥ 1).
    var length: Int
    var source: PlaintextSource
}

/// Bulk sealing and opening of chunks on a few threads, with no allocation per chunk: each worker
/// takes runs of up to `runChunks` consecutive chunks, reads each plaintext chunk into its own
/// cache-sized buffer (hashed there by the observer while hot), seals it into its slot-run buffer
/// and writes the run with one `pwrite`.
enum ChunkPipeline {
    static let runChunks = 16

    enum Destination {
        /// Slots written in place into this ciphertext file as each run is sealed.
        case file(Int32)
        /// Slots kept in memory, one buffer in job order (for a journal).
        case memory
    }

    struct Sealed {
        /// `.memory` only: the slots, back to back in job order. The caller releases
        /// it (`PageMemory.release`).
        var slots: UnsafeMutableRawBufferPointer?
        var slotOffsets: [Int]
        /// A `.descriptor` chunk read short (the source shrank during the commit).
        var shortRead: Bool
    }

    /// Chunks per run: at most `runChunks`, fewer when there are few chunks, so
    /// that every worker gets some (a 1 MiB read is only 16 chunks).
    static func runLength(chunks: Int, workers: Int) -> Int {
        max(1, min(runChunks, (chunks + 2 * workers - 1) / (2 * workers)))
    }

    /// Splits sorted jobs into runs of consecutive indices, each at most `maxRun` long.
    static func runs(_ jobs: [SealJob], maxRun: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < jobs.count {
            var j = i + 1
            while j < jobs.count && jobs[j].index == jobs[j - 1].index + 1 && j - i < maxRun { j += 1 }
            out.append(i..<j)
            i = j
        }
        return out
    }

    static func seal(_ jobs: [SealJob], codec: ChunkCodec, source: Int32, parallelism: Int,
                     into destination: Destination, observe: ChunkObserver?) throws -> Sealed {
        let layout = codec.layout
        let c = UInt64(layout.chunkSize)
        var offsets = [Int](); offsets.reserveCapacity(jobs.count)
        var total = 0
        for j in jobs { offsets.append(total); total += j.length + layout.overhead }
        guard !jobs.isEmpty else { return Sealed(slots: nil, slotOffsets: [], shortRead: false) }
        let runs = runs(jobs, maxRun: runLength(chunks: jobs.count, workers: max(1, parallelism)))
        let needsZeros = jobs.contains { if case .zeros = $0.source { return true }; return false }
        let zeros = needsZeros ? try PageMemory.allocate(layout.chunkSize) : nil   // anonymous pages read as zeros
        defer { zeros.map(PageMemory.release) }
        var memory: UnsafeMutableRawBufferPointer? = nil
        if case .memory = destination {
            memory = try PageMemory.allocate(total)
        }
        let cursor = WorkCursor(count: runs.count)
        let workers = min(max(1, parallelism), runs.count)
        do {
            try cursor.run(workers: workers) { _ in
                let plain = try WorkBuffers.shared.take(layout.chunkSize)
                defer { WorkBuffers.shared.give(plain) }
                let runBuffer: UnsafeMutableRawBufferPointer? = memory == nil ? try WorkBuffers.shared.take(runChunks * layout.slotSize) : nil
                defer { if let runBuffer { WorkBuffers.shared.give(runBuffer) } }
                var sawShort = false
                while let r = cursor.take() {
                    let run = runs[r]
                    var off = 0
                    for j in run {
                        let job = jobs[j]
                        let slotLength = job.length + layout.overhead
                        let slot = memory.map { UnsafeMutableRawBufferPointer(rebasing: $0[offsets[j]..<(offsets[j] + slotLength)]) }
                            ?? UnsafeMutableRawBufferPointer(rebasing: runBuffer![off..<(off + slotLength)])
                        func sealFrom(_ p: UnsafeRawBufferPointer) {
                            observe?(job.index, p)
                            codec.seal(index: job.index, plaintext: p, into: slot)
                        }
                        switch job.source {
                        case .bytes(let bytes):
                            bytes.withUnsafeBytes { sealFrom($0) }
                        case .zeros:
                            sealFrom(UnsafeRawBufferPointer(rebasing: zeros![0..<job.length]))
                        case .descriptor:
                            let p = UnsafeMutableRawBufferPointer(rebasing: plain[0..<job.length])
                            let got = try readUpTo(fd: source, p, offset: job.index * c, what: "read plaintext")
                            if got < job.length {
                                sawShort = true
                                UnsafeMutableRawBufferPointer(rebasing: p[got...]).initializeMemory(as: UInt8.self, repeating: 0)
                            }
                            sealFrom(UnsafeRawBufferPointer(p))
                        }
                        off += slotLength
                    }
                    if case .file(let fd) = destination {
                        try writeAll(fd: fd, UnsafeRawBufferPointer(rebasing: runBuffer![0..<off]),
                                     offset: layout.slotOffset(jobs[run.lowerBound].index), what: "write chunks")
                    }
                }
                if sawShort { cursor.raiseFlag() }
            }
        } catch {
            memory.map(PageMemory.release)
            throw error
        }
        return Sealed(slots: memory, slotOffsets: offsets, shortRead: cursor.isFlagged)
    }

    /// Where opened chunks go.
    enum Sink {
        /// Plaintext written at its offset (index × chunkSize) into this file.
        case file(Int32)
        /// Chunk i's plaintext to base + (i × chunkSize − startOffset): whole chunks inside a
        /// caller's buffer that starts at plaintext offset `startOffset`.
        case buffer(UnsafeMutableRawPointer, startOffset: UInt64)
        /// Only the observer sees the plaintext.
        case none
    }

    /// Reads and authenticates chunks `range` (all < the committed chunk count of `size`) from the
    /// ciphertext file `fd`. A failure throws the damage of a failing chunk (the first one a worker
    /// met); plaintext already handed on for other chunks must then be discarded by the caller.
    static func open(_ range: Range<UInt64>, size: UInt64, codec: ChunkCodec, fileID: FileID, fd: Int32,
                     parallelism: Int, into sink: Sink, observe: ChunkObserver?) throws {
        guard !range.isEmpty else { return }
        let layout = codec.layout
        let c = UInt64(layout.chunkSize)
        let per = UInt64(runLength(chunks: range.count, workers: max(1, parallelism)))
        let runCount = Int((UInt64(range.count) + per - 1) / per)
        let cursor = WorkCursor(count: runCount)
        try cursor.run(workers: min(max(1, parallelism), runCount)) { _ in
            let slots = try WorkBuffers.shared.take(runChunks * layout.slotSize)
            defer { WorkBuffers.shared.give(slots) }
            let plainRun: UnsafeMutableRawBufferPointer?
            if case .buffer = sink { plainRun = nil } else { plainRun = try WorkBuffers.shared.take(runChunks * layout.chunkSize) }
            defer { if let plainRun { WorkBuffers.shared.give(plainRun) } }
            while let r = cursor.take() {
                let first = range.lowerBound + UInt64(r) * per
                let last = min(range.upperBound, first + per)
                var want = 0
                for k in first..<last { want += layout.plaintextLength(index: k, size: size) + layout.overhead }
                let got = try readUpTo(fd: fd, UnsafeMutableRawBufferPointer(rebasing: slots[0..<want]),
                                       offset: layout.slotOffset(first), what: "read chunks")
                var off = 0, plainOff = 0
                for k in first..<last {
                    let length = layout.plaintextLength(index: k, size: size)
                    let slotLength = length + layout.overhead
                    guard off + slotLength <= got else {
                        throw SealedStoreError.damaged(Damage(.truncated, fileID: fileID, chunk: k, detail: "chunk is cut short"))
                    }
                    let out: UnsafeMutableRawBufferPointer
                    if case .buffer(let base, let start) = sink {
                        out = UnsafeMutableRawBufferPointer(start: base + Int(k * c - start), count: length)
                    } else {
                        out = UnsafeMutableRawBufferPointer(rebasing: plainRun![plainOff..<(plainOff + length)])
                    }
                    guard codec.open(index: k, slot: UnsafeRawBufferPointer(rebasing: slots[off..<(off + slotLength)]), into: out) else {
                        throw SealedStoreError.damaged(Damage(.chunk, fileID: fileID, chunk: k, detail: "chunk authentication failed"))
                    }
                    observe?(k, UnsafeRawBufferPointer(out))
                    off += slotLength
                    plainOff += length
                }
                if case .file(let target) = sink {
                    try writeAll(fd: target, UnsafeRawBufferPointer(rebasing: plainRun![0..<plainOff]), offset: first * c, what: "write plaintext")
                }
            }
        }
    }
}
