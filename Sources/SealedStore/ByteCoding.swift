/// Little-endian encoding for the fixed binary layouts of Keys/README.md.
struct ByteWriter {
    var bytes: [UInt8] = []
    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
    mutating func ascii(_ s: String) { bytes.append(contentsOf: Array(s.utf8)) }
}

/// Bounds-checked reader: every read returns nil past the end instead of trapping.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    init(_ bytes: [UInt8], offset: Int = 0) { self.bytes = bytes; self.offset = offset }
    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, n <= remaining else { return nil }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
    mutating func u8() -> UInt8? { take(1)?.first }
    mutating func u16() -> UInt16? { take(2).map { le($0) }.map { UInt16(truncatingIfNeeded: $0) } }
    mutating func u32() -> UInt32? { take(4).map { le($0) }.map { UInt32(truncatingIfNeeded: $0) } }
    mutating func u64() -> UInt64? { take(8).map { le($0) } }
    mutating func array(_ n: Int) -> [UInt8]? { take(n).map { Array($0) } }

    private func le(_ s: ArraySlice<UInt8>) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
}

func leU64(_ v: UInt64) -> [UInt8] { var w = ByteWriter(); w.u64(v); return w.bytes }
