#if canImport(Glibc)
import Glibc
#endif

/// What `sealgofer info` shows: everything that needs no key.
public struct StoreInfo: Sendable {
    public var config: StoreConfig
    public var keyring: KeyringHeader
    public var files = 0
    public var directories = 0
    public var symlinks = 0
    public var otherNodes = 0
    public var ciphertextBytes: UInt64 = 0
    public var sidecars = 0
    public var pendingJournals = 0
    private var seen = Set<String>()

    /// Reads config, the keyring's public part (checksum-verified) and counts; no key, no lock.
    public static func gather(path: String) throws -> StoreInfo {
        let root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SealedStoreError.notAStore("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(root) }
        let rootFiles = try StoreRootFiles.read(root, path: path)
        var info = StoreInfo(config: try StoreConfig.parse(rootFiles.configBytes), keyring: try KeyringHeader.parse(rootFiles.keyringBytes))
        let data = try openDirectory(root, StoreLayout.dataName)
        defer { close(data) }
        info.count(data)
        if let meta = try? openDirectory(root, StoreLayout.metaName) {
            defer { close(meta) }
            if let files = try? openDirectory(meta, StoreLayout.filesName) {
                defer { close(files) }
                for (d, _) in (try? listDirectory(files)) ?? [] {
                    guard let sub = try? openDirectory(files, d) else { continue }
                    info.sidecars += ((try? listDirectory(sub)) ?? []).filter { $0.name.hasSuffix(".sc") }.count
                    close(sub)
                }
            }
            if let j = try? openDirectory(meta, StoreLayout.journalName) {
                info.pendingJournals = ((try? listDirectory(j)) ?? []).filter { $0.name.hasSuffix(".j") }.count
                close(j)
            }
        }
        return info
    }

    private mutating func count(_ dir: Int32) {
        for (name, _) in (try? listDirectory(dir)) ?? [] {
            guard let st = try? statAt(dir, name) else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                directories += 1
                if let sub = try? openDirectory(dir, name) { count(sub); close(sub) }
            case S_IFREG:
                // Hard links count once.
                if st.st_nlink <= 1 || seen.insert("\(st.st_dev):\(st.st_ino)").inserted { files += 1; ciphertextBytes += UInt64(st.st_size) }
            case S_IFLNK: symlinks += 1
            default: otherNodes += 1
            }
        }
    }
}

/// Unkeyed BLAKE2b-256 of bytes as hex (content fingerprints for tests and the crash-loop driver).
public func contentFingerprint(_ bytes: [UInt8]) -> String { encodeHex(Sodium.hash(bytes)) }
