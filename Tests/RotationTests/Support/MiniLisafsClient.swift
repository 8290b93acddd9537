import CLinux
import Foundation
import Lisafs
#if canImport(Glibc)
import Glibc
#endif

/// Just enough of a lisafs client (raw socket frames) to read and write files through a
/// `sealgofer serve --fd 3` child while rotation and rekeying are attempted beside it.
final class MiniLisafsClient {
    struct ServerError: Error { let errno: UInt32 }
    let fd: Int32

    init(connectedFD: Int32) { fd = connectedFD }
    deinit { Glibc.close(fd) }

    func call<R: WireMessage>(_ mid: MID, _ request: some WireMessage, _: R.Type) throws -> R {
        let payload = request.encoded()
        var frame = SocketMessageHeader(payloadLength: UInt32(payload.count), mid: mid.rawValue).encoded + payload
        var sent = 0
        while sent < frame.count {
            let n = frame.withUnsafeMutableBytes { clinux_send_with_fds(fd, $0.baseAddress! + sent, $0.count - sent, nil, 0, 0) }
            guard n > 0 else { throw ServerError(errno: UInt32(errno)) }
            sent += n
        }
        let header = try receive(SocketMessageHeader.size)
        let decoded = try header.withUnsafeBytes { try SocketMessageHeader(decoding: $0) }
        let body = try receive(Int(decoded.payloadLength))
        if decoded.mid == MID.error.rawValue { throw ServerError(errno: try ErrorResp.decode(body).errno) }
        return try R.decode(body)
    }

    private func receive(_ count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            var fds = [Int32](repeating: -1, count: 16)
            var nfds: Int32 = 0
            let n = buffer.withUnsafeMutableBytes { clinux_recv_with_fds(fd, $0.baseAddress! + got, count - got, &fds, 16, &nfds, 0) }
            for f in fds.prefix(Int(nfds)) { Glibc.close(f) }   // donated FDs: this client uses RPCs only
            guard n > 0 else { throw ServerError(errno: UInt32(ECONNRESET)) }
            got += n
        }
        return buffer
    }

    func mount() throws -> FDID { try call(.mount, MountReq(), MountResp.self).root.controlFD }

    /// Walks `path` below `dir`; returns the last control FD.
    func walk(_ dir: FDID, _ path: String) throws -> FDID {
        let parts = path.split(separator: "/").map(String.init)
        let r = try call(.walk, WalkReq(dirFD: dir, path: parts), WalkResp.self)
        guard r.inodes.count == parts.count, let last = r.inodes.last else { throw ServerError(errno: UInt32(ENOENT)) }
        return last.controlFD
    }

    func open(_ control: FDID, flags: Int32) throws -> FDID {
        try call(.openAt, OpenAtReq(fd: control, flags: UInt32(bitPattern: flags)), OpenAtResp.self).openFD
    }

    func create(_ dir: FDID, _ name: String) throws -> FDID {
        try call(.openCreateAt, OpenCreateAtReq(dirFD: dir, uid: NoUID, gid: NoGID, mode: 0o644,
                                                flags: UInt32(bitPattern: O_RDWR), name: Array(name.utf8)), OpenCreateAtResp.self).newFD
    }

    func pread(_ fd: FDID, count: UInt32, at offset: UInt64) throws -> [UInt8] {
        try call(.pRead, PReadReq(offset: offset, fd: fd, count: count), PReadResp.self).buf
    }

    func pwrite(_ fd: FDID, _ bytes: [UInt8], at offset: UInt64) throws {
        _ = try call(.pWrite, PWriteReq(offset: offset, fd: fd, buf: bytes), PWriteResp.self)
    }

    func fsync(_ fd: FDID) throws { _ = try call(.fSync, FsyncReq(fds: [fd]), FsyncResp.self) }
    func close(_ fd: FDID) throws { _ = try call(.close, CloseReq(fds: [fd]), CloseResp.self) }
}
