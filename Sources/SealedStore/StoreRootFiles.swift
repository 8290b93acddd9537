/// A store root's `config` and `keyring`, read the one way every command reads
/// them (Keys/README.md §1–3): open, info and rekey all start here.
struct StoreRootFiles {
    let configBytes: [UInt8]
    let keyringBytes: [UInt8]

    /// Reads both files from the open store root `root` (`path` names it in errors).
    static func read(_ root: Int32, path: String) throws -> StoreRootFiles {
        guard let configBytes = try readFileAt(root, StoreLayout.configName, limit: 4096) else {
            throw SealedStoreError.notAStore("\(path) has no config")
        }
        guard let keyringBytes = try readFileAt(root, StoreLayout.keyringName, limit: 1 << 20) else {
            throw SealedStoreError.notAStore("\(path) has no keyring")
        }
        return StoreRootFiles(configBytes: configBytes, keyringBytes: keyringBytes)
    }

    /// Parses the config, opens the keyring with `key`, and checks that the two belong
    /// together (store ID, and the config digest the keyring records), so that no
    /// command ever uses or rewraps a keyring that belongs to another config.
    func openKeyring(with key: KeyMaterial) throws -> (config: StoreConfig, keyring: Keyring) {
        let config = try StoreConfig.parse(configBytes)
        let keyring = try Keyring.open(keyringBytes, key: key)
        guard keyring.storeID == config.storeID else { throw SealedStoreError.configDamaged("store ID differs from the keyring's") }
        guard Sodium.equal(keyring.header.configDigest, Sodium.hash(configBytes)) else {
            throw SealedStoreError.configDamaged("config does not match the digest recorded in the keyring")
        }
        return (config, keyring)
    }
}
