#if canImport(Glibc)
import Glibc
#endif

/// Which epoch each data file is sealed under, for `sealgofer info` (no key, no lock): the epoch
/// field of every file's header and the committed size in its sidecar, both read without
/// authentication (display only; `verify` authenticates).
public struct EpochUsage: Sendable {
    public struct Count: Sendable {
        public var files = 0
        /// Committed plaintext bytes (from the sidecars).
        public var bytes: UInt64 = 0
        /// Ciphertext bytes on disk.
        public var ciphertextBytes: UInt64 = 0
        public init() {}
    }
    public var byEpoch: [UInt32: Count] = [:]
    /// Files whose header cannot be parsed (damage, or not a sealed file).
    public var unreadable = 0
    /// The target of an unfinished rotation (`meta/rotation`), if any.
    public var rotationTarget: UInt32?

    public static func scan(path: String) throws -> EpochUsage {
        let root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SealedStoreError.notAStore("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(root) }
        let data = try openDirectory(root, StoreLayout.dataName)
        defer { close(data) }
        // meta/ may be missing or damaged: info still shows what it can.
        let meta = try? openDirectory(root, StoreLayout.metaName)
        defer { if let meta { close(meta) } }
        let files = meta.flatMap { try? openDirectory($0, StoreLayout.filesName) }
        defer { if let files { close(files) } }
        var usage = EpochUsage()
        usage.rotationTarget = meta.flatMap { (try? RotationMarker.read(metaFD: $0))?.targetEpoch }
        for entry in try DataFileList.scan(dataFD: data).entries {
            let fd = try? openBeneath(data, entry.components, flags: O_RDONLY)
            guard let fd, fd >= 0 else { usage.unreadable += 1; continue }
            let bytes = try? readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")
            close(fd)
            guard let header = bytes.flatMap(FileHeader.parseFields) else { usage.unreadable += 1; continue }
            var count = usage.byEpoch[header.epoch] ?? Count()
            count.files += 1
            count.ciphertextBytes += entry.size
            if let files, let sub = try? openDirectory(files, String(header.fileID.hex.prefix(2))) {
                let sc = (try? readFileAt(sub, StoreLayout.sidecarName(header.fileID), limit: Sidecar.length + 1)).flatMap { $0 }
                close(sub)
                if let sc = sc.flatMap(Sidecar.parseFields) { count.bytes += sc.committedSize }
            }
            usage.byEpoch[header.epoch] = count
        }
        return usage
    }
}
