import Glibc
import Lisafs
import SealedStore

/// A file served through PRead/PWrite RPCs without a scratch (too large to
/// donate, or no scratch space left): chunks are decrypted on demand and changed
/// chunks are kept in memory until the next commit (exact dirty tracking).
///
/// Invariant: `committedLimit` ≤ min(`logicalSize`, committed size). Committed
/// bytes at or beyond it are dead (the file was shrunk there since the last
/// commit) and read as zeros; the chunk straddling it is always dirty.
final class DirectFile {
    let chunkSize: Int
    private(set) var logicalSize: UInt64
    /// The store's committed size, as of the last commit.
    private var committedSize: UInt64
    private var committedLimit: UInt64
    private var dirty: [UInt64: [UInt8]] = [:]
    private(set) var dirtyBytes = 0

    init(chunkSize: Int, committedSize: UInt64) {
        self.chunkSize = chunkSize
        logicalSize = committedSize
        self.committedSize = committedSize
        committedLimit = committedSize
    }

    var isDirty: Bool { !dirty.isEmpty || committedLimit != logicalSize || committedSize != logicalSize }

    private var c: UInt64 { UInt64(chunkSize) }

    /// Plaintext length of chunk `index` when the file is `size` bytes long.
    private func length(_ index: UInt64, _ size: UInt64) -> Int {
        let start = index * c
        guard start < size else { return 0 }
        return Int(min(c, size - start))
    }

    /// Chunk `index` as it currently reads, `length(index, logicalSize)` bytes.
    private func current(_ index: UInt64, _ sealed: SealedFile) throws -> [UInt8] {
        let want = length(index, logicalSize)
        if var p = dirty[index] {
            resize(&p, to: want)
            return p
        }
        let start = index * c
        guard start < committedLimit else { return [UInt8](repeating: 0, count: want) }
        var p = try sealed.readChunk(index)
        // Bytes at or past the limit are dead; the chunk straddling it is dirty,
        // so here the whole committed chunk is live.
        resize(&p, to: want)
        return p
    }

    private func resize(_ p: inout [UInt8], to count: Int) {
        if p.count > count { p.removeLast(p.count - count) } else if p.count < count { p.append(contentsOf: repeatElement(0, count: count - p.count)) }
    }

    private func setDirty(_ index: UInt64, _ p: [UInt8]) {
        dirtyBytes += p.count - (dirty[index]?.count ?? 0)
        dirty[index] = p
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, _ sealed: SealedFile) throws -> Int {
        guard offset < logicalSize, buffer.count > 0 else { return 0 }
        let end = min(logicalSize, offset + UInt64(buffer.count))
        var pos = offset
        var done = 0
        while pos < end {
            let index = pos / c
            if dirty[index] == nil && pos < committedLimit {
                // A run of clean committed chunks: decrypted by the store straight
                // into the reply buffer (several chunks on several threads).
                var k = index + 1
                while k * c < end && dirty[k] == nil { k += 1 }
                let runEnd = min(end, k * c, committedLimit)
                let want = Int(runEnd - pos)
                let got = try sealed.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + want)]), at: pos)
                if got < want {
                    // Committed bytes end early (cannot happen while the invariant
                    // holds): what is missing reads as zeros.
                    UnsafeMutableRawBufferPointer(rebasing: buffer[(done + got)..<(done + want)]).initializeMemory(as: UInt8.self, repeating: 0)
                }
                done += want
                pos = runEnd
                continue
            }
            let p = try current(index, sealed)
            let chunkStart = index * c
            let lo = Int(pos - chunkStart)
            let hi = Int(min(end, chunkStart + UInt64(p.count)) - chunkStart)
            guard lo < hi else { break }
            p.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + hi - lo)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[lo..<hi]))
            }
            done += hi - lo
            pos = chunkStart + UInt64(hi)
        }
        return done
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, _ sealed: SealedFile) throws {
        guard buffer.count > 0 else { return }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !overflow, end <= UInt64(Int64.max) else { throw Errno.EFBIG }
        if end > logicalSize { try grow(to: end) }
        var index = offset / c
        var done = 0
        while done < buffer.count {
            var p = try current(index, sealed)
            let chunkStart = index * c
            let lo = Int(offset + UInt64(done) - chunkStart)
            let n = min(p.count - lo, buffer.count - done)
            p.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[lo..<(lo + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[done..<(done + n)]))
            }
            setDirty(index, p)
            done += n
            index += 1
        }
    }

    /// ftruncate semantics: shrinking kills the tail, growing reads as zeros.
    func truncate(to size: UInt64, _ sealed: SealedFile) throws {
        guard size <= UInt64(Int64.max) else { throw Errno.EFBIG }
        if size > logicalSize { try grow(to: size); return }
        guard size < logicalSize else { return }
        let n = (size + c - 1) / c
        for k in Array(dirty.keys) where k >= n {
            dirtyBytes -= dirty[k]!.count
            dirty[k] = nil
        }
        if size % c != 0 {
            var p = try current(n - 1, sealed)
            resize(&p, to: length(n - 1, size))
            setDirty(n - 1, p)
        }
        logicalSize = size
        committedLimit = min(committedLimit, size)
    }

    /// Growth: the old last chunk (if dirty) is padded with zeros; committed
    /// chunks are zero-extended by the store at commit.
    private func grow(to size: UInt64) throws {
        if logicalSize > 0 {
            let last = (logicalSize - 1) / c
            if var p = dirty[last] {
                resize(&p, to: length(last, size))
                setDirty(last, p)
            }
        }
        logicalSize = size
    }

    /// The chunks to hand to `SealedFile.commit` for `logicalSize`: every dirty
    /// chunk, plus the zeroed remains of committed chunks past `committedLimit`.
    func changes(_ sealed: SealedFile) throws -> [ChunkChange] {
        let n = (logicalSize + c - 1) / c
        var out: [ChunkChange] = []
        for (k, p) in dirty where k < n {
            var q = p
            resize(&q, to: length(k, logicalSize))
            out.append(ChunkChange(index: k, plaintext: q))
        }
        let committedSize = sealed.committedSize
        if committedLimit < committedSize {
            let oldN = (committedSize + c - 1) / c
            var k = committedLimit / c
            while k < min(oldN, n) {
                if dirty[k] == nil { out.append(ChunkChange(index: k, plaintext: [UInt8](repeating: 0, count: length(k, logicalSize)))) }
                k += 1
            }
        }
        return out
    }

    /// The changes were committed.
    func markCommitted() {
        dirty = [:]
        dirtyBytes = 0
        committedLimit = logicalSize
        committedSize = logicalSize
    }

    /// After the store file was reopened (its committed size may have moved).
    func resetCommitted(size: UInt64) {
        committedSize = size
        committedLimit = min(committedLimit, size, logicalSize)
    }
}
