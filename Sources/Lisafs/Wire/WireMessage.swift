/// A lisafs request or response payload with gVisor-compatible marshalling.
///
/// `init(from:)` reads exactly this message's fields and leaves the reader after
/// them, so messages compose (Inode inside WalkResp, Dirent64 inside
/// Getdents64Resp). Whole-payload `decode` additionally rejects trailing bytes:
/// gVisor's CheckedUnmarshal returns the remainder and its handlers ignore it,
/// but a real gVisor peer always sends exactly SizeBytes(), so being stricter
/// costs no compatibility and removes ambiguity. Nothing here traps on hostile input.
public protocol WireMessage {
    init(from reader: inout WireReader) throws
    func encode(to writer: inout WireWriter)
}

extension WireMessage {
    /// Decode a whole payload.
    public static func decode(_ payload: UnsafeRawBufferPointer) throws -> Self {
        var reader = WireReader(payload)
        let message = try Self(from: &reader)
        try reader.finish()
        return message
    }

    public static func decode(_ payload: [UInt8]) throws -> Self {
        try payload.withUnsafeBytes { try decode($0) }
    }

    /// Encode to a fresh byte array.
    public func encoded() -> [UInt8] {
        var writer = WireWriter()
        encode(to: &writer)
        return writer.bytes
    }
}
