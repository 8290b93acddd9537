/// Messages with no payload (Go: types embedding EmptyMessage).
///
/// Go's EmptyMessage.CheckedUnmarshal accepts any payload; whole-payload
/// `decode` here still rejects trailing bytes (see WireMessage).
public protocol EmptyWireMessage: WireMessage, Equatable, Hashable, Sendable {
    init()
}

extension EmptyWireMessage {
    public init(from reader: inout WireReader) throws { self.init() }
    public func encode(to writer: inout WireWriter) {}
}

public struct MountReq: EmptyWireMessage { public init() {} }
public struct ChannelReq: EmptyWireMessage { public init() {} }
public struct CloseResp: EmptyWireMessage { public init() {} }
public struct FsyncResp: EmptyWireMessage { public init() {} }
public struct FAllocateResp: EmptyWireMessage { public init() {} }
public struct FlushResp: EmptyWireMessage { public init() {} }
public struct ConnectResp: EmptyWireMessage { public init() {} }
public struct UnlinkAtResp: EmptyWireMessage { public init() {} }
/// Also the response to RenameAt2Req.
public struct RenameAtResp: EmptyWireMessage { public init() {} }
public struct FSetXattrResp: EmptyWireMessage { public init() {} }
public struct FRemoveXattrResp: EmptyWireMessage { public init() {} }
public struct ListenResp: EmptyWireMessage { public init() {} }
