#if canImport(Glibc)
import Glibc
#endif

/// Response to Mount: the root inode, the negotiated message size and the
/// MIDs the server implements (Go: lisafs.MountResp).
///
/// Layout: Inode (152) | maxMessageSize u32 | count u16 | count x MID u16.
public struct MountResp: Equatable, Hashable, Sendable, WireMessage {
    public var root: Inode
    /// Maximum message size in bytes, including the communication header.
    public var maxMessageSize: UInt32
    /// Raw MIDs as sent. Raw rather than `MID` so that a peer advertising a MID
    /// this build does not know still decodes (Go accepts any uint16).
    public var supportedMs: [UInt16]

    public init(root: Inode, maxMessageSize: UInt32, supportedMs: [UInt16]) {
        self.root = root
        self.maxMessageSize = maxMessageSize
        self.supportedMs = supportedMs
    }

    /// Builds the response from the set of implemented messages, in MID order.
    public init(root: Inode, maxMessageSize: UInt32 = MountResp.recommendedMaxMessageSize, supporting mids: some Sequence<MID>) {
        self.init(root: root, maxMessageSize: maxMessageSize, supportedMs: MountResp.encodeSupported(mids))
    }

    /// Sorted, de-duplicated raw values for the MountResp supported list.
    public static func encodeSupported(_ mids: some Sequence<MID>) -> [UInt16] {
        Array(Set(mids.map(\.rawValue))).sorted()
    }

    /// The supported MIDs this build knows; unknown raw values are dropped.
    public var supportedMIDs: [MID] { supportedMs.compactMap(MID.init(rawValue:)) }

    /// Go's MaxMessageSize(): a 2 MiB huge page minus one page, so that the
    /// flipcall window (message + headers) fits one huge page.
    public static var recommendedMaxMessageSize: UInt32 {
        // getpagesize() rather than sysconf(_SC_PAGESIZE): the latter's enum
        // constant is not reliably visible through `import Glibc` alone.
        let page = Int(getpagesize())
        return UInt32(2 * 1024 * 1024 - (page > 0 ? page : 4096))
    }

    public init(from reader: inout WireReader) throws {
        root = try Inode(from: &reader)
        maxMessageSize = try reader.u32()
        let count = Int(try reader.u16())
        try reader.requireRoom(count: count, elementSize: 2)
        var mids: [UInt16] = []
        mids.reserveCapacity(count)
        for _ in 0..<count { mids.append(try reader.u16()) }
        supportedMs = mids
    }

    public func encode(to writer: inout WireWriter) {
        root.encode(to: &writer)
        writer.u32(maxMessageSize)
        let count = min(supportedMs.count, Int(UInt16.max))
        writer.u16(UInt16(count))
        for mid in supportedMs.prefix(count) { writer.u16(mid) }
    }
}

/// Response to Channel: where the flipcall data region lies in the memfd sent
/// alongside (Go: ChannelResp with unexported dataOffset/dataLength).
public struct ChannelResp: Equatable, Hashable, Sendable, WireMessage {
    public var dataOffset: Int64
    public var dataLength: UInt64

    public init(dataOffset: Int64, dataLength: UInt64) {
        self.dataOffset = dataOffset
        self.dataLength = dataLength
    }

    public init(from reader: inout WireReader) throws {
        dataOffset = try reader.i64()
        dataLength = try reader.u64()
    }

    public func encode(to writer: inout WireWriter) {
        writer.i64(dataOffset)
        writer.u64(dataLength)
    }
}

/// Payload of MID 0: the errno of a failed request (Go: ErrorResp, 4 bytes).
public struct ErrorResp: Equatable, Hashable, Sendable, WireMessage {
    public var errno: UInt32

    public init(errno: UInt32) { self.errno = errno }
    public init(_ error: Errno) { self.errno = UInt32(bitPattern: error.code) }

    public init(from reader: inout WireReader) throws { errno = try reader.u32() }
    public func encode(to writer: inout WireWriter) { writer.u32(errno) }
}
