import CSodium
import SealedStore

/// What a committed plaintext chunk contained, in 16 bytes (kept in memory only).
struct ChangeDigest: Equatable, Sendable {
    var low: UInt64
    var high: UInt64
}

/// Keyed change-detection digests of plaintext chunks.
///
/// Every commit compares each scratch chunk with what was last committed, so the
/// digest runs over every byte a commit examines; SipHash-2-4-128 is about three
/// times faster than BLAKE2b here, which keeps a commit of freshly written data
/// close to the raw AEAD speed. Its key is derived per file through the store's
/// keyed BLAKE2b digest (digestKey, Keys/README.md §4), so it is as secret as the
/// file key and a client cannot aim for collisions (which could only hide its own
/// writes from a commit anyway).
final class ChangeDigester: @unchecked Sendable {
    private var key: [UInt8]

    init(file: SealedFile) {
        let label = Array("sealgofer-v1 change digest key".utf8)
        let derived = label.withUnsafeBytes { file.digest(of: $0) }
        key = Array(derived.bytes.prefix(Int(crypto_shorthash_siphashx24_KEYBYTES)))
    }

    deinit {
        key.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
    }

    func digest(_ data: UnsafeRawBufferPointer) -> ChangeDigest {
        var out = ChangeDigest(low: 0, high: 0)
        withUnsafeMutableBytes(of: &out) { o in
            key.withUnsafeBytes { k in
                _ = crypto_shorthash_siphashx24(o.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                data.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                                UInt64(data.count), k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return out
    }
}
