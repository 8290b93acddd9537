/// MkdirAt request. Layout: createCommon (24) | SizedString name.
public struct MkdirAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var uid: UID
    public var gid: GID
    public var mode: FileMode
    public var name: [UInt8]

    public init(dirFD: FDID, uid: UID, gid: GID, mode: FileMode, name: [UInt8]) {
        self.dirFD = dirFD; self.uid = uid; self.gid = gid; self.mode = mode; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        let common = try CreateCommon(from: &reader)
        dirFD = common.dirFD; uid = common.uid; gid = common.gid; mode = common.mode
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        CreateCommon(dirFD: dirFD, uid: uid, gid: gid, mode: mode).encode(to: &writer)
        writer.sizedString(name)
    }
}

public struct MkdirAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var childDir: Inode

    public init(childDir: Inode) { self.childDir = childDir }
    public init(from reader: inout WireReader) throws { childDir = try Inode(from: &reader) }
    public func encode(to writer: inout WireWriter) { childDir.encode(to: &writer) }
}

/// MknodAt request. Layout: createCommon (24) | minor u32 | major u32 | SizedString name.
public struct MknodAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var uid: UID
    public var gid: GID
    public var mode: FileMode
    public var minor: UInt32
    public var major: UInt32
    public var name: [UInt8]

    public init(dirFD: FDID, uid: UID, gid: GID, mode: FileMode, minor: UInt32, major: UInt32, name: [UInt8]) {
        self.dirFD = dirFD; self.uid = uid; self.gid = gid; self.mode = mode
        self.minor = minor; self.major = major; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        let common = try CreateCommon(from: &reader)
        dirFD = common.dirFD; uid = common.uid; gid = common.gid; mode = common.mode
        minor = try reader.u32()
        major = try reader.u32()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        CreateCommon(dirFD: dirFD, uid: uid, gid: gid, mode: mode).encode(to: &writer)
        writer.u32(minor)
        writer.u32(major)
        writer.sizedString(name)
    }
}

public struct MknodAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var child: Inode

    public init(child: Inode) { self.child = child }
    public init(from reader: inout WireReader) throws { child = try Inode(from: &reader) }
    public func encode(to writer: inout WireWriter) { child.encode(to: &writer) }
}

/// SymlinkAt request. Layout: dirFD u64 | uid u32 | gid u32 | name | target.
/// No createCommon here: a symlink has no mode.
public struct SymlinkAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var uid: UID
    public var gid: GID
    public var name: [UInt8]
    public var target: [UInt8]

    public init(dirFD: FDID, uid: UID, gid: GID, name: [UInt8], target: [UInt8]) {
        self.dirFD = dirFD; self.uid = uid; self.gid = gid; self.name = name; self.target = target
    }

    public var nameString: String { lossyString(name) }
    public var targetString: String { lossyString(target) }

    public init(from reader: inout WireReader) throws {
        dirFD = try reader.u64()
        uid = try reader.u32()
        gid = try reader.u32()
        name = try reader.sizedString()
        target = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(dirFD)
        writer.u32(uid)
        writer.u32(gid)
        writer.sizedString(name)
        writer.sizedString(target)
    }
}

public struct SymlinkAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var symlink: Inode

    public init(symlink: Inode) { self.symlink = symlink }
    public init(from reader: inout WireReader) throws { symlink = try Inode(from: &reader) }
    public func encode(to writer: inout WireWriter) { symlink.encode(to: &writer) }
}

/// LinkAt request: hard-link control FD `target` as `name` in `dirFD`.
/// Layout: dirFD u64 | target u64 | SizedString name.
public struct LinkAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var target: FDID
    public var name: [UInt8]

    public init(dirFD: FDID, target: FDID, name: [UInt8]) {
        self.dirFD = dirFD; self.target = target; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        dirFD = try reader.u64()
        target = try reader.u64()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(dirFD)
        writer.u64(target)
        writer.sizedString(name)
    }
}

public struct LinkAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var link: Inode

    public init(link: Inode) { self.link = link }
    public init(from reader: inout WireReader) throws { link = try Inode(from: &reader) }
    public func encode(to writer: inout WireWriter) { link.encode(to: &writer) }
}
