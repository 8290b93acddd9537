import Foundation

/// Public (not secret) description of one key epoch.
public struct EpochInfo: Equatable, Sendable {
    public var id: UInt32
    /// 1 = live, 2 = retired.
    public var state: UInt8
    /// Unix seconds.
    public var created: UInt64
    public var isLive: Bool { state == 1 }
}

/// The readable-without-a-key part of a keyring (Keys/README.md §3), parsed and checksum-verified.
public struct KeyringHeader: Sendable {
    public var kdf: UInt8
    public var storeID: [UInt8]
    public var salt: [UInt8]
    public var opsLimit: UInt64
    public var memLimit: UInt64
    public var configDigest: [UInt8]
    public var checkValue: [UInt8]
    public var epochs: [EpochInfo]
    /// Offset of the nonce: the associated data is bytes[0, adLength).
    var adLength: Int

    public var kdfName: String { kdf == 1 ? "key-file" : "argon2id" }

    static let magic: [UInt8] = Array("SGKR".utf8)
    static let maxEpochs = 1024
    /// Argon2id costs a reader accepts (Keys/README.md §3). The cost comes from
    /// the disk under an unkeyed checksum, so without a cap anyone with the disk
    /// could make opening the store take hours or exhaust memory. The presets
    /// reach ops 4 and 1 GiB; the caps leave twice that for each.
    static let argon2OpsRange: ClosedRange<UInt64> = 1...8
    static let argon2MemRange: ClosedRange<UInt64> = 8192...(2 << 30)

    /// Parses and checks structure and checksum; any failure is `.keyringDamaged`.
    public static func parse(_ bytes: [UInt8]) throws -> KeyringHeader {
        func damaged(_ why: String) -> SealedStoreError { .keyringDamaged(why) }
        guard bytes.count >= 124 + 16 + 24 + 48 + 32 else { throw damaged("too short (\(bytes.count) bytes)") }
        let body = Array(bytes[0..<(bytes.count - 32)])
        guard Sodium.equal(Sodium.hash(body), Array(bytes[(bytes.count - 32)...])) else {
            throw damaged("checksum mismatch")
        }
        var r = ByteReader(bytes)
        guard r.array(4) == magic else { throw damaged("bad magic") }
        guard r.u16() == 1 else { throw damaged("unsupported version") }
        guard let kdf = r.u8(), kdf == 1 || kdf == 2 else { throw damaged("unknown key derivation") }
        guard r.u8() == 0 else { throw damaged("reserved byte set") }
        guard let storeID = r.array(16), let salt = r.array(16), let ops = r.u64(), let mem = r.u64(),
              let digest = r.array(32), let check = r.array(32), let n32 = r.u32() else { throw damaged("truncated") }
        let n = Int(n32)
        guard n >= 1, n <= maxEpochs else { throw damaged("bad epoch count \(n)") }
        var epochs: [EpochInfo] = []
        for _ in 0..<n {
            guard let id = r.u32(), let state = r.u8(), r.array(3) == [0, 0, 0], let created = r.u64() else {
                throw damaged("bad epoch descriptor")
            }
            guard state == 1 || state == 2, id >= 1, !epochs.contains(where: { $0.id == id }) else { throw damaged("bad epoch descriptor") }
            epochs.append(EpochInfo(id: id, state: state, created: created))
        }
        let adLength = r.offset
        guard bytes.count == adLength + 24 + 32 * n + 16 + 32 else { throw damaged("length does not match epoch count") }
        if kdf == 1 { guard ops == 0, mem == 0 else { throw damaged("cost fields set for a key file") } }
        if kdf == 2 {
            guard argon2OpsRange.contains(ops), argon2MemRange.contains(mem) else {
                throw damaged("Argon2id cost beyond the accepted range (ops \(ops), mem \(mem))")
            }
        }
        return KeyringHeader(kdf: kdf, storeID: storeID, salt: salt, opsLimit: ops, memLimit: mem,
                             configDigest: digest, checkValue: check, epochs: epochs, adLength: adLength)
    }
}

/// The unwrapped keyring: epoch master keys in locked memory. Thread-safe for reading.
public final class Keyring: @unchecked Sendable {
    public private(set) var header: KeyringHeader
    private var masterKeys: [UInt32: SecretBytes]
    /// Internal (not private): Rotation/Keyring+Rewrap.swift rewraps and prunes keyrings.
    let kek: SecretBytes

    init(header: KeyringHeader, masterKeys: [UInt32: SecretBytes], kek: SecretBytes) {
        self.header = header; self.masterKeys = masterKeys; self.kek = kek
    }

    public var epochs: [EpochInfo] { header.epochs }
    public var storeID: [UInt8] { header.storeID }

    /// The newest live epoch: it encrypts new files.
    public var currentEpoch: UInt32 { header.epochs.filter(\.isLive).map(\.id).max() ?? header.epochs.map(\.id).max()! }

    func masterKey(epoch: UInt32) -> SecretBytes? { masterKeys[epoch] }

    // MARK: Key-encryption key

    static func deriveKEK(_ key: KeyMaterial, salt: [UInt8], opsLimit: UInt64, memLimit: UInt64) throws -> SecretBytes {
        switch key {
        case .keyFile(let k):
            return Sodium.deriveKey(key: k, message: Array("sealgofer-v1 keyfile kek".utf8) + salt)
        case .passphrase(let p):
            guard let kek = Sodium.argon2id(passphrase: p, salt: salt, opsLimit: opsLimit, memLimit: memLimit) else {
                throw SealedStoreError.keyringDamaged("Argon2id refused the recorded cost (ops \(opsLimit), mem \(memLimit))")
            }
            return kek
        }
    }

    static func wrapKey(kek: SecretBytes) -> SecretBytes { Sodium.deriveKey(key: kek, message: Array("sealgofer-v1 keyring wrap".utf8)) }
    static func checkValue(kek: SecretBytes) -> [UInt8] { Sodium.keyedHash(key: kek, Array("sealgofer-v1 key check".utf8)) }

    // MARK: Create / open / serialise

    /// A new keyring with one epoch. `salt`, `masterKey` and `created` are injectable for known-answer tests.
    static func create(key: KeyMaterial, storeID: [UInt8], configDigest: [UInt8], cost: PassphraseCost,
                       salt: [UInt8]? = nil, masterKey: SecretBytes? = nil, created: UInt64? = nil) throws -> Keyring {
        try Sodium.ensureReady()
        let salt = salt ?? Sodium.randomBytes(16)
        let (ops, mem): (UInt64, UInt64) = key.kdfID == 1 ? (0, 0) : (cost.opsLimit, cost.memLimit)
        let kek = try deriveKEK(key, salt: salt, opsLimit: ops, memLimit: mem)
        let epoch = EpochInfo(id: 1, state: 1, created: created ?? UInt64(Date().timeIntervalSince1970))
        let header = KeyringHeader(kdf: key.kdfID, storeID: storeID, salt: salt, opsLimit: ops, memLimit: mem,
                                   configDigest: configDigest, checkValue: checkValue(kek: kek), epochs: [epoch], adLength: 0)
        return Keyring(header: header, masterKeys: [1: masterKey ?? SecretBytes.random(count: 32)], kek: kek)
    }

    /// Opens keyring bytes with a key: `.keyringDamaged`, or `.wrongKey` when the key check fails.
    public static func open(_ bytes: [UInt8], key: KeyMaterial) throws -> Keyring {
        try Sodium.ensureReady()
        let header = try KeyringHeader.parse(bytes)
        guard header.kdf == key.kdfID else {
            throw SealedStoreError.invalidArgument(header.kdf == 1 ? "this store is unlocked with a key file, not a passphrase"
                                                                : "this store is unlocked with a passphrase, not a key file")
        }
        let kek = try deriveKEK(key, salt: header.salt, opsLimit: header.opsLimit, memLimit: header.memLimit)
        guard Sodium.equal(checkValue(kek: kek), header.checkValue) else { throw SealedStoreError.wrongKey }
        let n = header.epochs.count
        let nonce = Array(bytes[header.adLength..<(header.adLength + 24)])
        let ct = Array(bytes[(header.adLength + 24)..<(header.adLength + 24 + 32 * n + 16)])
        let plain = SecretBytes(count: 32 * n)
        let wrap = wrapKey(kek: kek)
        let ok: Bool = wrap.withBytes { k in
            plain.withMutableBytes { p in
                bytes.withUnsafeBytes { all in
                    ct.withUnsafeBytes { c in
                        nonce.withUnsafeBytes { nn in
                            CipherSuite.xchacha20poly1305.open(key: k, nonce: nn.baseAddress!,
                                                               ad: UnsafeRawBufferPointer(rebasing: all[0..<header.adLength]),
                                                               ciphertext: c, out: p.baseAddress)
                        }
                    }
                }
            }
        }
        guard ok else { throw SealedStoreError.keyringDamaged("authentication of the wrapped keys failed") }
        var keys: [UInt32: SecretBytes] = [:]
        plain.withBytes { p in
            for (i, e) in header.epochs.enumerated() {
                keys[e.id] = SecretBytes(copying: UnsafeRawBufferPointer(rebasing: p[(32 * i)..<(32 * i + 32)]))
            }
        }
        return Keyring(header: header, masterKeys: keys, kek: kek)
    }

    /// Serialises with a fresh random nonce (or the given one, for known-answer tests).
    func serialize(nonce: [UInt8]? = nil) -> [UInt8] {
        let nonce = nonce ?? Sodium.randomBytes(24)
        var w = ByteWriter()
        w.raw(KeyringHeader.magic); w.u16(1); w.u8(header.kdf); w.u8(0)
        w.raw(header.storeID); w.raw(header.salt); w.u64(header.opsLimit); w.u64(header.memLimit)
        w.raw(header.configDigest); w.raw(header.checkValue)
        w.u32(UInt32(header.epochs.count))
        for e in header.epochs { w.u32(e.id); w.u8(e.state); w.zeros(3); w.u64(e.created) }
        let adLength = w.bytes.count
        w.raw(nonce)
        let plain = SecretBytes(count: 32 * header.epochs.count)
        plain.withMutableBytes { p in
            for (i, e) in header.epochs.enumerated() {
                masterKeys[e.id]!.withBytes { (p.baseAddress! + 32 * i).copyMemory(from: $0.baseAddress!, byteCount: 32) }
            }
        }
        var ct = [UInt8](repeating: 0, count: plain.count + 16)
        let wrap = Keyring.wrapKey(kek: kek)
        let ad = Array(w.bytes[0..<adLength])
        wrap.withBytes { k in
            plain.withBytes { p in
                ad.withUnsafeBytes { a in
                    nonce.withUnsafeBytes { n in
                        ct.withUnsafeMutableBytes { c in
                            CipherSuite.xchacha20poly1305.seal(key: k, nonce: n.baseAddress!, ad: a, plaintext: p, out: c.baseAddress!)
                        }
                    }
                }
            }
        }
        w.raw(ct)
        w.raw(Sodium.hash(w.bytes))
        header.adLength = adLength
        return w.bytes
    }

    /// Adds a new epoch with a fresh master key; it becomes the encrypting epoch. The caller
    /// rewrites the keyring file (`SealedStore.addEpoch`).
    func addEpoch(created: UInt64? = nil) -> UInt32 {
        let id = (header.epochs.map(\.id).max() ?? 0) + 1
        header.epochs.append(EpochInfo(id: id, state: 1, created: created ?? UInt64(Date().timeIntervalSince1970)))
        masterKeys[id] = SecretBytes.random(count: 32)
        return id
    }
}
