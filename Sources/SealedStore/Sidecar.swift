/// Per-file committed state (Keys/README.md §6), MACed with the file's sidecar key.
struct Sidecar: Equatable {
    static let length = 128
    static let magic: [UInt8] = Array("SGSC".utf8)

    var suite: CipherSuite
    var chunkSize: Int
    var epoch: UInt32
    var fileID: FileID
    var committedSize: UInt64
    var generation: UInt64
    var encryptions: UInt64
    var previousFileID: FileID

    func serialize(keys: FileKeys) -> [UInt8] {
        var w = ByteWriter(capacity: Sidecar.length)
        w.raw(Sidecar.magic); w.u16(1); w.u8(suite.rawValue); w.u8(0)
        w.u32(UInt32(chunkSize)); w.u32(epoch); w.raw(fileID.bytes)
        w.u64(committedSize); w.u64(generation); w.u64(encryptions); w.raw(previousFileID.bytes)
        w.zeros(24)
        w.raw(Sodium.keyedHash(key: keys.sidecar, w.bytes))
        return w.bytes
    }

    /// Parses without checking the MAC (to learn the epoch); nil when structurally invalid.
    static func parseFields(_ bytes: [UInt8]) -> Sidecar? {
        guard bytes.count == length else { return nil }
        var r = ByteReader(bytes)
        guard r.array(4) == magic, r.u16() == 1, let s = r.u8(), let suite = CipherSuite(rawValue: s), r.u8() == 0,
              let chunk = r.u32(), StoreConfig.isValidChunkSize(Int(chunk)), let epoch = r.u32(),
              let id = r.array(16).flatMap({ FileID(bytes: $0) }), let size = r.u64(), let gen = r.u64(),
              let enc = r.u64(), let prev = r.array(16).flatMap({ FileID(bytes: $0) }),
              r.array(24) == [UInt8](repeating: 0, count: 24) else { return nil }
        return Sidecar(suite: suite, chunkSize: Int(chunk), epoch: epoch, fileID: id, committedSize: size,
                       generation: gen, encryptions: enc, previousFileID: prev)
    }

    static func verifyMAC(_ bytes: [UInt8], keys: FileKeys) -> Bool {
        guard bytes.count == length else { return false }
        return Sodium.equal(Sodium.keyedHash(key: keys.sidecar, Array(bytes[0..<96])), Array(bytes[96..<128]))
    }

    func matches(_ h: FileHeader) -> Bool {
        suite == h.suite && chunkSize == h.chunkSize && epoch == h.epoch && fileID == h.fileID
    }
}
