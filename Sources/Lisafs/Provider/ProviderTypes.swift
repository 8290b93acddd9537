/// Value types passed between the server and a `Provider`.

/// Owner and permissions requested for a new file (MkdirAt, MknodAt, OpenCreateAt,
/// BindAt, SymlinkAt). `mode` holds permission bits; for MknodAt it also carries
/// the S_IFMT file type. `uid`/`gid` are as the client sent them (NoUID/NoGID
/// mean "leave as created").
public struct CreateAttributes: Equatable, Sendable {
    public var mode: UInt32
    public var uid: UID
    public var gid: GID

    public init(mode: UInt32, uid: UID, gid: GID) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
    }

    /// Permission bits only (07777).
    public var permissions: UInt32 { mode & 0o7777 }
    /// S_IFMT part (MknodAt only).
    public var fileType: UInt32 { mode & 0o170000 }
}

/// open(2) flags after the server's filtering: only O_ACCMODE and O_TRUNC ever
/// reach a provider (as in gVisor, everything else the client sends is dropped).
public struct OpenFlags: Equatable, Sendable {
    public static let allowedMask: UInt32 = 0o3 | 0o1000 // O_ACCMODE | O_TRUNC

    public let rawValue: UInt32

    /// Filters `raw` down to the allowed bits.
    public init(filtering raw: UInt32) { rawValue = raw & OpenFlags.allowedMask }

    public var accessMode: UInt32 { rawValue & 0o3 }
    public var isReadable: Bool { accessMode == 0 || accessMode == 2 }
    public var isWritable: Bool { accessMode == 1 || accessMode == 2 }
    public var truncates: Bool { rawValue & 0o1000 != 0 }
}

/// The attribute changes of one SetStat request (the request minus its FD).
/// `mask` holds STATX_* bits; only MODE, UID, GID, SIZE, ATIME, MTIME reach a
/// provider (the server answers EPERM for anything else, as gVisor does).
public struct SetStatChanges: Equatable, Sendable {
    public static let supportedMask: UInt32 =
        StatxMask.mode | StatxMask.uid | StatxMask.gid | StatxMask.size | StatxMask.atime | StatxMask.mtime

    public var mask: UInt32
    public var mode: UInt32
    public var uid: UID
    public var gid: GID
    public var size: UInt64
    public var atime: Timespec
    public var mtime: Timespec

    public init(mask: UInt32, mode: UInt32 = 0, uid: UID = NoUID, gid: GID = NoGID, size: UInt64 = 0,
                atime: Timespec = .init(), mtime: Timespec = .init()) {
        self.mask = mask; self.mode = mode; self.uid = uid; self.gid = gid
        self.size = size; self.atime = atime; self.mtime = mtime
    }

    public init(_ request: SetStatReq) {
        self.init(mask: request.mask, mode: request.mode, uid: request.uid, gid: request.gid,
                  size: request.size, atime: request.atime, mtime: request.mtime)
    }
}

/// Outcome of SetStat: which STATX_* bits could not be applied and one errno
/// among those failures (SetStat is not all-or-nothing; see SetStatResp).
public struct SetStatResult: Equatable, Sendable {
    public var failureMask: UInt32
    public var failure: Errno?

    public init(failureMask: UInt32 = 0, failure: Errno? = nil) {
        self.failureMask = failureMask
        self.failure = failure
    }

    /// Records one failed attribute group.
    public mutating func fail(_ bits: UInt32, _ error: Errno) {
        failureMask |= bits
        failure = error
    }
}

/// STATX_* mask bits used in Statx.mask and SetStat.
public enum StatxMask {
    public static let type: UInt32 = 0x1
    public static let mode: UInt32 = 0x2
    public static let nlink: UInt32 = 0x4
    public static let uid: UInt32 = 0x8
    public static let gid: UInt32 = 0x10
    public static let atime: UInt32 = 0x20
    public static let mtime: UInt32 = 0x40
    public static let ctime: UInt32 = 0x80
    public static let ino: UInt32 = 0x100
    public static let size: UInt32 = 0x200
    public static let blocks: UInt32 = 0x400
    public static let basicStats: UInt32 = 0x7ff
    public static let btime: UInt32 = 0x800
}

/// S_IFMT file types, as found in Statx.mode.
public enum FileType {
    public static let mask: UInt32 = 0o170000
    public static let socket: UInt32 = 0o140000
    public static let symlink: UInt32 = 0o120000
    public static let regular: UInt32 = 0o100000
    public static let block: UInt32 = 0o060000
    public static let directory: UInt32 = 0o040000
    public static let character: UInt32 = 0o020000
    public static let fifo: UInt32 = 0o010000

    /// The S_IFMT part of a mode.
    public static func of(_ mode: UInt32) -> UInt32 { mode & mask }
    public static func of(_ stat: Statx) -> UInt32 { UInt32(stat.mode) & mask }
}

/// One directory entry produced by `Provider.getdents`.
public struct DirectoryEntry: Equatable, Sendable {
    public var name: [UInt8]
    public var ino: UInt64
    /// Offset of the *next* entry (d_off), opaque to the client.
    public var offset: UInt64
    /// DT_* type.
    public var type: UInt8
    public var devMajor: UInt32
    public var devMinor: UInt32

    public init(name: [UInt8], ino: UInt64, offset: UInt64, type: UInt8, devMajor: UInt32 = 0, devMinor: UInt32 = 0) {
        self.name = name; self.ino = ino; self.offset = offset; self.type = type
        self.devMajor = devMajor; self.devMinor = devMinor
    }

    /// Size of the equivalent host `linux_dirent64` record (8-byte aligned
    /// 19-byte header + name + NUL). Providers count their byte budget in these
    /// units, as gVisor's fsgofer does.
    public var hostRecordLength: Int { (19 + name.count + 1 + 7) & ~7 }
}

/// A file just created in a directory: its provider handle and stat.
public struct Created<Node> {
    public var node: Node
    public var stat: Statx
    public init(node: Node, stat: Statx) {
        self.node = node
        self.stat = stat
    }
}

/// Result of `openCreate`: the new file, its open handle, and optionally a host
/// FD to donate to the client (ownership passes to the server).
public struct CreatedOpen<Node, OpenFile> {
    public var node: Node
    public var stat: Statx
    public var openFile: OpenFile
    public var donatedFD: Int32?
    public init(node: Node, stat: Statx, openFile: OpenFile, donatedFD: Int32?) {
        self.node = node; self.stat = stat; self.openFile = openFile; self.donatedFD = donatedFD
    }
}

/// Result of `open`: the open handle and optionally a host FD to donate.
public struct Opened<OpenFile> {
    public var openFile: OpenFile
    public var donatedFD: Int32?
    public init(openFile: OpenFile, donatedFD: Int32?) {
        self.openFile = openFile
        self.donatedFD = donatedFD
    }
}

/// Result of `bind`: the socket file's node, its bound-socket handle, and the
/// notification FD to donate (required: the client polls it for pending
/// connections). It must not share an open file description with anything
/// the gofer blocks on — not a dup of the listening socket, whose O_NONBLOCK
/// the client could then clear (HostProvider donates an epoll FD).
public struct BoundSocketCreated<Node, BoundSocket> {
    public var node: Node
    public var stat: Statx
    public var boundSocket: BoundSocket
    public var donatedFD: Int32
    public init(node: Node, stat: Statx, boundSocket: BoundSocket, donatedFD: Int32) {
        self.node = node; self.stat = stat; self.boundSocket = boundSocket; self.donatedFD = donatedFD
    }
}

/// Bound-socket handle type for providers without socket support.
public final class NoBoundSocket {}
