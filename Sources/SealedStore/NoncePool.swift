/// Random nonces drawn from a buffer refilled 8 KiB at a time: libsodium's randombytes_buf is a
/// getrandom(2) system call per request here, which costs more than encrypting a 4 KiB chunk.
/// Nonces are public values, so buffering the random bytes leaks nothing. Thread-safe.
final class NoncePool: @unchecked Sendable {
    static let shared = NoncePool()
    private let lock = Mutex()
    private var buffer = [UInt8](repeating: 0, count: 8192)
    private var used = 8192

    func fill(_ out: UnsafeMutableRawBufferPointer) {
        lock.locked {
            if used + out.count > buffer.count {
                buffer.withUnsafeMutableBytes { Sodium.fillRandom($0) }
                used = 0
            }
            buffer.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress! + used, byteCount: out.count) }
            // Never hand out the same bytes twice.
            buffer.withUnsafeMutableBytes { _ = $0.baseAddress!.advanced(by: used).initializeMemory(as: UInt8.self, repeating: 0, count: out.count) }
            used += out.count
        }
    }
}
