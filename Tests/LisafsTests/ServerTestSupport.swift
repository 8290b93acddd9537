import CLinux
import Foundation
import XCTest
@testable import HostProvider
@testable import Lisafs

/// A lisafs client that speaks raw frames on the main socket of an in-process
/// server (header + payload encoded with the wire structs), for end-to-end tests.
final class RawLisafsClient {
    struct Reply {
        var mid: UInt16
        var payload: [UInt8]
        var fds: [Int32]
    }

    struct ServerError: Error, Equatable { let errno: Errno }

    let fd: Int32
    private let thread: ServingThread
    private var closed = false

    /// Starts `server` on one end of a stream socketpair, served on its own thread.
    init<P: Provider>(server: Server<P>) throws {
        var pair: [Int32] = [-1, -1]
        guard clinux_stream_pair(&pair) == 0 else { throw Errno.current }
        fd = pair[0]
        let serverFD = pair[1]
        thread = try ServingThread.start { server.serve(connectionFD: serverFD) }
    }

    deinit { shutdownAndWait() }

    /// Closes the client end and waits until the server has torn the connection down.
    func shutdownAndWait() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
        thread.join()
    }

    func send(mid: UInt16, payload: [UInt8]) throws {
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

    func receive() throws -> Reply {
        var fds: [Int32] = []
        let header = try readExactly(SocketMessageHeader.size, collecting: &fds)
        let decoded = try header.withUnsafeBytes { try SocketMessageHeader(decoding: $0) }
        let payload = try readExactly(Int(decoded.payloadLength), collecting: &fds)
        return Reply(mid: decoded.mid, payload: payload, fds: fds)
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

    func call(_ mid: MID, _ request: some WireMessage) throws -> Reply {
        try send(mid: mid.rawValue, payload: request.encoded())
        return try receive()
    }

    /// Sends a request and decodes the expected response type; an Error
    /// response becomes `ServerError`. Donated FDs are returned, owned by the caller.
    func call<R: WireMessage>(_ mid: MID, _ request: some WireMessage, expecting: R.Type,
                              fds: UnsafeMutablePointer<[Int32]>? = nil) throws -> R {
        let reply = try call(mid, request)
        if let fds { fds.pointee = reply.fds } else { reply.fds.forEach { _ = Glibc.close($0) } }
        if reply.mid == MID.error.rawValue {
            throw ServerError(errno: Errno(Int32(bitPattern: try ErrorResp.decode(reply.payload).errno)))
        }
        XCTAssertEqual(reply.mid, mid.rawValue)
        return try R.decode(reply.payload)
    }

    /// The errno of a request expected to fail.
    func failure(_ mid: MID, _ request: some WireMessage) throws -> Errno? {
        let reply = try call(mid, request)
        reply.fds.forEach { _ = Glibc.close($0) }
        guard reply.mid == MID.error.rawValue else { return nil }
        return Errno(Int32(bitPattern: try ErrorResp.decode(reply.payload).errno))
    }

    func mount() throws -> MountResp { try call(.mount, MountReq(), expecting: MountResp.self) }

    func walk(_ dir: FDID, _ path: [String]) throws -> WalkResp {
        try call(.walk, WalkReq(dirFD: dir, path: path), expecting: WalkResp.self)
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryTree {
    let path: String

    init() throws {
        var template = Array("/tmp/sealgofer-server-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw Errno.current }
        path = String(cString: made)
    }

    func url(_ relative: String) -> URL { URL(fileURLWithPath: path).appendingPathComponent(relative) }

    func write(_ relative: String, _ contents: String) throws {
        try Data(contents.utf8).write(to: url(relative))
    }

    func read(_ relative: String) throws -> String {
        String(decoding: try Data(contentsOf: url(relative)), as: UTF8.self)
    }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(at: url(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: url(relative).path, withDestinationPath: target)
    }

    func exists(_ relative: String) -> Bool {
        var st = stat()
        return lstat(url(relative).path, &st) == 0
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Number of FDs this process has open (for leak checks).
func openFDCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}
