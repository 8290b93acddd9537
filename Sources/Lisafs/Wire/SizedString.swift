/// Length-prefixed byte strings and the arrays built from them.
///
/// Go's `SizedString` is a uint16 length followed by that many bytes; `StringArray`
/// is a uint16 count followed by that many SizedStrings; `FdArray` is a uint16
/// count followed by that many uint64 FDIDs. Names travel as raw bytes here so that
/// no byte sequence (embedded NUL, invalid UTF-8) is lost or normalised.
public enum SizedString {
    /// The longest string the uint16 length prefix can describe. Encoders
    /// truncate longer values (Go would emit an inconsistent payload instead);
    /// callers that may exceed it (xattr values, symlink targets) must check first.
    public static let maxLength = Int(UInt16.max)

    /// Minimum encoded size of one SizedString (the empty string).
    static let minEncodedSize = 2
}

/// Lossy UTF-8 view of a wire name, for logs and tests. Never use it to
/// reach the filesystem: the byte form is authoritative.
@inline(__always)
func lossyString(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

extension WireReader {
    /// Reads a SizedString. The length is checked against the remaining payload
    /// before any allocation.
    public mutating func sizedString() throws -> [UInt8] {
        let length = Int(try u16())
        return try bytes(length)
    }

    /// Reads a StringArray. The count is validated against the smallest possible
    /// encoding (2 bytes per element) before reserving storage.
    public mutating func stringArray() throws -> [[UInt8]] {
        let count = Int(try u16())
        try requireRoom(count: count, elementSize: SizedString.minEncodedSize)
        var result: [[UInt8]] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(try sizedString()) }
        return result
    }

    /// Reads an FdArray (uint16 count of uint64 FDIDs).
    public mutating func fdArray() throws -> [FDID] {
        let count = Int(try u16())
        try requireRoom(count: count, elementSize: 8)
        var result: [FDID] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(try u64()) }
        return result
    }

    /// Throws unless `count` elements of at least `elementSize` bytes each could
    /// fit in what is left. Call before allocating for a peer-supplied count.
    public func requireRoom(count: Int, elementSize: Int) throws {
        let (needed, overflow) = count.multipliedReportingOverflow(by: elementSize)
        if overflow || count < 0 || needed > remaining { throw WireError.lengthTooLarge(count) }
    }
}

extension WireWriter {
    /// Writes a SizedString, truncated to `SizedString.maxLength` bytes.
    public mutating func sizedString(_ value: [UInt8]) {
        let length = min(value.count, SizedString.maxLength)
        u16(UInt16(length))
        raw(value.prefix(length))
    }

    /// Writes a StringArray; at most UInt16.max elements are sent.
    public mutating func stringArray(_ values: [[UInt8]]) {
        let count = min(values.count, Int(UInt16.max))
        u16(UInt16(count))
        for value in values.prefix(count) { sizedString(value) }
    }

    /// Writes an FdArray; at most UInt16.max elements are sent.
    public mutating func fdArray(_ fds: [FDID]) {
        let count = min(fds.count, Int(UInt16.max))
        u16(UInt16(count))
        for fd in fds.prefix(count) { u64(fd) }
    }
}
