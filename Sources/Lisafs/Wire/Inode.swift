/// A file on the server as the client learns about it: its control FD and stat.
/// Fixed 152 bytes (Go: lisafs.Inode).
public struct Inode: Equatable, Hashable, Sendable, WireMessage {
    public var controlFD: FDID
    public var stat: Statx

    public static let encodedSize = 8 + Statx.encodedSize

    public init(controlFD: FDID = 0, stat: Statx = .init()) {
        self.controlFD = controlFD
        self.stat = stat
    }

    public init(from reader: inout WireReader) throws {
        controlFD = try reader.u64()
        stat = try Statx(from: &reader)
    }

    public func encode(to writer: inout WireWriter) {
        writer.u64(controlFD)
        stat.encode(to: &writer)
    }
}
