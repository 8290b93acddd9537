/// Close request: close several FDs at once. Layout: FdArray.
public struct CloseReq: Equatable, Hashable, Sendable, WireMessage {
    public var fds: [FDID]

    public init(fds: [FDID]) { self.fds = fds }
    public init(from reader: inout WireReader) throws { fds = try reader.fdArray() }
    public func encode(to writer: inout WireWriter) { writer.fdArray(fds) }
}

/// FSync request: fsync several FDs at once. Layout: FdArray.
public struct FsyncReq: Equatable, Hashable, Sendable, WireMessage {
    public var fds: [FDID]

    public init(fds: [FDID]) { self.fds = fds }
    public init(from reader: inout WireReader) throws { fds = try reader.fdArray() }
    public func encode(to writer: inout WireWriter) { writer.fdArray(fds) }
}
