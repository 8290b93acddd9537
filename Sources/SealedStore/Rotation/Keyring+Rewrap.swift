/// Keyring rewrites that rotation and rekeying need (Keys/README.md §3, §10). Each returns a new
/// `Keyring`; the caller serialises it (fresh nonce) and replaces the keyring file atomically.
extension Keyring {
    /// The same epochs and master keys, wrapped under a KEK derived from `key` with a fresh salt.
    /// `key` may be of the other kind (key file ↔ passphrase); `cost` applies to a passphrase.
    func rewrapped(with key: KeyMaterial, cost: PassphraseCost, salt: [UInt8]? = nil) throws -> Keyring {
        let salt = salt ?? Sodium.randomBytes(16)
        let (ops, mem): (UInt64, UInt64) = key.kdfID == 1 ? (0, 0) : (cost.opsLimit, cost.memLimit)
        let newKEK = try Keyring.deriveKEK(key, salt: salt, opsLimit: ops, memLimit: mem)
        var h = header
        h.kdf = key.kdfID
        h.salt = salt
        h.opsLimit = ops
        h.memLimit = mem
        h.checkValue = Keyring.checkValue(kek: newKEK)
        return Keyring(header: h, masterKeys: allMasterKeys(), kek: newKEK)
    }

    /// Only the epochs in `keep` remain; the master keys of the others are dropped (their locked
    /// buffers are zeroed when the last reference goes). Same KEK.
    func keepingOnly(epochs keep: Set<UInt32>) -> Keyring {
        var h = header
        h.epochs = header.epochs.filter { keep.contains($0.id) }
        let keys = allMasterKeys().filter { keep.contains($0.key) }
        return Keyring(header: h, masterKeys: keys, kek: kek)
    }

    private func allMasterKeys() -> [UInt32: SecretBytes] {
        var keys: [UInt32: SecretBytes] = [:]
        for e in header.epochs { keys[e.id] = masterKey(epoch: e.id) }
        return keys
    }

    /// Replaces STORE/keyring with this keyring: keyring.tmp, fsync, rename, fsync STORE/ (§3).
    func replaceFile(rootFD: Int32) throws {
        try replaceFileAt(rootFD, StoreLayout.keyringName, serialize(), syncFile: true, syncDirectory: true)
    }
}
