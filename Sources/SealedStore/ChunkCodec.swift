/// Encrypts and decrypts single chunks of one file (Keys/README.md §5.2). Stateless apart from the
/// keys and the header bytes it binds; safe to use from several threads at once.
public final class ChunkCodec: @unchecked Sendable {
    public let layout: ChunkLayout
    let keys: FileKeys
    /// header[0, 32): the associated-data prefix.
    let headerFields: [UInt8]

    init(layout: ChunkLayout, keys: FileKeys, headerFields: [UInt8]) {
        self.layout = layout; self.keys = keys; self.headerFields = headerFields
    }

    /// Associated data: header fields ‖ u64(index), built on the stack.
    @inline(__always)
    private func withAD<R>(_ index: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: 40, alignment: 8) { ad in
            headerFields.withUnsafeBytes { ad.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 32) }
            ad.storeBytes(of: index.littleEndian, toByteOffset: 32, as: UInt64.self)
            return body(UnsafeRawBufferPointer(ad))
        }
    }

    /// Writes nonce ‖ ciphertext ‖ tag for `plaintext` into `slot` (plaintext.count + overhead bytes).
    /// `nonce` is for known-answer tests; normally a fresh random nonce is drawn.
    public func seal(index: UInt64, plaintext: UnsafeRawBufferPointer, into slot: UnsafeMutableRawBufferPointer, nonce: [UInt8]? = nil) {
        precondition(slot.count >= plaintext.count + layout.overhead && plaintext.count <= layout.chunkSize, "slot too small")
        let n = layout.nonceLength
        if let nonce { nonce.withUnsafeBytes { slot.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        else { NoncePool.shared.fill(UnsafeMutableRawBufferPointer(rebasing: slot[0..<n])) }
        keys.data.withBytes { k in
            withAD(index) { ad in
                layout.suite.seal(key: k, nonce: slot.baseAddress!, ad: ad, plaintext: plaintext, out: slot.baseAddress! + n)
            }
        }
    }

    public func seal(index: UInt64, plaintext: [UInt8], nonce: [UInt8]? = nil) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + layout.overhead)
        plaintext.withUnsafeBytes { p in out.withUnsafeMutableBytes { seal(index: index, plaintext: p, into: $0, nonce: nonce) } }
        return out
    }

    /// Authenticates and decrypts one slot into `out` (slot.count − overhead bytes). False when the
    /// slot was not produced by `seal` for this file and index.
    public func open(index: UInt64, slot: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        let n = layout.nonceLength
        guard slot.count >= layout.overhead, out.count >= slot.count - layout.overhead else { return false }
        return keys.data.withBytes { k in
            withAD(index) { ad in
                layout.suite.open(key: k, nonce: slot.baseAddress!, ad: ad,
                                  ciphertext: UnsafeRawBufferPointer(rebasing: slot[n...]), out: out.baseAddress)
            }
        }
    }

    public func open(index: UInt64, slot: [UInt8]) -> [UInt8]? {
        guard slot.count >= layout.overhead else { return nil }
        var out = [UInt8](repeating: 0, count: slot.count - layout.overhead)
        let ok = slot.withUnsafeBytes { s in out.withUnsafeMutableBytes { open(index: index, slot: s, into: $0) } }
        return ok ? out : nil
    }
}
