import CSodium

/// The chunk AEADs (Keys/README.md: suite 1 and 2). Both take random nonces.
public enum CipherSuite: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case xchacha20poly1305 = 1
    case aes256gcm = 2

    public var nonceLength: Int { self == .xchacha20poly1305 ? 24 : 12 }
    public static let tagLength = 16

    /// Name used in `config` and by the CLI.
    public var name: String { self == .xchacha20poly1305 ? "xchacha20poly1305" : "aes256gcm" }
    public var description: String { name }

    public init?(name: String) {
        guard let s = CipherSuite.allCases.first(where: { $0.name == name }) else { return nil }
        self = s
    }

    /// AES-256-GCM where the CPU supports it in libsodium, otherwise XChaCha20-Poly1305.
    public static var preferred: CipherSuite { Sodium.aes256gcmAvailable ? .aes256gcm : .xchacha20poly1305 }

    public var isAvailable: Bool { self == .xchacha20poly1305 || Sodium.aes256gcmAvailable }

    /// Encrypts `plaintext` into `out` (plaintext.count + 16 bytes) with the given nonce.
    func seal(key: UnsafeRawBufferPointer, nonce: UnsafeRawPointer, ad: UnsafeRawBufferPointer,
              plaintext: UnsafeRawBufferPointer, out: UnsafeMutableRawPointer) {
        var outLen: UInt64 = 0
        let o = out.assumingMemoryBound(to: UInt8.self)
        let m = plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let a = ad.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let n = nonce.assumingMemoryBound(to: UInt8.self)
        let k = key.baseAddress!.assumingMemoryBound(to: UInt8.self)
        switch self {
        case .xchacha20poly1305:
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(o, &outLen, m, UInt64(plaintext.count), a, UInt64(ad.count), nil, n, k)
        case .aes256gcm:
            _ = crypto_aead_aes256gcm_encrypt(o, &outLen, m, UInt64(plaintext.count), a, UInt64(ad.count), nil, n, k)
        }
    }

    /// Decrypts `ciphertext` (with tag) into `out`; false on authentication failure.
    func open(key: UnsafeRawBufferPointer, nonce: UnsafeRawPointer, ad: UnsafeRawBufferPointer,
              ciphertext: UnsafeRawBufferPointer, out: UnsafeMutableRawPointer?) -> Bool {
        guard ciphertext.count >= CipherSuite.tagLength else { return false }
        var outLen: UInt64 = 0
        let o = out?.assumingMemoryBound(to: UInt8.self)
        let c = ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let a = ad.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let n = nonce.assumingMemoryBound(to: UInt8.self)
        let k = key.baseAddress!.assumingMemoryBound(to: UInt8.self)
        switch self {
        case .xchacha20poly1305:
            return crypto_aead_xchacha20poly1305_ietf_decrypt(o, &outLen, nil, c, UInt64(ciphertext.count), a, UInt64(ad.count), n, k) == 0
        case .aes256gcm:
            guard Sodium.aes256gcmAvailable else { return false }
            return crypto_aead_aes256gcm_decrypt(o, &outLen, nil, c, UInt64(ciphertext.count), a, UInt64(ad.count), n, k) == 0
        }
    }
}
