import CSodium

extension SealedFile {
    /// Fills `out` with bytes derived from this file's digest key and `label`: keyed BLAKE2b of
    /// `label ‖ counter`, 64 bytes per call (3 calls for 192 bytes). For secrets the caller keeps
    /// in memory only (the provider's change-digest secret); nothing derived here is ever stored,
    /// so the derivation can change between versions without touching the format.
    public func deriveInMemorySecret(into out: UnsafeMutableRawBufferPointer, label: StaticString) {
        let key = lock.reading { keys.digest }
        var message = [UInt8](repeating: 0, count: label.utf8CodeUnitCount + 1)
        label.withUTF8Buffer { for (i, b) in $0.enumerated() { message[i] = b } }
        var block = [UInt8](repeating: 0, count: 64)
        key.withBytes { k in
            var offset = 0
            var counter: UInt8 = 0
            while offset < out.count {
                message[message.count - 1] = counter
                _ = crypto_generichash(&block, 64, message, UInt64(message.count),
                                       k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count)
                let n = min(64, out.count - offset)
                block.withUnsafeBytes { out.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
                offset += n
                counter &+= 1
            }
        }
        sodium_memzero(&block, block.count)
    }
}
