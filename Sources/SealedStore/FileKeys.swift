#if canImport(Glibc)
import Glibc
#endif

/// Per-file keys (Keys/README.md §4), derived from an epoch master key and the file ID.
/// Held in locked memory; zeroed when the last reference goes.
///
/// Only the file key is derived up front; each subkey is derived the first time it is used,
/// because most handles need few of them: a stat reads the header and the sidecar (2 of 5),
/// a create writes them and maybe never a chunk. Derivation is deterministic, so laziness
/// changes nothing but the work done.
final class FileKeys: @unchecked Sendable {
    let fileID: FileID
    let epoch: UInt32
    private let fileKey: SecretBytes
    private var lock = pthread_mutex_t()
    /// Subkeys by KDF id - 1 (data, header, sidecar, journal, digest); guarded by `lock`.
    private var derived: [SecretBytes?] = [nil, nil, nil, nil, nil]

    init(master: SecretBytes, epoch: UInt32, fileID: FileID) {
        self.fileID = fileID
        self.epoch = epoch
        fileKey = Sodium.deriveKey(key: master, message: Array("sealgofer-v1 file key".utf8) + fileID.bytes)
        pthread_mutex_init(&lock, nil)
    }

    deinit { pthread_mutex_destroy(&lock) }

    var data: SecretBytes { subkey(1) }
    var header: SecretBytes { subkey(2) }
    var sidecar: SecretBytes { subkey(3) }
    var journal: SecretBytes { subkey(4) }
    var digest: SecretBytes { subkey(5) }

    /// How many subkeys have been derived so far (tests).
    var derivedCount: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return derived.lazy.filter { $0 != nil }.count
    }

    private func subkey(_ id: UInt64) -> SecretBytes {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        let slot = Int(id) - 1
        if let key = derived[slot] { return key }
        let key = Sodium.kdf(key: fileKey, id: id)
        derived[slot] = key
        return key
    }
}
