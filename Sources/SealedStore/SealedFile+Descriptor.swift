#if canImport(Glibc)
import Glibc
#endif

/// What `SealedFile.commit(fromDescriptor:…)` saw.
public struct DescriptorCommit: Sendable {
    /// A chunk read from the descriptor came back short (the file shrank during the commit); the
    /// missing bytes were committed as zeros.
    public var shortRead: Bool
}

/// The bulk data path: commits sealed straight from a plaintext file, and committed content
/// decrypted straight into a file or a caller's buffer, on `StoreOptions.parallelism` threads
/// with no per-chunk allocation (ChunkPipeline).
extension SealedFile {
    /// `commit` whose changed chunks are read from `descriptor` (plaintext at its offsets, e.g. a
    /// scratch file): `chunks` (sorted, distinct, each below the new chunk count) are sealed from
    /// the bytes at index × chunkSize, `plaintextLength(index, newSize)` of them (a short read
    /// counts as zeros and is reported). Same protocol, atomicity and rules for chunks not given as
    /// `commit(_:newSize:durable:)`. `observe` sees each sealed chunk's plaintext exactly as it was
    /// sealed (concurrently, from worker threads) — what a caller's change digests must describe.
    @discardableResult
    public func commit(fromDescriptor descriptor: Int32, chunks: [UInt64], newSize: UInt64, durable: Bool,
                       observe: ChunkObserver? = nil) throws -> DescriptorCommit {
        try lock.writing {
            try checkValid()
            let layout = codec.layout
            let newN = layout.chunkCount(size: newSize)
            var jobs: [SealJob] = []
            jobs.reserveCapacity(chunks.count)
            for (k, index) in chunks.enumerated() {
                guard index < newN else { throw SealedStoreError.invalidArgument("chunk \(index) is beyond the new size \(newSize)") }
                guard k == 0 || chunks[k - 1] < index else { throw SealedStoreError.invalidArgument("chunks must be sorted and distinct") }
                jobs.append(SealJob(index: index, length: layout.plaintextLength(index: index, size: newSize), source: .descriptor))
            }
            let short = try commitPlannedLocked(jobs, newSize: newSize, durable: durable, source: descriptor, observe: observe)
            return DescriptorCommit(shortRead: short)
        }
    }

    /// Decrypts the whole committed content (one state) into `target` at its plaintext offsets,
    /// after truncating `target` to the committed size; with `target` nil only `observe` sees it.
    /// Returns the committed size. On damage `target`'s content is undefined and the error thrown.
    @discardableResult
    public func decrypt(into target: Int32?, observe: ChunkObserver? = nil) throws -> UInt64 {
        try lock.reading {
            try checkValid()
            let size = sidecar.committedSize
            if let target {
                guard ftruncate(target, off_t(size)) == 0 else { throw SealedStoreError.io("ftruncate", errno) }
            }
            try ChunkPipeline.open(0..<codec.layout.chunkCount(size: size), size: size, codec: codec, fileID: header.fileID, fd: fd,
                                   parallelism: store.options.parallelism, into: target.map { .file($0) } ?? .none, observe: observe)
            return size
        }
    }

    /// Reads committed plaintext at `offset` into `buffer` from one committed state; returns the
    /// count read (short only at the end). Whole chunks are decrypted straight into `buffer`, on
    /// several threads when there are a few of them; a partial chunk at either end goes through
    /// a bounce buffer. Fails with the damage of a chunk that does not authenticate.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try lock.reading {
            try checkValid()
            let size = sidecar.committedSize
            guard offset < size, buffer.count > 0, let base = buffer.baseAddress else { return 0 }
            let end = offset + min(UInt64(buffer.count), size - offset)
            let layout = codec.layout
            let c = UInt64(layout.chunkSize)
            // Chunks wholly inside [offset, end): [firstWhole, lastWhole).
            let firstWhole = (offset + c - 1) / c
            let lastWhole = end == size ? layout.chunkCount(size: size) : end / c
            func copyPart(_ index: UInt64) throws {
                let chunkStart = index * c
                let lo = max(offset, chunkStart), hi = min(end, chunkStart + UInt64(layout.plaintextLength(index: index, size: size)))
                guard lo < hi else { return }
                try WorkBuffers.shared.with(layout.chunkSize) { plain in
                    try ChunkPipeline.open(index..<(index + 1), size: size, codec: codec, fileID: header.fileID, fd: fd, parallelism: 1,
                                           into: .buffer(plain.baseAddress!, startOffset: chunkStart), observe: nil)
                    (base + Int(lo - offset)).copyMemory(from: plain.baseAddress! + Int(lo - chunkStart), byteCount: Int(hi - lo))
                }
            }
            if firstWhole >= lastWhole {
                // No whole chunk: at most two partial ones.
                for index in (offset / c)...((end - 1) / c) { try copyPart(index) }
                return Int(end - offset)
            }
            if offset < firstWhole * c { try copyPart(offset / c) }
            let whole = firstWhole..<lastWhole
            try ChunkPipeline.open(whole, size: size, codec: codec, fileID: header.fileID, fd: fd,
                                   parallelism: whole.count >= 8 ? store.options.parallelism : 1,
                                   into: .buffer(base, startOffset: offset), observe: nil)
            if lastWhole * c < end { try copyPart(lastWhole) }
            return Int(end - offset)
        }
    }
}
