/// Chunk geometry of one file (Keys/README.md §5.2): where chunk i lives and how long it is.
public struct ChunkLayout: Equatable, Sendable {
    public let chunkSize: Int
    public let suite: CipherSuite

    public init(chunkSize: Int, suite: CipherSuite) { self.chunkSize = chunkSize; self.suite = suite }

    public var nonceLength: Int { suite.nonceLength }
    /// Bytes a full chunk occupies on disk: nonce ‖ ciphertext ‖ tag.
    public var slotSize: Int { suite.nonceLength + chunkSize + CipherSuite.tagLength }
    public var overhead: Int { suite.nonceLength + CipherSuite.tagLength }

    public func chunkCount(size: UInt64) -> UInt64 { (size + UInt64(chunkSize) - 1) / UInt64(chunkSize) }

    /// Plaintext length of chunk `index` in a file of `size` bytes (0 past the end).
    public func plaintextLength(index: UInt64, size: UInt64) -> Int {
        let start = index * UInt64(chunkSize)
        guard start < size else { return 0 }
        return Int(min(UInt64(chunkSize), size - start))
    }

    public func slotOffset(_ index: UInt64) -> UInt64 { UInt64(FileHeader.length) + index * UInt64(slotSize) }

    /// The exact length of a ciphertext file whose committed size is `size`.
    public func fileLength(size: UInt64) -> UInt64 {
        let n = chunkCount(size: size)
        guard n > 0 else { return UInt64(FileHeader.length) }
        return slotOffset(n - 1) + UInt64(overhead + plaintextLength(index: n - 1, size: size))
    }
}
