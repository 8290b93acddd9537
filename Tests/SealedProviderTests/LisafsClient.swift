import CLinux
import Foundation
import Lisafs
import XCTest

/// A lisafs client speaking raw frames (wire structs) on one end of a socketpair,
/// the other end served by `Server.serve(connectionFD:)` on its own thread — or
/// on a socket connected to a `sealgofer serve --fd` child process.
final class LisafsClient {
    struct ServerError: Error, Equatable, CustomStringConvertible {
        let errno: Errno
        var description: String { "server error \(errno)" }
    }

    let fd: Int32
    private let finished: DispatchSemaphore?
    private var closed = false

    /// Serves `server` in-process.
    init<P: Provider>(server: Server<P>) throws {
        var pair: [Int32] = [-1, -1]
        guard clinux_stream_pair(&pair) == 0 else { throw Errno.current }
        fd = pair[0]
        let serverFD = pair[1]
        let done = DispatchSemaphore(value: 0)
        finished = done
        let thread = Thread {
            server.serve(connectionFD: serverFD)
            done.signal()
        }
        thread.start()
    }

    /// Speaks on an already connected socket (e.g. to a child process).
    init(connectedFD: Int32) {
        fd = connectedFD
        finished = nil
    }

    deinit { shutdown() }

    /// Closes the client end and waits (in-process) until the server has torn down.
    func shutdown() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
        finished?.wait()
    }

    // MARK: Framing

    private func send(mid: UInt16, payload: [UInt8]) throws {
        var frame = SocketMessageHeader(payloadLength: UInt32(payload.count), mid: mid).encoded
        frame += payload
        try frame.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = clinux_send_with_fds(fd, raw.baseAddress! + sent, raw.count - sent, nil, 0, 0)
                guard n > 0 else { throw Errno.current }
                sent += n
            }
        }
    }

    private func receive() throws -> (mid: UInt16, payload: [UInt8], fds: [Int32]) {
        var fds: [Int32] = []
        let header = try readExactly(SocketMessageHeader.size, collecting: &fds)
        let decoded = try header.withUnsafeBytes { try SocketMessageHeader(decoding: $0) }
        let payload = try readExactly(Int(decoded.payloadLength), collecting: &fds)
        return (decoded.mid, payload, fds)
    }

    private func readExactly(_ count: Int, collecting fds: inout [Int32]) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            var received = [Int32](repeating: -1, count: 16)
            var nfds: Int32 = 0
            let n = buffer.withUnsafeMutableBytes { raw in
                clinux_recv_with_fds(fd, raw.baseAddress! + got, count - got, &received, 16, &nfds, 0)
            }
            guard n > 0 else { throw n == 0 ? Errno.ECONNRESET : Errno.current }
            fds += received.prefix(Int(nfds))
            got += n
        }
        return buffer
    }

    /// One RPC; an Error response throws `ServerError`. Donated FDs are returned
    /// through `fds` (owned by the caller) or closed.
    func call<R: WireMessage>(_ mid: MID, _ request: some WireMessage, _: R.Type,
                              fds: UnsafeMutablePointer<[Int32]>? = nil) throws -> R {
        try send(mid: mid.rawValue, payload: request.encoded())
        let reply = try receive()
        if let fds { fds.pointee = reply.fds } else { reply.fds.forEach { _ = Glibc.close($0) } }
        if reply.mid == MID.error.rawValue {
            throw ServerError(errno: Errno(Int32(bitPattern: try ErrorResp.decode(reply.payload).errno)))
        }
        guard reply.mid == mid.rawValue else { throw Errno.EPROTONOSUPPORT }
        return try R.decode(reply.payload)
    }

    /// The errno of a request expected to fail (nil if it succeeded).
    func errno(_ body: () throws -> Any) -> Errno? {
        do { _ = try body(); return nil } catch let e as ServerError { return e.errno } catch { return Errno.EIO }
    }

    // MARK: Operations

    func mount() throws -> MountResp { try call(.mount, MountReq(), MountResp.self) }

    func walk(_ dir: FDID, _ path: [String]) throws -> WalkResp {
        try call(.walk, WalkReq(dirFD: dir, path: path), WalkResp.self)
    }

    /// The control FD of `path` (every component must exist).
    func lookup(_ dir: FDID, _ path: String) throws -> Inode {
        let parts = path.split(separator: "/").map(String.init)
        let r = try walk(dir, parts)
        guard r.status == .success, r.inodes.count == parts.count else { throw ServerError(errno: .ENOENT) }
        for extra in r.inodes.dropLast() { try close([extra.controlFD]) }
        return r.inodes.last!
    }

    func open(_ control: FDID, flags: Int32) throws -> (fd: FDID, donated: Int32?) {
        var fds: [Int32] = []
        let r = try call(.openAt, OpenAtReq(fd: control, flags: UInt32(bitPattern: flags)), OpenAtResp.self, fds: &fds)
        return (r.openFD, fds.first)
    }

    func create(_ dir: FDID, _ name: String, mode: UInt16 = 0o644, flags: Int32 = O_RDWR) throws -> (inode: Inode, fd: FDID, donated: Int32?) {
        var fds: [Int32] = []
        let r = try call(.openCreateAt, OpenCreateAtReq(dirFD: dir, uid: NoUID, gid: NoGID, mode: mode,
                                                        flags: UInt32(bitPattern: flags), name: Array(name.utf8)),
                         OpenCreateAtResp.self, fds: &fds)
        return (r.child, r.newFD, fds.first)
    }

    func pread(_ fd: FDID, count: UInt32, at offset: UInt64) throws -> [UInt8] {
        try call(.pRead, PReadReq(offset: offset, fd: fd, count: count), PReadResp.self).buf
    }

    @discardableResult
    func pwrite(_ fd: FDID, _ bytes: [UInt8], at offset: UInt64) throws -> UInt64 {
        try call(.pWrite, PWriteReq(offset: offset, fd: fd, buf: bytes), PWriteResp.self).count
    }

    func flush(_ fd: FDID) throws { _ = try call(.flush, FlushReq(fd: fd), FlushResp.self) }
    func fsync(_ fds: [FDID]) throws { _ = try call(.fSync, FsyncReq(fds: fds), FsyncResp.self) }
    func close(_ fds: [FDID]) throws { _ = try call(.close, CloseReq(fds: fds), CloseResp.self) }
    func fstat(_ fd: FDID) throws -> Statx { try call(.fStat, StatReq(fd: fd), Statx.self) }

    func setSize(_ control: FDID, _ size: UInt64) throws {
        let r = try call(.setStat, SetStatReq(fd: control, mask: StatxMask.size, size: size), SetStatResp.self)
        if r.failureMask != 0 { throw ServerError(errno: Errno(Int32(bitPattern: r.failureErrNo))) }
    }

    func setStat(_ request: SetStatReq) throws -> SetStatResp { try call(.setStat, request, SetStatResp.self) }

    func mkdir(_ dir: FDID, _ name: String, mode: UInt16 = 0o755) throws -> Inode {
        try call(.mkdirAt, MkdirAtReq(dirFD: dir, uid: NoUID, gid: NoGID, mode: mode, name: Array(name.utf8)), MkdirAtResp.self).childDir
    }

    func symlink(_ dir: FDID, _ name: String, target: String) throws -> Inode {
        try call(.symlinkAt, SymlinkAtReq(dirFD: dir, uid: NoUID, gid: NoGID, name: Array(name.utf8), target: Array(target.utf8)),
                 SymlinkAtResp.self).symlink
    }

    func link(_ dir: FDID, _ name: String, target: FDID) throws -> Inode {
        try call(.linkAt, LinkAtReq(dirFD: dir, target: target, name: Array(name.utf8)), LinkAtResp.self).link
    }

    func unlink(_ dir: FDID, _ name: String, flags: UInt32 = 0) throws {
        _ = try call(.unlinkAt, UnlinkAtReq(dirFD: dir, flags: flags, name: Array(name.utf8)), UnlinkAtResp.self)
    }

    func rename(_ oldDir: FDID, _ oldName: String, _ newDir: FDID, _ newName: String) throws {
        _ = try call(.renameAt, RenameAtReq(oldDir: oldDir, newDir: newDir, oldName: Array(oldName.utf8), newName: Array(newName.utf8)),
                     RenameAtResp.self)
    }

    /// All names in a directory (opens, lists, closes).
    func list(_ control: FDID) throws -> [String] {
        let (dirFD, _) = try open(control, flags: O_RDONLY)
        defer { try? close([dirFD]) }
        var names: [String] = []
        var count: Int32 = -65536
        while true {
            let r = try call(.getdents64, Getdents64Req(dirFD: dirFD, count: count), Getdents64Resp.self)
            if r.dirents.isEmpty { break }
            names += r.dirents.map { String(decoding: $0.name, as: UTF8.self) }
            count = 65536
        }
        return names.filter { $0 != "." && $0 != ".." }.sorted()
    }
}
