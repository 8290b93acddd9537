/// ReadLinkAt request. 8 bytes.
public struct ReadLinkAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID

    public init(fd: FDID) { self.fd = fd }
    public init(from reader: inout WireReader) throws { fd = try reader.u64() }
    public func encode(to writer: inout WireWriter) { writer.u64(fd) }
}

/// ReadLinkAt response. Layout: SizedString target.
public struct ReadLinkAtResp: Equatable, Hashable, Sendable, WireMessage {
    public var target: [UInt8]

    public init(target: [UInt8]) { self.target = target }
    public var targetString: String { lossyString(target) }
    public init(from reader: inout WireReader) throws { target = try reader.sizedString() }
    public func encode(to writer: inout WireWriter) { writer.sizedString(target) }
}

/// UnlinkAt request. Layout: dirFD u64 | flags u32 | SizedString name.
public struct UnlinkAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var flags: UInt32
    public var name: [UInt8]

    public init(dirFD: FDID, flags: UInt32, name: [UInt8]) {
        self.dirFD = dirFD; self.flags = flags; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        dirFD = try reader.u64()
        flags = try reader.u32()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(dirFD)
        writer.u32(flags)
        writer.sizedString(name)
    }
}

/// RenameAt request. Layout: oldDir u64 | newDir u64 | oldName | newName.
public struct RenameAtReq: Equatable, Hashable, Sendable, WireMessage {
    public var oldDir: FDID
    public var newDir: FDID
    public var oldName: [UInt8]
    public var newName: [UInt8]

    public init(oldDir: FDID, newDir: FDID, oldName: [UInt8], newName: [UInt8]) {
        self.oldDir = oldDir; self.newDir = newDir; self.oldName = oldName; self.newName = newName
    }

    public var oldNameString: String { lossyString(oldName) }
    public var newNameString: String { lossyString(newName) }

    public init(from reader: inout WireReader) throws {
        oldDir = try reader.u64()
        newDir = try reader.u64()
        oldName = try reader.sizedString()
        newName = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(oldDir)
        writer.u64(newDir)
        writer.sizedString(oldName)
        writer.sizedString(newName)
    }
}

/// RenameAt2 request (MID 33, upstream gVisor only): RenameAtReq followed by
/// renameat2(2) flags u32 (unaligned, straight after newName). Response: RenameAtResp.
public struct RenameAt2Req: Equatable, Hashable, Sendable, WireMessage {
    public var oldDir: FDID
    public var newDir: FDID
    public var oldName: [UInt8]
    public var newName: [UInt8]
    public var flags: UInt32

    public init(oldDir: FDID, newDir: FDID, oldName: [UInt8], newName: [UInt8], flags: UInt32) {
        self.oldDir = oldDir; self.newDir = newDir; self.oldName = oldName; self.newName = newName
        self.flags = flags
    }

    /// The embedded plain rename (Go embeds RenameAtReq).
    public var renameAtReq: RenameAtReq {
        RenameAtReq(oldDir: oldDir, newDir: newDir, oldName: oldName, newName: newName)
    }

    public init(from reader: inout WireReader) throws {
        let base = try RenameAtReq(from: &reader)
        oldDir = base.oldDir; newDir = base.newDir; oldName = base.oldName; newName = base.newName
        flags = try reader.u32()
    }

    public func encode(to writer: inout WireWriter) {
        renameAtReq.encode(to: &writer)
        writer.u32(flags)
    }
}

/// Getdents64 request. 16 bytes: dirFD u64 | count i32 | 4 padding.
/// A negative count asks the server to seek to 0 first; |count| is the byte budget.
public struct Getdents64Req: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    public var count: Int32

    public init(dirFD: FDID, count: Int32) {
        self.dirFD = dirFD
        self.count = count
    }

    public init(from reader: inout WireReader) throws {
        dirFD = try reader.u64()
        count = try reader.i32()
        try reader.skip(4)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(dirFD)
        writer.i32(count)
        writer.zeros(4)
    }
}

/// One directory entry (lisafs's own layout, not struct linux_dirent64):
/// ino u64 | devMinor u32 | devMajor u32 | off u64 | type u8 | SizedString name.
public struct Dirent64: Equatable, Hashable, Sendable, WireMessage {
    public var ino: UInt64
    public var devMinor: UInt32
    public var devMajor: UInt32
    public var off: UInt64
    public var type: UInt8
    public var name: [UInt8]

    /// Size of an entry with an empty name; also the minimum size.
    public static let fixedSize = 8 + 4 + 4 + 8 + 1 + 2

    public init(ino: UInt64, devMinor: UInt32, devMajor: UInt32, off: UInt64, type: UInt8, name: [UInt8]) {
        self.ino = ino; self.devMinor = devMinor; self.devMajor = devMajor; self.off = off
        self.type = type; self.name = name
    }

    public var nameString: String { lossyString(name) }

    /// Encoded size, for filling a response up to the client's byte budget.
    public var encodedSize: Int { Dirent64.fixedSize + min(name.count, SizedString.maxLength) }

    public init(from reader: inout WireReader) throws {
        ino = try reader.u64()
        devMinor = try reader.u32()
        devMajor = try reader.u32()
        off = try reader.u64()
        type = try reader.u8()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(ino)
        writer.u32(devMinor)
        writer.u32(devMajor)
        writer.u64(off)
        writer.u8(type)
        writer.sizedString(name)
    }
}

/// Getdents64 response. Layout: count u16 | count x Dirent64.
public struct Getdents64Resp: Equatable, Hashable, Sendable, WireMessage {
    public var dirents: [Dirent64]

    public init(dirents: [Dirent64]) { self.dirents = dirents }

    public init(from reader: inout WireReader) throws {
        let count = Int(try reader.u16())
        try reader.requireRoom(count: count, elementSize: Dirent64.fixedSize)
        var dirents: [Dirent64] = []
        dirents.reserveCapacity(count)
        for _ in 0..<count { dirents.append(try Dirent64(from: &reader)) }
        self.dirents = dirents
    }

    public func encode(to writer: inout WireWriter) {
        let count = min(dirents.count, Int(UInt16.max))
        writer.u16(UInt16(count))
        for dirent in dirents.prefix(count) { dirent.encode(to: &writer) }
    }
}
