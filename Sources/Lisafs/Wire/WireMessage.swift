/// A lisafs request or response payload with gVisor-compatible marshalling.
///
/// `decode` must consume exactly the payload (call `reader.finish()` where the
/// Go side uses CheckedUnmarshal semantics that reject extra bytes; see the
/// per-message notes) and never trap on hostile input.
public protocol WireMessage {
    init(from reader: inout WireReader) throws
    func encode(to writer: inout WireWriter)
}

extension WireMessage {
    /// Decode a whole payload.
    public static func decode(_ payload: UnsafeRawBufferPointer) throws -> Self {
        var reader = WireReader(payload)
        return try Self(from: &reader)
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
