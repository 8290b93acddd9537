import CSodium
import CXXHash
import SealedStore

/// What a committed plaintext chunk contained, in 16 bytes (kept in memory only).
struct ChangeDigest: Equatable, Sendable {
    var low: UInt64
    var high: UInt64
}

/// Change-detection digests of plaintext chunks: XXH3-128 under a per-file secret.
///
/// Every commit compares each scratch chunk with what was last committed, and a
/// commit of fresh data digests every byte it seals, so this hash sits next to the
/// AEAD on the hot path. Measured here over 64 KiB chunks (BENCHMARKS.md, "Change
/// digest"): XXH3-128 12–16 GB/s, GMAC (libsodium, AES-NI) 5 GB/s, SipHash-2-4 2.4
/// GB/s, against 1.55 GB/s for sealing with AES-256-GCM: a digest costs the commit
/// about 10 % of the AEAD with XXH3, 30 % with GMAC, 65 % with SipHash.
///
/// A non-cryptographic hash is enough here because of what a collision can do:
/// digests never leave the process and are never stored, so the only effect of two
/// chunks colliding is that a change is not seen as one and the previously
/// committed (authentic) chunk stays in the store. Accidental collisions of a
/// 128-bit hash are negligible; a client crafting one would only keep its own write
/// out of the store, which it can do by not writing. The secret, derived per file
/// through the store's keyed BLAKE2b digest, keeps even that out of reach without
/// knowledge of the file key.
final class ChangeDigester: @unchecked Sendable {
    /// 192 bytes: XXH3's default secret size (the minimum is 136).
    private let secret: UnsafeMutableRawBufferPointer

    init(file: SealedFile) {
        secret = .allocate(byteCount: 192, alignment: 64)
        // In memory only, so the derivation is free to change: three keyed BLAKE2b calls of
        // 64 bytes (it was twelve of 16 bytes, a measurable share of a create).
        file.deriveInMemorySecret(into: secret, label: "sealgofer change digest secret v2")
    }

    deinit {
        sodium_memzero(secret.baseAddress!, secret.count)
        secret.deallocate()
    }

    /// Thread-safe: reads the secret only.
    func digest(_ data: UnsafeRawBufferPointer) -> ChangeDigest {
        let h = XXH3_128bits_withSecret(data.baseAddress, data.count, secret.baseAddress!, secret.count)
        return ChangeDigest(low: h.low64, high: h.high64)
    }
}
