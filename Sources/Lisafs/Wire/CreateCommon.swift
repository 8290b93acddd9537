/// The 24-byte prefix shared by OpenCreateAt, MkdirAt, MknodAt and BindAt
/// requests (Go: unexported createCommon, embedded so its fields are promoted).
/// Layout: dirFD u64 | uid u32 | gid u32 | mode u16 | 6 bytes padding.
/// The message structs flatten these fields, as Go's promotion does.
struct CreateCommon {
    var dirFD: FDID
    var uid: UID
    var gid: GID
    var mode: FileMode

    static let encodedSize = 24

    init(dirFD: FDID, uid: UID, gid: GID, mode: FileMode) {
        self.dirFD = dirFD; self.uid = uid; self.gid = gid; self.mode = mode
    }

    init(from reader: inout WireReader) throws {
        dirFD = try reader.u64()
        uid = try reader.u32()
        gid = try reader.u32()
        mode = try reader.u16()
        try reader.skip(6) // padding; Go ignores its value
    }

    func encode(to writer: inout WireWriter) {
        writer.u64(dirFD)
        writer.u32(uid)
        writer.u32(gid)
        writer.u16(mode)
        writer.zeros(6)
    }
}
