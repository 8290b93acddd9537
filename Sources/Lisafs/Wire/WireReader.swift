/// Bounds-checked little-endian decoder over a borrowed byte buffer.
///
/// Every read checks the remaining length first and throws `WireError`; nothing
/// here can read past the end of the buffer, whatever the peer sent.
public struct WireReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset: Int = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    @inline(__always)
    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw WireError.truncated(needed: n, remaining: remaining) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        offset += n
        return slice
    }

    @inline(__always)
    public mutating func readInteger<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let raw = try take(MemoryLayout<T>.size)
        return T(littleEndian: raw.loadUnaligned(as: T.self))
    }

    public mutating func u8() throws -> UInt8 { try readInteger() }
    public mutating func u16() throws -> UInt16 { try readInteger() }
    public mutating func u32() throws -> UInt32 { try readInteger() }
    public mutating func u64() throws -> UInt64 { try readInteger() }
    public mutating func i32() throws -> Int32 { try readInteger() }
    public mutating func i64() throws -> Int64 { try readInteger() }

    /// Raw bytes of a known length.
    public mutating func bytes(_ n: Int) throws -> [UInt8] { Array(try take(n)) }

    /// Borrowed view of the next n bytes (valid as long as the underlying buffer is).
    public mutating func view(_ n: Int) throws -> UnsafeRawBufferPointer { try take(n) }

    /// Skip padding.
    public mutating func skip(_ n: Int) throws { _ = try take(n) }

    /// Throws unless every byte was consumed.
    public func finish() throws {
        if remaining != 0 { throw WireError.trailingBytes(remaining) }
    }
}
