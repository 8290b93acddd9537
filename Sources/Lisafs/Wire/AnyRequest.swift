/// A MID the request decoder does not accept: unknown to this build, or one
/// that never appears as a request (MID 0, Error). gVisor answers these with
/// EOPNOTSUPP.
public struct UnknownMIDError: Error, Equatable, Sendable {
    public let mid: UInt16
    public init(mid: UInt16) { self.mid = mid }
}

/// A decoded client request, one case per request MID. The server's
/// dispatcher switches on this.
///
/// Walk and WalkStat share WalkReq; the case tells them apart.
public enum AnyRequest: Equatable, Hashable, Sendable {
    case mount(MountReq)
    case channel(ChannelReq)
    case fStat(StatReq)
    case setStat(SetStatReq)
    case walk(WalkReq)
    case walkStat(WalkReq)
    case openAt(OpenAtReq)
    case openCreateAt(OpenCreateAtReq)
    case close(CloseReq)
    case fSync(FsyncReq)
    case pWrite(PWriteReq)
    case pRead(PReadReq)
    case mkdirAt(MkdirAtReq)
    case mknodAt(MknodAtReq)
    case symlinkAt(SymlinkAtReq)
    case linkAt(LinkAtReq)
    case fStatFS(FStatFSReq)
    case fAllocate(FAllocateReq)
    case readLinkAt(ReadLinkAtReq)
    case flush(FlushReq)
    case connect(ConnectReq)
    case unlinkAt(UnlinkAtReq)
    case renameAt(RenameAtReq)
    case getdents64(Getdents64Req)
    case fGetXattr(FGetXattrReq)
    case fSetXattr(FSetXattrReq)
    case fListXattr(FListXattrReq)
    case fRemoveXattr(FRemoveXattrReq)
    case bindAt(BindAtReq)
    case listen(ListenReq)
    case accept(AcceptReq)
    case connectWithCreds(ConnectWithCredsReq)
    case renameAt2(RenameAt2Req)

    /// Decodes a whole request payload for a raw MID off the wire.
    /// Throws `UnknownMIDError` for MIDs that are not requests, `WireError`
    /// for malformed payloads (including trailing bytes).
    public static func decode(mid rawMID: UInt16, payload: [UInt8]) throws -> AnyRequest {
        guard let mid = MID(rawValue: rawMID) else { throw UnknownMIDError(mid: rawMID) }
        return try decode(mid: mid, payload: payload)
    }

    public static func decode(mid: MID, payload: [UInt8]) throws -> AnyRequest {
        try payload.withUnsafeBytes { try decode(mid: mid, payload: $0) }
    }

    public static func decode(mid: MID, payload: UnsafeRawBufferPointer) throws -> AnyRequest {
        var reader = WireReader(payload)
        let request = try read(mid: mid, from: &reader)
        try reader.finish()
        return request
    }

    private static func read(mid: MID, from r: inout WireReader) throws -> AnyRequest {
        switch mid {
        case .error: throw UnknownMIDError(mid: mid.rawValue)
        case .mount: return .mount(try MountReq(from: &r))
        case .channel: return .channel(try ChannelReq(from: &r))
        case .fStat: return .fStat(try StatReq(from: &r))
        case .setStat: return .setStat(try SetStatReq(from: &r))
        case .walk: return .walk(try WalkReq(from: &r))
        case .walkStat: return .walkStat(try WalkReq(from: &r))
        case .openAt: return .openAt(try OpenAtReq(from: &r))
        case .openCreateAt: return .openCreateAt(try OpenCreateAtReq(from: &r))
        case .close: return .close(try CloseReq(from: &r))
        case .fSync: return .fSync(try FsyncReq(from: &r))
        case .pWrite: return .pWrite(try PWriteReq(from: &r))
        case .pRead: return .pRead(try PReadReq(from: &r))
        case .mkdirAt: return .mkdirAt(try MkdirAtReq(from: &r))
        case .mknodAt: return .mknodAt(try MknodAtReq(from: &r))
        case .symlinkAt: return .symlinkAt(try SymlinkAtReq(from: &r))
        case .linkAt: return .linkAt(try LinkAtReq(from: &r))
        case .fStatFS: return .fStatFS(try FStatFSReq(from: &r))
        case .fAllocate: return .fAllocate(try FAllocateReq(from: &r))
        case .readLinkAt: return .readLinkAt(try ReadLinkAtReq(from: &r))
        case .flush: return .flush(try FlushReq(from: &r))
        case .connect: return .connect(try ConnectReq(from: &r))
        case .unlinkAt: return .unlinkAt(try UnlinkAtReq(from: &r))
        case .renameAt: return .renameAt(try RenameAtReq(from: &r))
        case .getdents64: return .getdents64(try Getdents64Req(from: &r))
        case .fGetXattr: return .fGetXattr(try FGetXattrReq(from: &r))
        case .fSetXattr: return .fSetXattr(try FSetXattrReq(from: &r))
        case .fListXattr: return .fListXattr(try FListXattrReq(from: &r))
        case .fRemoveXattr: return .fRemoveXattr(try FRemoveXattrReq(from: &r))
        case .bindAt: return .bindAt(try BindAtReq(from: &r))
        case .listen: return .listen(try ListenReq(from: &r))
        case .accept: return .accept(try AcceptReq(from: &r))
        case .connectWithCreds: return .connectWithCreds(try ConnectWithCredsReq(from: &r))
        case .renameAt2: return .renameAt2(try RenameAt2Req(from: &r))
        }
    }

    /// The MID this request travels under.
    public var mid: MID {
        switch self {
        case .mount: return .mount
        case .channel: return .channel
        case .fStat: return .fStat
        case .setStat: return .setStat
        case .walk: return .walk
        case .walkStat: return .walkStat
        case .openAt: return .openAt
        case .openCreateAt: return .openCreateAt
        case .close: return .close
        case .fSync: return .fSync
        case .pWrite: return .pWrite
        case .pRead: return .pRead
        case .mkdirAt: return .mkdirAt
        case .mknodAt: return .mknodAt
        case .symlinkAt: return .symlinkAt
        case .linkAt: return .linkAt
        case .fStatFS: return .fStatFS
        case .fAllocate: return .fAllocate
        case .readLinkAt: return .readLinkAt
        case .flush: return .flush
        case .connect: return .connect
        case .unlinkAt: return .unlinkAt
        case .renameAt: return .renameAt
        case .getdents64: return .getdents64
        case .fGetXattr: return .fGetXattr
        case .fSetXattr: return .fSetXattr
        case .fListXattr: return .fListXattr
        case .fRemoveXattr: return .fRemoveXattr
        case .bindAt: return .bindAt
        case .listen: return .listen
        case .accept: return .accept
        case .connectWithCreds: return .connectWithCreds
        case .renameAt2: return .renameAt2
        }
    }

    /// The typed request inside, as a WireMessage (for encoding by clients and tests).
    public var message: any WireMessage {
        switch self {
        case .mount(let m): return m
        case .channel(let m): return m
        case .fStat(let m): return m
        case .setStat(let m): return m
        case .walk(let m): return m
        case .walkStat(let m): return m
        case .openAt(let m): return m
        case .openCreateAt(let m): return m
        case .close(let m): return m
        case .fSync(let m): return m
        case .pWrite(let m): return m
        case .pRead(let m): return m
        case .mkdirAt(let m): return m
        case .mknodAt(let m): return m
        case .symlinkAt(let m): return m
        case .linkAt(let m): return m
        case .fStatFS(let m): return m
        case .fAllocate(let m): return m
        case .readLinkAt(let m): return m
        case .flush(let m): return m
        case .connect(let m): return m
        case .unlinkAt(let m): return m
        case .renameAt(let m): return m
        case .getdents64(let m): return m
        case .fGetXattr(let m): return m
        case .fSetXattr(let m): return m
        case .fListXattr(let m): return m
        case .fRemoveXattr(let m): return m
        case .bindAt(let m): return m
        case .listen(let m): return m
        case .accept(let m): return m
        case .connectWithCreds(let m): return m
        case .renameAt2(let m): return m
        }
    }

    /// Payload bytes for this request.
    public func encoded() -> [UInt8] { message.encoded() }
}
