/// FGetXattr request. Layout: fd u64 | bufSize u32 | SizedString name.
public struct FGetXattrReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var bufSize: UInt32
    public var name: [UInt8]

    public init(fd: FDID, bufSize: UInt32, name: [UInt8]) {
        self.fd = fd; self.bufSize = bufSize; self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        bufSize = try reader.u32()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u32(bufSize)
        writer.sizedString(name)
    }
}

/// FGetXattr response. Layout: SizedString value. Values longer than
/// `SizedString.maxLength` cannot be carried; the server must answer ERANGE/E2BIG.
public struct FGetXattrResp: Equatable, Hashable, Sendable, WireMessage {
    public var value: [UInt8]

    public init(value: [UInt8]) { self.value = value }
    public init(from reader: inout WireReader) throws { value = try reader.sizedString() }
    public func encode(to writer: inout WireWriter) { writer.sizedString(value) }
}

/// FSetXattr request. Layout: fd u64 | flags u32 | name | value.
public struct FSetXattrReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var flags: UInt32
    public var name: [UInt8]
    public var value: [UInt8]

    public init(fd: FDID, flags: UInt32, name: [UInt8], value: [UInt8]) {
        self.fd = fd; self.flags = flags; self.name = name; self.value = value
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        flags = try reader.u32()
        name = try reader.sizedString()
        value = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u32(flags)
        writer.sizedString(name)
        writer.sizedString(value)
    }
}

/// FListXattr request. 16 bytes: fd u64 | size u64.
public struct FListXattrReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var size: UInt64

    public init(fd: FDID, size: UInt64) {
        self.fd = fd
        self.size = size
    }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        size = try reader.u64()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.u64(size)
    }
}

/// FListXattr response. Layout: StringArray xattrs.
public struct FListXattrResp: Equatable, Hashable, Sendable, WireMessage {
    public var xattrs: [[UInt8]]

    public init(xattrs: [[UInt8]]) { self.xattrs = xattrs }
    public var xattrStrings: [String] { xattrs.map(lossyString) }
    public init(from reader: inout WireReader) throws { xattrs = try reader.stringArray() }
    public func encode(to writer: inout WireWriter) { writer.stringArray(xattrs) }
}

/// FRemoveXattr request. Layout: fd u64 | SizedString name.
public struct FRemoveXattrReq: Equatable, Hashable, Sendable, WireMessage {
    public var fd: FDID
    public var name: [UInt8]

    public init(fd: FDID, name: [UInt8]) {
        self.fd = fd
        self.name = name
    }

    public var nameString: String { lossyString(name) }

    public init(from reader: inout WireReader) throws {
        fd = try reader.u64()
        name = try reader.sizedString()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(fd)
        writer.sizedString(name)
    }
}
