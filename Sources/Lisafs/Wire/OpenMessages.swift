/// OpenAt request: open the file behind control FD `fd` with `flags`.
/// 16 bytes: fd u64 | flags u32 | 4 padding.
public struct OpenAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var flags: UInt32

    public init(fd: FDID, flags: UInt32) {
        self.fd = fd
        self.flags = flags
    }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        flags = try reader.u32()
        try reader.skip(4)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u32(flags)
        writer.zeros(4)
    }
}

/// OpenAt response: the new open FD (a host FD may be donated alongside).
public struct OpenAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var openFD: FDID

    public init(openFD: FDID) { self.openFD = openFD }
    public init(from reader: inout WireReader) throws { openFD = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(openFD) }
}

/// OpenCreateAt request (openat with O_CREAT|O_EXCL).
/// Layout: createCommon (24) | flags u32 | SizedString name.
public struct OpenCreateAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var uid: UID
    public var gid: GID
    public var mode: FileMode
    public var flags: UInt32
    public var name: [UInt8]

    public init(dirFD: FDID, uid: UID, gid: GID, mode: FileMode, flags: UInt32, name: [UInt8]) {
        self.dirFD = dirFD; self.uid = uid; self.gid = gid; self.mode = mode
        self.flags = flags; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        let common = try CreateCommon(from: &reader)
        dirFD = common.dirFD; uid = common.uid; gid = common.gid; mode = common.mode
        flags = try reader.u32()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        CreateCommon(dirFD: dirFD, uid: uid, gid: gid, mode: mode).encode(to: &writer)
        writer.u32(flags)
        writer.sizedString(name)
    }
}

/// OpenCreateAt response: the created file and its open FD. 160 bytes.
public struct OpenCreateAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var child: Inode
    public var newFD: FDID

    public init(child: Inode, newFD: FDID) {
        self.child = child
        self.newFD = newFD
    }

    public init(from reader: inout WireReader) throws {
        child = try Inode(from: &reader)
        newFD = try reader.u64()
    }

    public func encode(to writer: inout WireWriter) {
        child.encode(to: &writer)
        writer.u64(newFD)
    }
}
