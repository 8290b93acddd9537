/// The 64-byte header at the start of every ciphertext file (Keys/README.md §5.1).
struct FileHeader: Equatable {
    static let length = 64
    static let magic: [UInt8] = Array("SGFD".utf8)

    var suite: CipherSuite
    var chunkSize: Int
    var epoch: UInt32
    var fileID: FileID

    /// The first 32 bytes: MACed, and the prefix of every chunk's associated data.
    var fields: [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.raw(FileHeader.magic); w.u16(1); w.u8(suite.rawValue); w.u8(0)
        w.u32(UInt32(chunkSize)); w.u32(epoch); w.raw(fileID.bytes)
        return w.bytes
    }

    func serialize(keys: FileKeys) -> [UInt8] {
        let f = fields
        return f + Sodium.keyedHash(key: keys.header, f)
    }

    /// Parses the unauthenticated fields (enough to find the epoch and derive keys).
    static func parseFields(_ bytes: [UInt8]) -> FileHeader? {
        guard bytes.count >= length else { return nil }
        var r = ByteReader(bytes)
        guard r.array(4) == magic, r.u16() == 1, let s = r.u8(), let suite = CipherSuite(rawValue: s), r.u8() == 0,
              let chunk = r.u32(), StoreConfig.isValidChunkSize(Int(chunk)), let epoch = r.u32(),
              let idBytes = r.array(16), let id = FileID(bytes: idBytes) else { return nil }
        return FileHeader(suite: suite, chunkSize: Int(chunk), epoch: epoch, fileID: id)
    }

    /// Checks the header MAC with the file's keys.
    static func verifyMAC(_ bytes: [UInt8], keys: FileKeys) -> Bool {
        guard bytes.count >= length else { return false }
        return Sodium.equal(Sodium.keyedHash(key: keys.header, Array(bytes[0..<32])), Array(bytes[32..<64]))
    }
}
