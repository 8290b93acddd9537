/// Connect request. 16 bytes: fd u64 | sockType u32 | 4 padding.
/// sockType 0 means "any socket type".
public struct ConnectReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var sockType: UInt32

    public init(fd: FDID, sockType: UInt32) {
        self.fd = fd
        self.sockType = sockType
    }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        sockType = try reader.u32()
        try reader.skip(4)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u32(sockType)
        writer.zeros(4)
    }
}

/// ConnectWithCreds request (MID 32, upstream gVisor only): ConnectReq (16)
/// followed by uid u32 | gid u32. 24 bytes. Response: ConnectResp.
public struct ConnectWithCredsReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var sockType: UInt32
    public var uid: UID
    public var gid: GID

    public init(fd: FDID, sockType: UInt32, uid: UID, gid: GID) {
        self.fd = fd; self.sockType = sockType; self.uid = uid; self.gid = gid
    }

    /// The embedded plain connect (Go embeds ConnectReq).
    public var connectReq: ConnectReq { ConnectReq(fd: fd, sockType: sockType) }

    public init(from reader: inout WireReader) throws {
        let base = try ConnectReq(from: &reader)
        fd = base.fd; sockType = base.sockType
        uid = try reader.u32()
        gid = try reader.u32()
    }

    public func encode(to writer: inout WireWriter) {
        connectReq.encode(to: &writer)
        writer.u32(uid)
        writer.u32(gid)
    }
}

/// BindAt request. Layout: createCommon (24) | sockType u32 | SizedString name.
public struct BindAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var uid: UID
    public var gid: GID
    public var mode: FileMode
    public var sockType: UInt32
    public var name: [UInt8]

    public init(dirFD: FDID, uid: UID, gid: GID, mode: FileMode, sockType: UInt32, name: [UInt8]) {
        self.dirFD = dirFD; self.uid = uid; self.gid = gid; self.mode = mode
        self.sockType = sockType; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        let common = try CreateCommon(from: &reader)
        dirFD = common.dirFD; uid = common.uid; gid = common.gid; mode = common.mode
        sockType = try reader.u32()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        CreateCommon(dirFD: dirFD, uid: uid, gid: gid, mode: mode).encode(to: &writer)
        writer.u32(sockType)
        writer.sizedString(name)
    }
}

/// BindAt response. 160 bytes: Inode | boundSocketFD u64.
public struct BindAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var child: Inode
    public var boundSocketFD: FDID

    public init(child: Inode, boundSocketFD: FDID) {
        self.child = child
        self.boundSocketFD = boundSocketFD
    }

    public init(from reader: inout WireReader) throws {
        child = try Inode(from: &reader)
        boundSocketFD = try reader.u64()
    }

    public func encode(to writer: inout WireWriter) {
        child.encode(to: &writer)
        writer.u64(boundSocketFD)
    }
}

/// Listen request. 16 bytes: fd u64 | backlog i32 | 4 padding.
public struct ListenReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var backlog: Int32

    public init(fd: FDID, backlog: Int32) {
        self.fd = fd
        self.backlog = backlog
    }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        backlog = try reader.i32()
        try reader.skip(4)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.i32(backlog)
        writer.zeros(4)
    }
}

/// Accept request. 8 bytes.
public struct AcceptReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID

    public init(fd: FDID) { self.fd = fd }
    public init(from reader: inout WireReader) throws { fd = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(fd) }
}

/// Accept response. Layout: SizedString peerAddr (the accepted FD travels alongside).
public struct AcceptResp: Equatable, Hashable, Sendable, WireMessage {
    public var peerAddr: [UInt8]

    public init(peerAddr: [UInt8]) { self.peerAddr = peerAddr }
    public var peerAddrString: String { lossyString(peerAddr) }
    public init(from reader: inout WireReader) throws { peerAddr = try reader.sizedString() }
    public func encode(to writer: inout WireWriter) { writer.sizedString(peerAddr) }
}
