/// Per-file keys (Keys/README.md §4), derived from an epoch master key and the file ID.
/// Held in locked memory; zeroed when the last reference goes.
final class FileKeys: @unchecked Sendable {
    let fileID: FileID
    let epoch: UInt32
    let data: SecretBytes
    let header: SecretBytes
    let sidecar: SecretBytes
    let journal: SecretBytes
    let digest: SecretBytes

    init(master: SecretBytes, epoch: UInt32, fileID: FileID) {
        self.fileID = fileID
        self.epoch = epoch
        let fileKey = Sodium.deriveKey(key: master, message: Array("sealgofer-v1 file key".utf8) + fileID.bytes)
        data = Sodium.kdf(key: fileKey, id: 1)
        header = Sodium.kdf(key: fileKey, id: 2)
        sidecar = Sodium.kdf(key: fileKey, id: 3)
        journal = Sodium.kdf(key: fileKey, id: 4)
        digest = Sodium.kdf(key: fileKey, id: 5)
    }
}
