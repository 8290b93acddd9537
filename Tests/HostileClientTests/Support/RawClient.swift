import Foundation
import Lisafs
#if canImport(Glibc)
import Glibc
#endif

/// What came back for one request.
enum Reply: CustomStringConvertible {
    /// A whole message; `fdCount` host FDs came with it (already closed
    /// unless the caller asked to keep them, then they are in `fds`).
    case message(mid: UInt16, payload: [UInt8], fdCount: Int, fds: [Int32])
    /// The server hung up before any byte of a reply.
    case closed
    /// The server hung up in the middle of a reply.
    case truncated(got: Int)
    /// Nothing arrived in time: the server hangs.
    case timedOut
    case ioError(Int32)

    var description: String {
        switch self {
        case .message(let mid, let payload, let fdCount, _):
            if mid == 0, payload.count == 4, let e = try? ErrorResp.decode(payload) {
                return "Error(errno \(e.errno): \(String(cString: strerror(Int32(bitPattern: e.errno)))))"
            }
            let name = MID(rawValue: mid).map { "\($0)" } ?? "MID \(mid)"
            return "\(name) response, \(payload.count) bytes, \(fdCount) FDs"
        case .closed: return "connection closed"
        case .truncated(let got): return "connection closed after \(got) bytes of a reply"
        case .timedOut: return "no reply (timed out)"
        case .ioError(let err): return "I/O error \(String(cString: strerror(err)))"
        }
    }

    var errno: Int32? {
        guard case .message(0, let payload, _, _) = self, let e = try? ErrorResp.decode(payload) else { return nil }
        return Int32(bitPattern: e.errno)
    }

    var isClosed: Bool {
        switch self {
        case .closed, .truncated: return true
        default: return false
        }
    }

    var mid: UInt16? {
        if case .message(let mid, _, _, _) = self { return mid }
        return nil
    }

    var payload: [UInt8]? {
        if case .message(_, let payload, _, _) = self { return payload }
        return nil
    }

    var fdCount: Int {
        if case .message(_, _, let n, _) = self { return n }
        return 0
    }

    var fds: [Int32] {
        if case .message(_, _, _, let fds) = self { return fds }
        return []
    }
}

/// The hostile sandbox's end of the lisafs socket: raw bytes out, framed
/// messages (and any SCM_RIGHTS FDs) in.
final class RawClient {
    private(set) var fd: Int32
    /// Total FDs the server has donated to us so far.
    private(set) var receivedFDs = 0

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    /// shutdown(SHUT_WR): the server sees EOF but we can still read.
    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    static func frame(mid: UInt16, payload: [UInt8]) -> [UInt8] {
        SocketMessageHeader(payloadLength: UInt32(truncatingIfNeeded: payload.count), mid: mid).encoded + payload
    }

    /// Writes all bytes (with `fds` attached to the first ones). Returns the
    /// errno if the server went away (EPIPE/ECONNRESET), nil on success.
    @discardableResult
    func sendRaw(_ bytes: [UInt8], attaching fds: [Int32] = []) -> Int32? {
        var sent = 0
        var pending = fds
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                Self.sendmsgWithFDs(fd, raw.baseAddress! + sent, raw.count - sent, pending)
            }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                return Glibc.errno
            }
            sent += n
            pending = []
        }
        return nil
    }

    func send(mid: UInt16, payload: [UInt8]) -> Int32? { sendRaw(Self.frame(mid: mid, payload: payload)) }

    func send<M: WireMessage>(_ mid: MID, _ message: M) -> Int32? { send(mid: mid.rawValue, payload: message.encoded()) }

    /// Sends one request and reads one reply.
    func call(mid: UInt16, payload: [UInt8], keepFDs: Bool = false, timeout: TimeInterval = 10) -> Reply {
        if let err = send(mid: mid, payload: payload) {
            // The server may already have closed; a reply it sent still counts.
            let reply = receive(timeout: 1, keepFDs: keepFDs)
            if case .message = reply { return reply }
            return (err == EPIPE || err == ECONNRESET) ? .closed : .ioError(err)
        }
        return receive(timeout: timeout, keepFDs: keepFDs)
    }

    func call<M: WireMessage>(_ mid: MID, _ message: M, keepFDs: Bool = false) -> Reply {
        call(mid: mid.rawValue, payload: message.encoded(), keepFDs: keepFDs)
    }

    /// Reads one framed message. Donated FDs are closed unless `keepFDs`.
    func receive(timeout: TimeInterval = 10, keepFDs: Bool = false) -> Reply {
        let deadline = Date().addingTimeInterval(timeout)
        var fds: [Int32] = []
        defer { if !keepFDs { fds.forEach { _ = Glibc.close($0) } } }
        var header = [UInt8](repeating: 0, count: SocketMessageHeader.size)
        switch readFully(&header, deadline: deadline, fds: &fds) {
        case .failed(let reply): return reply
        case .done(0): return .closed
        case .done(let n) where n < header.count: return .truncated(got: n)
        case .done: break
        }
        let decoded = header.withUnsafeBytes { try? SocketMessageHeader(decoding: $0) }
        guard let decoded else { return .ioError(EPROTO) }
        // A reply larger than any sane message is itself a server bug; refuse
        // to allocate for it.
        guard decoded.payloadLength <= 16 << 20 else { return .ioError(EMSGSIZE) }
        var payload = [UInt8](repeating: 0, count: Int(decoded.payloadLength))
        if !payload.isEmpty {
            switch readFully(&payload, deadline: deadline, fds: &fds) {
            case .failed(let reply): return reply
            case .done(let n) where n < payload.count: return .truncated(got: header.count + n)
            case .done: break
            }
        }
        receivedFDs += fds.count
        return .message(mid: decoded.mid, payload: payload, fdCount: fds.count, fds: keepFDs ? fds : [])
    }

    /// True if the server has hung up (EOF readable) within `timeout`.
    func waitForHangUp(timeout: TimeInterval) -> Bool {
        let reply = receive(timeout: timeout)
        return reply.isClosed
    }

    private enum ReadResult {
        case done(Int)
        case failed(Reply)
    }

    private func readFully(_ buffer: inout [UInt8], deadline: Date, fds: inout [Int32]) -> ReadResult {
        var got = 0
        while got < buffer.count {
            let remainingMs = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, remainingMs)
            if ready < 0 {
                if Glibc.errno == EINTR { continue }
                return .failed(.ioError(Glibc.errno))
            }
            if ready == 0 { return .failed(.timedOut) }
            let n = buffer.withUnsafeMutableBytes { raw in
                Self.recvmsgWithFDs(fd, raw.baseAddress! + got, raw.count - got, &fds)
            }
            if n < 0 {
                let err = Glibc.errno
                if err == EINTR || err == EAGAIN { continue }
                if err == ECONNRESET { return .done(got) }
                return .failed(.ioError(err))
            }
            if n == 0 { return .done(got) }
            got += n
        }
        return .done(got)
    }

    // MARK: SCM_RIGHTS by hand (the CMSG_* macros are not visible to Swift)

    /// struct cmsghdr on LP64 Linux: cmsg_len (size_t), cmsg_level, cmsg_type (int).
    private static let cmsgHeaderSize = 16

    private static func align(_ n: Int) -> Int { (n + 7) & ~7 }

    static func sendmsgWithFDs(_ socket: Int32, _ base: UnsafeRawPointer, _ count: Int, _ fds: [Int32]) -> Int {
        var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: count)
        var message = msghdr()
        let controlSize = fds.isEmpty ? 0 : align(cmsgHeaderSize + 4 * fds.count)
        var control = [UInt8](repeating: 0, count: max(controlSize, 1))
        return withUnsafeMutablePointer(to: &iov) { iovPointer in
            control.withUnsafeMutableBytes { controlRaw in
                message.msg_iov = iovPointer
                message.msg_iovlen = 1
                if !fds.isEmpty {
                    controlRaw.storeBytes(of: cmsgHeaderSize + 4 * fds.count, toByteOffset: 0, as: Int.self)
                    controlRaw.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                    controlRaw.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
                    for (i, fd) in fds.enumerated() {
                        controlRaw.storeBytes(of: fd, toByteOffset: cmsgHeaderSize + 4 * i, as: Int32.self)
                    }
                    message.msg_control = controlRaw.baseAddress
                    message.msg_controllen = controlSize
                }
                return Glibc.sendmsg(socket, &message, Int32(MSG_NOSIGNAL))
            }
        }
    }

    static func recvmsgWithFDs(_ socket: Int32, _ base: UnsafeMutableRawPointer, _ count: Int, _ fds: inout [Int32],
                               flags: Int32 = 0) -> Int {
        var iov = iovec(iov_base: base, iov_len: count)
        var message = msghdr()
        var control = [UInt8](repeating: 0, count: 4096)
        var received: [Int32] = []
        let n = withUnsafeMutablePointer(to: &iov) { iovPointer in
            control.withUnsafeMutableBytes { controlRaw -> Int in
                message.msg_iov = iovPointer
                message.msg_iovlen = 1
                message.msg_control = controlRaw.baseAddress
                message.msg_controllen = controlRaw.count
                let n = Glibc.recvmsg(socket, &message, Int32(MSG_CMSG_CLOEXEC) | flags)
                guard n >= 0 else { return n }
                var offset = 0
                let length = Int(message.msg_controllen)
                while offset + cmsgHeaderSize <= length {
                    let cmsgLen = controlRaw.load(fromByteOffset: offset, as: Int.self)
                    let level = controlRaw.load(fromByteOffset: offset + 8, as: Int32.self)
                    let type = controlRaw.load(fromByteOffset: offset + 12, as: Int32.self)
                    guard cmsgLen >= cmsgHeaderSize, offset + cmsgLen <= length else { break }
                    if level == SOL_SOCKET && type == Int32(SCM_RIGHTS) {
                        let count = (cmsgLen - cmsgHeaderSize) / 4
                        for i in 0..<count {
                            received.append(controlRaw.loadUnaligned(
                                fromByteOffset: offset + cmsgHeaderSize + 4 * i, as: Int32.self))
                        }
                    }
                    offset += align(cmsgLen)
                }
                return n
            }
        }
        fds.append(contentsOf: received)
        return n
    }
}
