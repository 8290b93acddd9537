import CSodium
import Glibc
import SealedStore

/// What a committed plaintext chunk contained, in 16 bytes (kept in memory only).
struct ChangeDigest: Equatable, Sendable {
    var low: UInt64
    var high: UInt64
}

/// Keyed change-detection digests of plaintext chunks.
///
/// Every commit compares each scratch chunk with what was last committed, so the
/// digest runs over every byte a commit examines and is, after the AEAD itself,
/// the largest cost of committing fresh data. With AES-NI it is GMAC: AES-256-GCM
/// over no plaintext with the chunk as associated data, under a per-file key and a
/// fixed nonce — GHASH (a polynomial universal hash keyed by the secret H = AES_K(0))
/// masked by AES_K(nonce), about twice as fast as SipHash-2-4 here (PCLMUL). A fixed
/// nonce is sound for this use because no digest ever leaves the process: without
/// H a client can make two different chunks collide only with probability about
/// (chunk size / 16) / 2^128 per try, and a collision could only hide its own write
/// from a commit. Without AES-NI it is SipHash-2-4-128. Either key is derived per
/// file through the store's keyed BLAKE2b digest (digestKey, Keys/README.md §4),
/// so it is as secret as the file key.
final class ChangeDigester: @unchecked Sendable {
    private enum Kind { case gmac, siphash }
    private let kind: Kind
    private var key: [UInt8]
    private let zeroNonce = [UInt8](repeating: 0, count: Int(crypto_aead_aes256gcm_NPUBBYTES))
    /// Expanded AES key (gmac only).
    private let state: UnsafeMutableRawPointer?

    init(file: SealedFile) {
        func derive(_ label: String) -> [UInt8] {
            let bytes = Array(label.utf8)
            return bytes.withUnsafeBytes { file.digest(of: $0) }.bytes
        }
        if crypto_aead_aes256gcm_is_available() == 1 {
            kind = .gmac
            key = derive("sealgofer-v1 change digest key gmac 1") + derive("sealgofer-v1 change digest key gmac 2")
            let s = UnsafeMutableRawPointer.allocate(byteCount: crypto_aead_aes256gcm_statebytes(), alignment: 16)
            key.withUnsafeBytes { k in
                _ = crypto_aead_aes256gcm_beforenm(s.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self),
                                                   k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            state = s
        } else {
            kind = .siphash
            key = Array(derive("sealgofer-v1 change digest key").prefix(Int(crypto_shorthash_siphashx24_KEYBYTES)))
            state = nil
        }
    }

    deinit {
        key.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
        if let state {
            sodium_memzero(state, crypto_aead_aes256gcm_statebytes())
            state.deallocate()
        }
    }

    /// Thread-safe: reads the key only.
    func digest(_ data: UnsafeRawBufferPointer) -> ChangeDigest {
        var out = ChangeDigest(low: 0, high: 0)
        let p = data.baseAddress?.assumingMemoryBound(to: UInt8.self)
        withUnsafeMutableBytes(of: &out) { o in
            let tag = o.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch kind {
            case .gmac:
                // The fixed zero nonce is fine here (see above). No plaintext: nothing
                // is written to the ciphertext pointer.
                var nothing: UInt8 = 0
                var tagLength: UInt64 = 0
                zeroNonce.withUnsafeBufferPointer { n in
                    _ = crypto_aead_aes256gcm_encrypt_detached_afternm(
                        &nothing, tag, &tagLength, nil, 0, p, UInt64(data.count), nil, n.baseAddress!,
                        state!.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self))
                }
            case .siphash:
                key.withUnsafeBytes { k in
                    _ = crypto_shorthash_siphashx24(tag, p, UInt64(data.count), k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return out
    }
}
