/// Walk / WalkStat request: walk `path` components from `dirFD`.
/// Layout: dirFD u64 | StringArray.
public struct WalkReq: Equatable, Hashable, Sendable, WireMessage {
    public var dirFD: FDID
    /// Path components as raw bytes (never normalised).
    public var path: [[UInt8]]

    public init(dirFD: FDID, path: [[UInt8]]) {
        self.dirFD = dirFD
        self.path = path
    }

    public init(dirFD: FDID, path: [String]) {
        self.init(dirFD: dirFD, path: path.map { Array($0.utf8) })
    }

    /// Lossy UTF-8 rendering of the components, for logs and tests.
    public var pathStrings: [String] { path.map(lossyString) }

    public init(from reader: inout WireReader) throws {
        dirFD = try reader.u64()
        path = try reader.stringArray()
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(dirFD)
        writer.stringArray(path)
    }
}

/// Why a walk stopped early (Go: WalkStatus = primitive.Uint8).
///
/// Go decodes any byte; this enum rejects values outside 0...2 when decoding a
/// WalkResp. Only the client side decodes WalkResp, and gVisor never sends others.
public enum WalkStatus: UInt8, Sendable, CaseIterable {
    case success = 0
    case componentDoesNotExist = 1
    case componentSymlink = 2
}

/// Walk response. Layout: status u8 | count u16 | count x Inode (152 each).
public struct WalkResp: Equatable, Hashable, Sendable, WireMessage {
    public var status: WalkStatus
    public var inodes: [Inode]

    public init(status: WalkStatus, inodes: [Inode]) {
        self.status = status
        self.inodes = inodes
    }

    public init(from reader: inout WireReader) throws {
        let rawStatus = try reader.u8()
        guard let status = WalkStatus(rawValue: rawStatus) else {
            throw WireError.invalidValue("WalkStatus \(rawStatus)")
        }
        self.status = status
        let count = Int(try reader.u16())
        try reader.requireRoom(count: count, elementSize: Inode.encodedSize)
        var inodes: [Inode] = []
        inodes.reserveCapacity(count)
        for _ in 0..<count { inodes.append(try Inode(from: &reader)) }
        self.inodes = inodes
    }

    public func encode(to writer: inout WireWriter) {
        writer.u8(status.rawValue)
        let count = min(inodes.count, Int(UInt16.max))
        writer.u16(UInt16(count))
        for inode in inodes.prefix(count) { inode.encode(to: &writer) }
    }
}

/// WalkStat response (request is WalkReq). Layout: count u16 | count x Statx.
public struct WalkStatResp: Equatable, Hashable, Sendable, WireMessage {
    public var stats: [Statx]

    public init(stats: [Statx]) { self.stats = stats }

    public init(from reader: inout WireReader) throws {
        let count = Int(try reader.u16())
        try reader.requireRoom(count: count, elementSize: Statx.encodedSize)
        var stats: [Statx] = []
        stats.reserveCapacity(count)
        for _ in 0..<count { stats.append(try Statx(from: &reader)) }
        self.stats = stats
    }

    public func encode(to writer: inout WireWriter) {
        let count = min(stats.count, Int(UInt16.max))
        writer.u16(UInt16(count))
        for stat in stats.prefix(count) { stat.encode(to: &writer) }
    }
}
