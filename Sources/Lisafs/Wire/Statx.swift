/// Timestamp inside Statx (Go: linux.StatxTimestamp; 16 bytes: sec, nsec, 4 pad).
public struct StatxTimestamp: Equatable, Hashable, Sendable {
    public var sec: Int64
    public var nsec: UInt32

    public init(sec: Int64 = 0, nsec: UInt32 = 0) {
        self.sec = sec
        self.nsec = nsec
    }

    public static let encodedSize = 16

    init(from reader: inout WireReader) throws {
        sec = try reader.i64()
        nsec = try reader.u32()
        try reader.skip(4) // padding; Go ignores its value
    }

    func encode(to writer: inout WireWriter) {
        writer.i64(sec)
        writer.u32(nsec)
        writer.zeros(4)
    }
}

/// Result of statx(2) as lisafs carries it (Go: linux.Statx, 144 bytes:
/// the kernel struct without its trailing spare space).
public struct Statx: Equatable, Hashable, Sendable, WireMessage {
    public var mask: UInt32
    public var blksize: UInt32
    public var attributes: UInt64
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var mode: UInt16
    public var ino: UInt64
    public var size: UInt64
    public var blocks: UInt64
    public var attributesMask: UInt64
    public var atime: StatxTimestamp
    public var btime: StatxTimestamp
    public var ctime: StatxTimestamp
    public var mtime: StatxTimestamp
    public var rdevMajor: UInt32
    public var rdevMinor: UInt32
    public var devMajor: UInt32
    public var devMinor: UInt32

    public static let encodedSize = 144

    public init(
        mask: UInt32 = 0, blksize: UInt32 = 0, attributes: UInt64 = 0, nlink: UInt32 = 0,
        uid: UInt32 = 0, gid: UInt32 = 0, mode: UInt16 = 0, ino: UInt64 = 0, size: UInt64 = 0,
        blocks: UInt64 = 0, attributesMask: UInt64 = 0,
        atime: StatxTimestamp = .init(), btime: StatxTimestamp = .init(),
        ctime: StatxTimestamp = .init(), mtime: StatxTimestamp = .init(),
        rdevMajor: UInt32 = 0, rdevMinor: UInt32 = 0, devMajor: UInt32 = 0, devMinor: UInt32 = 0
    ) {
        self.mask = mask; self.blksize = blksize; self.attributes = attributes; self.nlink = nlink
        self.uid = uid; self.gid = gid; self.mode = mode; self.ino = ino; self.size = size
        self.blocks = blocks; self.attributesMask = attributesMask
        self.atime = atime; self.btime = btime; self.ctime = ctime; self.mtime = mtime
        self.rdevMajor = rdevMajor; self.rdevMinor = rdevMinor
        self.devMajor = devMajor; self.devMinor = devMinor
    }

    public init(from reader: inout WireReader) throws {
        mask = try reader.u32()
        blksize = try reader.u32()
        attributes = try reader.u64()
        nlink = try reader.u32()
        uid = try reader.u32()
        gid = try reader.u32()
        mode = try reader.u16()
        try reader.skip(2)
        ino = try reader.u64()
        size = try reader.u64()
        blocks = try reader.u64()
        attributesMask = try reader.u64()
        atime = try StatxTimestamp(from: &reader)
        btime = try StatxTimestamp(from: &reader)
        ctime = try StatxTimestamp(from: &reader)
        mtime = try StatxTimestamp(from: &reader)
        rdevMajor = try reader.u32()
        rdevMinor = try reader.u32()
        devMajor = try reader.u32()
        devMinor = try reader.u32()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u32(mask)
        writer.u32(blksize)
        writer.u64(attributes)
        writer.u32(nlink)
        writer.u32(uid)
        writer.u32(gid)
        writer.u16(mode)
        writer.zeros(2)
        writer.u64(ino)
        writer.u64(size)
        writer.u64(blocks)
        writer.u64(attributesMask)
        atime.encode(to: &writer)
        btime.encode(to: &writer)
        ctime.encode(to: &writer)
        mtime.encode(to: &writer)
        writer.u32(rdevMajor)
        writer.u32(rdevMinor)
        writer.u32(devMajor)
        writer.u32(devMinor)
    }
}

/// Go: linux.Timespec (sec, nsec as two int64), used by SetStatReq.
public struct Timespec: Equatable, Hashable, Sendable {
    public var sec: Int64
    public var nsec: Int64

    public init(sec: Int64 = 0, nsec: Int64 = 0) {
        self.sec = sec
        self.nsec = nsec
    }

    init(from reader: inout WireReader) throws {
        sec = try reader.i64()
        nsec = try reader.i64()
    }

    func encode(to writer: inout WireWriter) {
        writer.i64(sec)
        writer.i64(nsec)
    }
}
