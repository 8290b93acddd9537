import Atomics
import CLinux
import Glibc

/// The server end of lisafs' main Unix stream socket: each message is a
/// `SocketMessageHeader` followed by its payload; response FDs travel as
/// SCM_RIGHTS attached to the first bytes of the response, which is where
/// gVisor's client (`readFrom` with `EnableFDs`) picks them up.
///
/// Works whether the socket FD is blocking or not (EAGAIN waits in poll).
/// One serving thread calls `receive`/`send`; `shutdown` may come from any thread.
public final class SocketCommunicator: ServerCommunicator, @unchecked Sendable {
    /// Payloads longer than this are refused in both directions.
    public let maxMessageSize: UInt32
    /// The connected socket; owned, closed when the communicator is freed.
    public let fd: Int32
    private let isShutDown = ManagedAtomic<Bool>(false)

    /// Takes ownership of `fd`, a connected AF_UNIX SOCK_STREAM socket.
    public init(fd: Int32, maxMessageSize: UInt32) {
        self.fd = fd
        self.maxMessageSize = maxMessageSize
    }

    deinit {
        // Closing here, not in shutdown(), means the FD number cannot be
        // reused while the serving thread might still be inside a syscall on it.
        _ = Glibc.close(fd)
    }

    public func receive() throws -> InboundRequest? {
        if isShutDown.load(ordering: .acquiring) { return nil }
        var headerBytes = [UInt8](repeating: 0, count: SocketMessageHeader.size)
        let got = try headerBytes.withUnsafeMutableBytes { try readFully(into: $0) }
        if got == 0 { return nil }  // orderly hang-up between messages
        guard got == SocketMessageHeader.size else {
            throw TransportError.truncatedHeader(received: got)
        }
        let header = try headerBytes.withUnsafeBytes { try SocketMessageHeader(decoding: $0) }
        // Checked before allocating: the length is peer-controlled.
        guard header.payloadLength <= maxMessageSize else {
            throw TransportError.messageTooLarge(length: UInt64(header.payloadLength), max: maxMessageSize)
        }
        let expected = Int(header.payloadLength)
        var payload = [UInt8](repeating: 0, count: expected)
        if expected > 0 {
            let read = try payload.withUnsafeMutableBytes { try readFully(into: $0) }
            guard read == expected else {
                throw TransportError.truncatedPayload(expected: expected, received: read)
            }
        }
        return InboundRequest(mid: header.mid, payload: payload)
    }

    public func send(mid: UInt16, payload: [UInt8], fds: [Int32]) throws {
        defer { DonatedFDs.closeAll(fds) }
        guard fds.count <= Int(CLINUX_MAX_FDS_PER_MESSAGE) else {
            throw TransportError.tooManyFDs(fds.count)
        }
        guard payload.count <= Int(maxMessageSize) else {
            throw TransportError.messageTooLarge(length: UInt64(payload.count), max: maxMessageSize)
        }
        DonatedFDs.makeNonBlocking(fds)
        var message = SocketMessageHeader(payloadLength: UInt32(payload.count), mid: mid).encoded
        message.append(contentsOf: payload)
        try message.withUnsafeBytes { try writeFully($0, attaching: fds) }
    }

    public func shutdown() {
        if isShutDown.exchange(true, ordering: .acquiringAndReleasing) { return }
        // Makes a blocked recv return 0 (and the peer see EOF).
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads until `buffer` is full or the peer hangs up; returns the bytes read.
    private func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var got = 0
        while got < buffer.count {
            let n = Glibc.recv(fd, base + got, buffer.count - got, 0)
            if n > 0 {
                got += n
                continue
            }
            if n == 0 { return got }
            let err = errno
            switch err {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                try waitFor(events: Int16(POLLIN))
            case ECONNRESET:
                return got  // the peer vanished: same as a hang-up
            default:
                throw TransportError.systemCall("recv", errno: err)
            }
        }
        return got
    }

    /// Writes all of `bytes`; the FDs go with the first sendmsg that moves
    /// data, and never again (as gVisor's writeTo does).
    private func writeFully(_ bytes: UnsafeRawBufferPointer, attaching fds: [Int32]) throws {
        guard let base = bytes.baseAddress else { return }
        var sent = 0
        var pendingFDs = fds
        while sent < bytes.count {
            let n = pendingFDs.withUnsafeBufferPointer { fdBuf in
                clinux_send_with_fds(fd, base + sent, bytes.count - sent,
                                     fdBuf.baseAddress, Int32(fdBuf.count), 0)
            }
            if n >= 0 {
                sent += n
                pendingFDs = []
                continue
            }
            let err = errno
            switch err {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                try waitFor(events: Int16(POLLOUT))
            default:
                throw TransportError.systemCall("sendmsg", errno: err)
            }
        }
    }

    private func waitFor(events: Int16) throws {
        while true {
            let r = clinux_poll_one(fd, events, -1)
            if r >= 0 { return }
            let err = errno
            if err != EINTR { throw TransportError.systemCall("poll", errno: err) }
        }
    }
}
