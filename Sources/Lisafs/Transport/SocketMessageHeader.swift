/// The 8-byte header in front of every message on the lisafs Unix socket
/// (gVisor's `sockHeader`): payload length u32, MID u16, 2 bytes of padding,
/// little-endian. The padding is written as zero and ignored on receipt, as
/// gVisor does.
public struct SocketMessageHeader: Equatable, Sendable {
    public static let size = 8

    public var payloadLength: UInt32
    public var mid: UInt16

    public init(payloadLength: UInt32, mid: UInt16) {
        self.payloadLength = payloadLength
        self.mid = mid
    }

    /// Decodes the first `size` bytes; throws if fewer are given.
    public init(decoding bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count >= Self.size else {
            throw TransportError.truncatedHeader(received: bytes.count)
        }
        payloadLength = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        mid = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
    }

    public var encoded: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: payloadLength.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: mid.littleEndian, toByteOffset: 4, as: UInt16.self)
        }
        return out
    }
}
