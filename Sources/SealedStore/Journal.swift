/// A commit's write-ahead record (Keys/README.md §7).
struct Journal {
    static let magic: [UInt8] = Array("SGJN".utf8)
    static let fixedLength = 220

    var movesToFreshID: Bool
    /// ID of the header on disk when the commit began: names the journal and keys its MAC.
    var fileID: FileID
    var newSidecar: [UInt8]
    var newHeader: [UInt8]
    var entries: [(index: UInt64, slot: [UInt8])]

    func serialize(keys: FileKeys) -> [UInt8] {
        var size = Journal.fixedLength + 32
        for e in entries { size += 12 + e.slot.count }
        var w = ByteWriter(capacity: size)
        w.raw(Journal.magic); w.u16(1); w.u16(movesToFreshID ? 1 : 0)
        w.raw(fileID.bytes); w.raw(newSidecar); w.raw(newHeader)
        w.u32(UInt32(entries.count))
        for e in entries { w.u64(e.index); w.u32(UInt32(e.slot.count)); w.raw(e.slot) }
        w.raw(Sodium.keyedHash(key: keys.journal, w.bytes))
        return w.bytes
    }

    /// Parses and authenticates; nil on any failure (a damaged journal).
    static func parse(_ bytes: [UInt8], keys: FileKeys, maxSlot: Int) -> Journal? {
        guard bytes.count >= fixedLength + 32 else { return nil }
        let body = Array(bytes[0..<(bytes.count - 32)])
        guard Sodium.equal(Sodium.keyedHash(key: keys.journal, body), Array(bytes[(bytes.count - 32)...])) else { return nil }
        var r = ByteReader(body)
        guard r.array(4) == magic, r.u16() == 1, let flags = r.u16(), flags <= 1,
              let id = r.array(16).flatMap({ FileID(bytes: $0) }), id == keys.fileID,
              let sc = r.array(Sidecar.length), let hd = r.array(FileHeader.length), let m = r.u32() else { return nil }
        var entries: [(UInt64, [UInt8])] = []
        for _ in 0..<m {
            guard let index = r.u64(), let len = r.u32(), Int(len) <= maxSlot, let slot = r.array(Int(len)) else { return nil }
            entries.append((index, slot))
        }
        guard r.remaining == 0 else { return nil }
        return Journal(movesToFreshID: flags == 1, fileID: id, newSidecar: sc, newHeader: hd, entries: entries)
    }
}
