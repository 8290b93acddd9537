/// PRead request. 24 bytes: offset u64 | fd u64 | count u32 | 4 padding.
public struct PReadReq: Equatable, Hashable, Sendable, WireMessage {
    public var offset: UInt64
    public var fd: FDID
    public var count: UInt32

    public init(offset: UInt64, fd: FDID, count: UInt32) {
        self.offset = offset; self.fd = fd; self.count = count
    }

    public init(from reader: inout WireReader) throws {
        offset = try reader.u64()
        fd = try reader.u64()
        count = try reader.u32()
        try reader.skip(4)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(offset)
        writer.u64(fd)
        writer.u32(count)
        writer.zeros(4)
    }
}

/// PRead response. Layout: numBytes u64 | numBytes bytes.
/// `numBytes` is always `buf.count`; Go keeps them separate only to read into
/// a caller-supplied buffer.
public struct PReadResp: Equatable, Hashable, Sendable, WireMessage {
    public var buf: [UInt8]

    public init(buf: [UInt8]) { self.buf = buf }

    public var numBytes: UInt64 { UInt64(buf.count) }

    /// Bytes a response carrying `n` data bytes occupies.
    public static func encodedSize(dataCount n: Int) -> Int { 8 + n }

    public init(from reader: inout WireReader) throws {
        let n = try reader.u64()
        // Compare in 64 bits: Go truncates to uint32 here, we refuse instead.
        guard n <= UInt64(reader.remaining) else { throw WireError.lengthTooLarge(Int(clamping: n)) }
        buf = try reader.bytes(Int(n))
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(numBytes)
        writer.raw(buf)
    }
}

/// PWrite request. Layout: offset u64 | fd u64 | numBytes u32 | numBytes bytes.
public struct PWriteReq: Equatable, Hashable, Sendable, WireMessage {
    public var offset: UInt64
    public var fd: FDID
    public var buf: [UInt8]

    public init(offset: UInt64, fd: FDID, buf: [UInt8]) {
        self.offset = offset; self.fd = fd; self.buf = buf
    }

    /// Go sends the length as uint32; a buffer is never larger than a message.
    public var numBytes: UInt32 { UInt32(clamping: buf.count) }

    public init(from reader: inout WireReader) throws {
        offset = try reader.u64()
        fd = try reader.u64()
        let n = Int(try reader.u32())
        guard n <= reader.remaining else { throw WireError.lengthTooLarge(n) }
        buf = try reader.bytes(n)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(offset)
        writer.u64(fd)
        writer.u32(numBytes)
        writer.raw(buf.prefix(Int(numBytes)))
    }
}

/// PWrite response: bytes written.
public struct PWriteResp: Equatable, Hashable, Sendable, WireMessage {
    public var count: UInt64

    public init(count: UInt64) { self.count = count }
    public init(from reader: inout WireReader) throws { count = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(count) }
}

/// FAllocate request. 32 bytes: fd | mode | offset | length (all 64-bit).
public struct FAllocateReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var mode: UInt64
    public var offset: UInt64
    public var length: UInt64

    public init(fd: FDID, mode: UInt64, offset: UInt64, length: UInt64) {
        self.fd = fd; self.mode = mode; self.offset = offset; self.length = length
    }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        mode = try reader.u64()
        offset = try reader.u64()
        length = try reader.u64()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u64(mode)
        writer.u64(offset)
        writer.u64(length)
    }
}

/// Flush request. 8 bytes.
public struct FlushReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID

    public init(fd: FDID) { self.fd = fd }
    public init(from reader: inout WireReader) throws { fd = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(fd) }
}
