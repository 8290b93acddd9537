/// FStat request (Go: StatReq; the response is a bare Statx). 8 bytes.
public struct StatReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID

    public init(fd: FDID) { self.fd = fd }
    public init(from reader: inout WireReader) throws { fd = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(fd) }
}

/// The brief's name for StatReq (the request of MID FStat).
public typealias FStatReq = StatReq

/// SetStat request: a conglomerate of fchmod/fchown/ftruncate/utimensat
/// selected by `mask` (STATX_* bits). 64 bytes, no padding.
public struct SetStatReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var mask: UInt32
    /// Only the permission bits are settable.
    public var mode: UInt32
    public var uid: UID
    public var gid: GID
    public var size: UInt64
    public var atime: Timespec
    public var mtime: Timespec

    public init(fd: FDID, mask: UInt32, mode: UInt32 = 0, uid: UID = NoUID, gid: GID = NoGID,
                size: UInt64 = 0, atime: Timespec = .init(), mtime: Timespec = .init()) {
        self.fd = fd; self.mask = mask; self.mode = mode; self.uid = uid; self.gid = gid
        self.size = size; self.atime = atime; self.mtime = mtime
    }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        mask = try reader.u32()
        mode = try reader.u32()
        uid = try reader.u32()
        gid = try reader.u32()
        size = try reader.u64()
        atime = try Timespec(from: &reader)
        mtime = try Timespec(from: &reader)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u32(mask)
        writer.u32(mode)
        writer.u32(uid)
        writer.u32(gid)
        writer.u64(size)
        atime.encode(to: &writer)
        mtime.encode(to: &writer)
    }
}

/// SetStat result: which requested changes failed, and one errno among them.
public struct SetStatResp: Equatable, Hashable, Sendable, WireMessage {
    public var failureMask: UInt32
    public var failureErrNo: UInt32

    public init(failureMask: UInt32 = 0, failureErrNo: UInt32 = 0) {
        self.failureMask = failureMask
        self.failureErrNo = failureErrNo
    }

    public init(from reader: inout WireReader) throws {
        failureMask = try reader.u32()
        failureErrNo = try reader.u32()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u32(failureMask)
        writer.u32(failureErrNo)
    }
}

/// FStatFS request. 8 bytes.
public struct FStatFSReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID

    public init(fd: FDID) { self.fd = fd }
    public init(from reader: inout WireReader) throws { fd = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(fd) }
}

/// FStatFS response (Go: lisafs.StatFS, eight 64-bit fields).
public struct StatFS: Equatable, Hashable, Sendable, WireMessage {
    public var type: UInt64
    public var blockSize: Int64
    public var blocks: UInt64
    public var blocksFree: UInt64
    public var blocksAvailable: UInt64
    public var files: UInt64
    public var filesFree: UInt64
    public var nameLength: UInt64

    public init(type: UInt64 = 0, blockSize: Int64 = 0, blocks: UInt64 = 0, blocksFree: UInt64 = 0,
                blocksAvailable: UInt64 = 0, files: UInt64 = 0, filesFree: UInt64 = 0, nameLength: UInt64 = 0) {
        self.type = type; self.blockSize = blockSize; self.blocks = blocks; self.blocksFree = blocksFree
        self.blocksAvailable = blocksAvailable; self.files = files; self.filesFree = filesFree
        self.nameLength = nameLength
    }

    public init(from reader: inout WireReader) throws {
        type = try reader.u64()
        blockSize = try reader.i64()
        blocks = try reader.u64()
        blocksFree = try reader.u64()
        blocksAvailable = try reader.u64()
        files = try reader.u64()
        filesFree = try reader.u64()
        nameLength = try reader.u64()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(type)
        writer.i64(blockSize)
        writer.u64(blocks)
        writer.u64(blocksFree)
        writer.u64(blocksAvailable)
        writer.u64(files)
        writer.u64(filesFree)
        writer.u64(nameLength)
    }
}
