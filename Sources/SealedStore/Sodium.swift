import CSodium

/// Thin, bounds-checked wrappers over the libsodium primitives the format uses
/// (Keys/README.md, table "Primitives"). Everything else calls these, never CSodium directly,
/// so the primitive set stays small and auditable.
enum Sodium {
    /// libsodium must be initialised once before use; `sodium_init` is itself idempotent and thread-safe.
    static let ready: Bool = sodium_init() >= 0

    static func ensureReady() throws {
        if !ready { throw SealedStoreError.internal("libsodium failed to initialise") }
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return out
    }

    static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        randombytes_buf(buffer.baseAddress!, buffer.count)
    }

    /// H(key, msg): keyed BLAKE2b-256.
    static func keyedHash(key: UnsafeRawBufferPointer, _ message: UnsafeRawBufferPointer, outputLength: Int = 32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputLength)
        out.withUnsafeMutableBytes { o in
            _ = crypto_generichash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), outputLength,
                                   message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                                   key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        }
        return out
    }

    static func keyedHash(key: SecretBytes, _ message: UnsafeRawBufferPointer, outputLength: Int = 32) -> [UInt8] {
        key.withBytes { keyedHash(key: $0, message, outputLength: outputLength) }
    }

    static func keyedHash(key: SecretBytes, _ message: [UInt8], outputLength: Int = 32) -> [UInt8] {
        key.withBytes { k in message.withUnsafeBytes { keyedHash(key: k, $0, outputLength: outputLength) } }
    }

    /// H0(msg): unkeyed BLAKE2b-256.
    static func hash(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        keyedHash(key: UnsafeRawBufferPointer(start: nil, count: 0), message)
    }

    static func hash(_ message: [UInt8]) -> [UInt8] { message.withUnsafeBytes { hash($0) } }

    /// H(key, msg) written straight into a secret buffer (derived keys never pass through arrays).
    static func deriveKey(key: SecretBytes, message: [UInt8]) -> SecretBytes {
        let out = SecretBytes(count: 32)
        out.withMutableBytes { o in
            key.withBytes { k in
                message.withUnsafeBytes { m in
                    _ = crypto_generichash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), 32,
                                           m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                                           k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count)
                }
            }
        }
        return out
    }

    /// KDF(key, id): crypto_kdf_derive_from_key with context "sgfile01".
    static func kdf(key: SecretBytes, id: UInt64) -> SecretBytes {
        let out = SecretBytes(count: 32)
        let context: [CChar] = Array("sgfile01".utf8).map { CChar(bitPattern: $0) }
        out.withMutableBytes { o in
            key.withBytes { k in
                context.withUnsafeBufferPointer { c in
                    _ = crypto_kdf_derive_from_key(o.baseAddress!.assumingMemoryBound(to: UInt8.self), 32, id,
                                                   c.baseAddress!, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return out
    }

    /// Argon2id13 (crypto_pwhash). Returns nil when libsodium refuses (out of memory, bad limits).
    static func argon2id(passphrase: SecretBytes, salt: [UInt8], opsLimit: UInt64, memLimit: UInt64) -> SecretBytes? {
        // The costs come from the keyring on disk: a value past Int.max must be
        // refused, not trap in the conversion (libsodium refuses the rest).
        guard let memLimit = Int(exactly: memLimit) else { return nil }
        let out = SecretBytes(count: 32)
        let rc: Int32 = out.withMutableBytes { o in
            passphrase.withBytes { p in
                salt.withUnsafeBytes { s in
                    crypto_pwhash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), 32,
                                  p.baseAddress!.assumingMemoryBound(to: CChar.self),
                                  UInt64(p.count), s.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                  opsLimit, memLimit, crypto_pwhash_ALG_ARGON2ID13)
                }
            }
        }
        return rc == 0 ? out : nil
    }

    /// Constant-time comparison.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in sodium_memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return b.withUnsafeBytes { y in sodium_memcmp(a.baseAddress!, y.baseAddress!, a.count) == 0 }
    }

    static var aes256gcmAvailable: Bool { _ = ready; return crypto_aead_aes256gcm_is_available() == 1 }
}
