import CLinux
import Dispatch
import Glibc
import Lisafs
import SealedStore

/// The plaintext copy of one file that the client reads and writes directly
/// through donated FDs, and what is known about its last commit.
///
/// Change detection: `digests[i]` is the change digest of committed chunk i;
/// `recorded` is the scratch's (size, ctime) when its content last equalled the
/// committed content. Every write through any FD of the scratch moves its ctime
/// (which the client cannot set back), so an unchanged (size, ctime) means
/// nothing to commit — unless the record is *racy*: taken in the same clock tick
/// as a write, whose successor in that tick would keep the ctime. Racy records,
/// and writes through shared mappings (which on tmpfs do not touch ctime at all),
/// are caught by a full scan: every chunk hashed and compared.
final class ScratchFile {
    let fd: Int32
    let chunkSize: Int
    var digests: [ChangeDigest]
    /// Plaintext size the digests describe (the file's committed size).
    var committedSize: UInt64
    private var recordedSize: Int64 = -1
    private var recordedCtime = timespec()
    private(set) var isRacy = true
    /// The scratch's ctime right after it was filled. Filling (and copying the
    /// ciphertext's times onto it) moves ctime; only a later change means the
    /// client changed the file, so stat reports the scratch's ctime only then.
    private(set) var filledCtime = timespec()

    /// The outcome of reading the scratch: what differs from the commit.
    struct Scan {
        var size: UInt64
        var changes: [ChunkChange]
        var digests: [ChangeDigest]
        var stat: stat
        var sampledAfterStat: Int64
        var hadShortRead: Bool
        var isEmpty: Bool { changes.isEmpty }
    }

    private init(fd: Int32, chunkSize: Int, digests: [ChangeDigest], committedSize: UInt64) {
        self.fd = fd
        self.chunkSize = chunkSize
        self.digests = digests
        self.committedSize = committedSize
    }

    /// A scratch holding the committed plaintext of `sealed` (or nothing when
    /// `empty`), with the ciphertext's atime/mtime. Digests are computed only when
    /// a `digester` is given (readonly mounts never commit).
    static func create(space: ScratchSpace, sealed: SealedFile, digester: ChangeDigester?, empty: Bool,
                       ciphertextTimes: (atime: timespec, mtime: timespec)?, fineTimestamps: Bool) throws -> ScratchFile {
        let fd = try space.create()
        do {
            let c = UInt64(sealed.chunkSize)
            var digests: [ChangeDigest] = []
            if !empty {
                let n = sealed.chunkCount
                digests.reserveCapacity(Int(n))
                try sealed.readChunks(0..<n) { index, plain in
                    try Sys.writeFully(fd, plain, at: index * c)
                    if let digester { digests.append(digester.digest(plain)) }
                }
            }
            if let times = ciphertextTimes {
                try Sys.setTimes(fd, atime: times.atime, mtime: times.mtime)
            }
            let scratch = ScratchFile(fd: fd, chunkSize: sealed.chunkSize, digests: digests, committedSize: sealed.committedSize)
            let st = try Sys.fstat(fd)
            scratch.filledCtime = st.st_ctim
            scratch.record(st, sampledAfterStat: clinux_coarse_realtime_ns(), fineTimestamps: fineTimestamps, shortRead: false)
            return scratch
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// True when `st` shows no write since the last record (and the record is not
    /// racy), and the scratch's size is the committed size (an O_TRUNC open
    /// starts with an empty scratch that is not yet committed).
    func isUnchanged(_ st: stat) -> Bool {
        !isRacy && Int64(st.st_size) == recordedSize && UInt64(max(0, st.st_size)) == committedSize
            && st.st_ctim.tv_sec == recordedCtime.tv_sec && st.st_ctim.tv_nsec == recordedCtime.tv_nsec
    }

    /// Reads the whole scratch, hashing each chunk (on up to `parallelism`
    /// threads) and collecting the chunks whose digest differs from the commit.
    /// Chunks past the committed ones are changes by definition: they are read
    /// straight into the arrays handed to the store (no extra copy).
    func scan(digester: ChangeDigester, parallelism: Int) throws -> Scan {
        let st = try Sys.fstat(fd)
        let sampled = clinux_coarse_realtime_ns()
        let size = UInt64(max(0, st.st_size))
        let c = UInt64(chunkSize)
        let count = Int((size + c - 1) / c)
        var newDigests = [ChangeDigest](repeating: ChangeDigest(low: 0, high: 0), count: count)
        var changes: [ChunkChange] = []
        var shortRead = false
        // Runs of up to 8 MiB: few system calls, bounded memory.
        let runChunks = max(1, (8 << 20) / chunkSize)
        let known = min(count, digests.count)
        func length(_ index: Int) -> Int { Int(min(c, size - UInt64(index) * c)) }

        // Known chunks: read a run, hash it, copy out what differs.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: runChunks * chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var first = 0
        while first < known {
            let last = min(known, first + runChunks)
            let start = UInt64(first) * c
            let bytes = Int(min(size, UInt64(last) * c) - start)
            let window = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
            let got = try Sys.readFully(fd, window, at: start)
            if got < bytes {
                // Truncated under us: what is missing reads as zeros, and the
                // record is marked racy so the next check scans again.
                shortRead = true
                UnsafeMutableRawBufferPointer(rebasing: window[got...]).initializeMemory(as: UInt8.self, repeating: 0)
            }
            let base = first
            hash(count: last - first, parallelism: parallelism, into: &newDigests, at: base) { k in
                let lo = k * self.chunkSize
                return digester.digest(UnsafeRawBufferPointer(rebasing: window[lo..<min(bytes, lo + self.chunkSize)]))
            }
            for k in 0..<(last - first) where digests[base + k] != newDigests[base + k] {
                let lo = k * chunkSize
                changes.append(ChunkChange(index: UInt64(base + k), plaintext: Array(UnsafeRawBufferPointer(rebasing: window[lo..<min(bytes, lo + chunkSize)]))))
            }
            first = last
        }

        // New chunks: each read into its own array, then hashed.
        first = known
        while first < count {
            let last = min(count, first + runChunks)
            var batch: [[UInt8]] = []
            batch.reserveCapacity(last - first)
            for index in first..<last {
                let want = length(index)
                var got = 0
                var failure: Error? = nil
                let chunk = [UInt8](unsafeUninitializedCapacity: want) { raw, initialized in
                    do {
                        got = try Sys.readFully(fd, UnsafeMutableRawBufferPointer(raw), at: UInt64(index) * c)
                    } catch {
                        failure = error
                    }
                    if got < want {
                        UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(raw)[got...]).initializeMemory(as: UInt8.self, repeating: 0)
                    }
                    initialized = want
                }
                if let failure { throw failure }
                if got < want { shortRead = true }
                batch.append(chunk)
            }
            let base = first
            let chunks = batch   // read concurrently, never mutated
            hash(count: chunks.count, parallelism: parallelism, into: &newDigests, at: base) { k in
                chunks[k].withUnsafeBytes { digester.digest($0) }
            }
            for (k, chunk) in batch.enumerated() { changes.append(ChunkChange(index: UInt64(base + k), plaintext: chunk)) }
            first = last
        }
        return Scan(size: size, changes: changes, digests: newDigests, stat: st, sampledAfterStat: sampled, hadShortRead: shortRead)
    }

    /// Digests of `count` chunks into `out[base...]`, on up to `parallelism` threads.
    private func hash(count: Int, parallelism: Int, into out: inout [ChangeDigest], at base: Int,
                      _ digestOf: (Int) -> ChangeDigest) {
        out.withUnsafeMutableBufferPointer { buffer in
            let target = buffer
            let workers = min(parallelism, count)
            if workers > 1 {
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    var k = w
                    while k < count { target[base + k] = digestOf(k); k += workers }
                }
            } else {
                for k in 0..<count { target[base + k] = digestOf(k) }
            }
        }
    }

    /// The scan's content is now the committed content.
    func accept(_ scan: Scan, fineTimestamps: Bool) {
        digests = scan.digests
        committedSize = scan.size
        record(scan.stat, sampledAfterStat: scan.sampledAfterStat, fineTimestamps: fineTimestamps, shortRead: scan.hadShortRead)
    }

    /// Replaces what is known about the commit (after reopening the store file).
    func resetCommitted(digests: [ChangeDigest], size: UInt64) {
        self.digests = digests
        committedSize = size
        isRacy = true
    }

    /// Forces the next check to scan (the caller changed the scratch itself, or a
    /// commit failed).
    func invalidateRecord() { isRacy = true }

    /// Remembers `st` as the state matching the commit. A write later than the
    /// read that follows the fstat happens at a clock tick ≥ `sampledAfterStat`;
    /// if that is past the recorded ctime, such a write must change the ctime.
    private func record(_ st: stat, sampledAfterStat: Int64, fineTimestamps: Bool, shortRead: Bool) {
        recordedSize = Int64(st.st_size)
        recordedCtime = st.st_ctim
        let ctime = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        isRacy = shortRead || !(fineTimestamps || sampledAfterStat > ctime)
    }
}
