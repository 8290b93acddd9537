/// Little-endian encoder appending to a growable byte array.
public struct WireWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func writeInteger<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { writeInteger(v) }
    public mutating func u32(_ v: UInt32) { writeInteger(v) }
    public mutating func u64(_ v: UInt64) { writeInteger(v) }
    public mutating func i32(_ v: Int32) { writeInteger(v) }
    public mutating func i64(_ v: Int64) { writeInteger(v) }
    public mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }
    public mutating func raw(_ data: UnsafeRawBufferPointer) { bytes.append(contentsOf: data) }
    public mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
}
