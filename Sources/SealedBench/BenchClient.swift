import CLinux
import Foundation
import Lisafs

/// A minimal lisafs client on one end of a socketpair whose other end an
/// in-process `Server` serves (the benchmark's stand-in for the sentry).
final class BenchClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let fd: Int32
    private let done = DispatchSemaphore(value: 0)

    init<P: Provider>(server: Server<P>) throws {
        var pair: [Int32] = [-1, -1]
        guard clinux_stream_pair(&pair) == 0 else { throw Errno.current }
        fd = pair[0]
        let serverFD = pair[1]
        let done = self.done
        Thread { server.serve(connectionFD: serverFD); done.signal() }.start()
    }

    func shutdown() {
        Glibc.close(fd)
        done.wait()
    }

    private func readExactly(_ count: Int, fds: inout [Int32]) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            var received = [Int32](repeating: -1, count: 8)
            var n: Int32 = 0
            let r = buffer.withUnsafeMutableBytes { clinux_recv_with_fds(fd, $0.baseAddress! + got, count - got, &received, 8, &n, 0) }
            guard r > 0 else { throw Errno.ECONNRESET }
            fds += received.prefix(Int(n))
            got += r
        }
        return buffer
    }

    /// One RPC; donated FDs go to `fds` (or are closed).
    func call<R: WireMessage>(_ mid: MID, _ request: some WireMessage, _: R.Type, fds: UnsafeMutablePointer<[Int32]>? = nil) throws -> R {
        let payload = request.encoded()
        let frame = SocketMessageHeader(payloadLength: UInt32(payload.count), mid: mid.rawValue).encoded + payload
        try frame.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = clinux_send_with_fds(fd, raw.baseAddress! + sent, raw.count - sent, nil, 0, 0)
                guard n > 0 else { throw Errno.current }
                sent += n
            }
        }
        var received: [Int32] = []
        let header = try readExactly(SocketMessageHeader.size, fds: &received)
        let decoded = try header.withUnsafeBytes { try SocketMessageHeader(decoding: $0) }
        let body = try readExactly(Int(decoded.payloadLength), fds: &received)
        if let fds { fds.pointee = received } else { received.forEach { Glibc.close($0) } }
        if decoded.mid == MID.error.rawValue {
            throw Failure(description: "\(mid): errno \(try ErrorResp.decode(body).errno)")
        }
        return try R.decode(body)
    }

    func mount() throws -> FDID { try call(.mount, MountReq(), MountResp.self).root.controlFD }

    func walk(_ dir: FDID, _ name: String) throws -> FDID {
        let r = try call(.walk, WalkReq(dirFD: dir, path: [name]), WalkResp.self)
        guard r.status == .success, let inode = r.inodes.first else { throw Failure(description: "walk \(name): \(r.status)") }
        return inode.controlFD
    }

    func close(_ fds: [FDID]) throws { _ = try call(.close, CloseReq(fds: fds), CloseResp.self) }
    func fstat(_ fd: FDID) throws -> Statx { try call(.fStat, StatReq(fd: fd), Statx.self) }
    func flush(_ fd: FDID) throws { _ = try call(.flush, FlushReq(fd: fd), FlushResp.self) }

    func open(_ fd: FDID, flags: Int32) throws -> (FDID, Int32?) {
        var fds: [Int32] = []
        let r = try call(.openAt, OpenAtReq(fd: fd, flags: UInt32(bitPattern: flags)), OpenAtResp.self, fds: &fds)
        return (r.openFD, fds.first)
    }

    func create(_ dir: FDID, _ name: String) throws -> (control: FDID, open: FDID, donated: Int32?) {
        var fds: [Int32] = []
        let r = try call(.openCreateAt, OpenCreateAtReq(dirFD: dir, uid: NoUID, gid: NoGID, mode: 0o644, flags: UInt32(O_RDWR),
                                                        name: Array(name.utf8)), OpenCreateAtResp.self, fds: &fds)
        return (r.child.controlFD, r.newFD, fds.first)
    }

    func pread(_ fd: FDID, count: UInt32, at offset: UInt64 = 0) throws -> [UInt8] {
        try call(.pRead, PReadReq(offset: offset, fd: fd, count: count), PReadResp.self).buf
    }

    func pwrite(_ fd: FDID, _ bytes: [UInt8]) throws {
        _ = try call(.pWrite, PWriteReq(offset: 0, fd: fd, buf: bytes), PWriteResp.self)
    }

    func unlink(_ dir: FDID, _ name: String) throws {
        _ = try call(.unlinkAt, UnlinkAtReq(dirFD: dir, flags: 0, name: Array(name.utf8)), UnlinkAtResp.self)
    }

    func mkdir(_ dir: FDID, _ name: String) throws -> FDID {
        try call(.mkdirAt, MkdirAtReq(dirFD: dir, uid: NoUID, gid: NoGID, mode: 0o755, name: Array(name.utf8)), MkdirAtResp.self)
            .childDir.controlFD
    }

    /// Lists a directory completely; returns the entry count.
    func listCount(_ dir: FDID) throws -> Int {
        let (fd, _) = try open(dir, flags: O_RDONLY)
        defer { try? close([fd]) }
        var total = 0
        var count: Int32 = -65536
        while true {
            let r = try call(.getdents64, Getdents64Req(dirFD: fd, count: count), Getdents64Resp.self)
            if r.dirents.isEmpty { return total }
            total += r.dirents.count
            count = 65536
        }
    }
}
