#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// `sealgofer rekey`: every epoch's master key rewrapped under a new key-encryption key, the
/// keyring replaced atomically (Keys/README.md §10). File data is untouched, so the time does not
/// depend on the store's size: it is two key derivations (old and new key) and one small file
/// replacement.
///
/// Allowed while a gofer serves the store (it never writes the keyring); excluded against other
/// keyring writers by `KeyringLock`.
public enum StoreRekey {
    public struct Report: Sendable {
        public var epochs: Int
        public var oldKDF: String
        public var newKDF: String
        /// Wall time from taking the lock to the durable rename.
        public var seconds: Double
    }

    /// `new` is called once the current key has opened the keyring (so a wrong current key
    /// creates no new key file).
    public static func run(path: String, current: KeyMaterial, new: () throws -> KeyMaterial,
                           cost: PassphraseCost = .moderate) throws -> Report {
        try Sodium.ensureReady()
        let start = Date()
        let lock = try KeyringLock.acquire(storePath: path)
        defer { lock.release() }
        let root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SealedStoreError.notAStore("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(root) }
        let ring = try StoreRootFiles.read(root, path: path).openKeyring(with: current).keyring
        let rewrapped = try ring.rewrapped(with: try new(), cost: cost)
        try RotationTestHooks.step(.rekeyBeforeReplace)
        try rewrapped.replaceFile(rootFD: root)
        return Report(epochs: ring.epochs.count, oldKDF: ring.header.kdfName, newKDF: rewrapped.header.kdfName,
                      seconds: Date().timeIntervalSince(start))
    }
}

extension KeyMaterial {
    /// `createKeyFile`, then fsync of the directory that holds it: a keyring rewrapped under this
    /// key must never survive a power loss that the key file's directory entry did not.
    public static func createKeyFileDurably(path: String) throws -> KeyMaterial {
        let key = try createKeyFile(path: path)
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SealedStoreError.io("open directory of \(path)", errno) }
        defer { close(fd) }
        try syncFD(fd, what: "directory of \(path)")
        return key
    }
}
