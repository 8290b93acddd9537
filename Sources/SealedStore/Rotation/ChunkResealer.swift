import Dispatch

/// Re-encrypts a run of consecutive chunk slots from one file key to another: each slot is
/// decrypted into a per-thread plaintext buffer and sealed under the new key with a fresh nonce
/// into the output slot at the same position. Shared by the moves of `rotate`.
///
/// The buffers belong to one rotation worker and are reused from file to file: no allocation per
/// chunk or per file (fresh multi-megabyte buffers cost page faults comparable to the crypto).
final class ResealBuffers {
    /// Chunk slots read from the old file (one segment).
    let input: UnsafeMutableRawBufferPointer
    /// Header room plus the re-encrypted slots of one segment, laid out as in the new file.
    let output: UnsafeMutableRawBufferPointer
    /// One plaintext chunk per thread; wiped after every file (`wipePlaintext`).
    private let plaintext: [UnsafeMutableRawBufferPointer]
    let segmentChunks: Int
    let slotSize: Int
    let chunkSize: Int
    private var plaintextUsed = 0

    /// A segment is about `segmentBytes` of ciphertext (at least one chunk).
    static let segmentBytes = 4 << 20

    init(layout: ChunkLayout, threads: Int) {
        slotSize = layout.slotSize
        chunkSize = layout.chunkSize
        segmentChunks = max(1, ResealBuffers.segmentBytes / layout.slotSize)
        input = .allocate(byteCount: segmentChunks * layout.slotSize, alignment: 64)
        output = .allocate(byteCount: FileHeader.length + segmentChunks * layout.slotSize, alignment: 64)
        plaintext = (0..<max(1, threads)).map { _ in .allocate(byteCount: layout.chunkSize, alignment: 64) }
    }

    var threads: Int { plaintext.count }

    func plaintext(_ thread: Int) -> UnsafeMutableRawBufferPointer { plaintext[thread] }

    func notePlaintext(_ bytes: Int) { plaintextUsed = max(plaintextUsed, bytes) }

    /// Plaintext must not outlive the file it belongs to.
    func wipePlaintext() {
        guard plaintextUsed > 0 else { return }
        for p in plaintext { wipeBytes(UnsafeMutableRawBufferPointer(rebasing: p[0..<min(plaintextUsed, p.count)])) }
        plaintextUsed = 0
    }

    deinit {
        wipePlaintext()
        input.deallocate(); output.deallocate()
        for p in plaintext { p.deallocate() }
    }
}

enum ChunkResealer {
    /// Re-encrypts chunks `first ..< first + count` of a file of plaintext `size`: the old slots
    /// start at `input`, the new ones go to `output` at the same positions (the segment's part of
    /// `buffers.output` after the header room, or a mapping of the new file). Runs on up to
    /// `buffers.threads` threads when the segment is large enough to share.
    /// Returns the first chunk that failed authentication (the output is then incomplete).
    static func reseal(first: Int, count: Int, size: UInt64, layout: ChunkLayout, input: UnsafeRawBufferPointer,
                       output: UnsafeMutableRawBufferPointer, buffers: ResealBuffers,
                       from old: ChunkCodec, to new: ChunkCodec) -> Int? {
        let threads = count >= 8 ? max(1, min(buffers.threads, count / 4)) : 1
        let slotSize = layout.slotSize
        // Written only by iteration w; read after all iterations finished.
        let firstBad = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        firstBad.initialize(repeating: Int.max)
        defer { firstBad.deallocate() }
        let work = { (w: Int) in
            let plain = buffers.plaintext(w)
            var k = w
            while k < count {
                let index = UInt64(first + k)
                let length = layout.plaintextLength(index: index, size: size)
                let slotLength = length + layout.overhead
                let source = UnsafeRawBufferPointer(rebasing: input[(k * slotSize)..<(k * slotSize + slotLength)])
                let out = UnsafeMutableRawBufferPointer(rebasing: plain[0..<length])
                guard old.open(index: index, slot: source, into: out) else { firstBad[w] = first + k; return }
                let target = k * slotSize
                new.seal(index: index, plaintext: UnsafeRawBufferPointer(out),
                         into: UnsafeMutableRawBufferPointer(rebasing: output[target..<(target + slotLength)]))
                k += threads
            }
        }
        if threads > 1 { DispatchQueue.concurrentPerform(iterations: threads, execute: work) } else { work(0) }
        buffers.notePlaintext(min(layout.chunkSize, Int(clamping: size)))
        let bad = firstBad.min()!
        return bad == Int.max ? nil : bad
    }
}
