import Atomics
import CLinux
import Glibc

/// A lisafs channel, server side: a flipcall packet window for messages and
/// an fdchannel socket for donated FDs (gVisor pkg/lisafs channel.go).
///
/// Each datagram starts with a 4-byte channel header, little-endian:
/// MID u16, number of FDs donated on the fdchannel u8, one byte padding;
/// the payload follows. Requests never carry FDs.
///
/// Create one per Channel RPC with `create(maxMessageSize:)`, give its
/// `donatedFDs` and `dataOffset`/`dataLength` to the client in ChannelResp,
/// and serve it on its own thread. `receive()` returns nil once the client
/// shuts the channel down, its process dies, or `shutdown()` is called.
public final class ChannelCommunicator: ServerCommunicator, @unchecked Sendable {
    /// What the Channel RPC handler needs to answer the client.
    public struct Setup {
        public let communicator: ChannelCommunicator
        /// Donate with the ChannelResp, in this order: the packet window's
        /// memfd, then the client's fdchannel socket. The caller owns them
        /// (SocketCommunicator.send closes them; close them on any failure).
        public let donatedFDs: [Int32]
        /// ChannelResp.dataOffset: where the window starts in the memfd.
        public let dataOffset: Int64
        /// ChannelResp.dataLength: the window's length in bytes.
        public let dataLength: UInt64
    }

    static let headerBytes = 4

    public let maxMessageSize: UInt32
    private let endpoint: FlipcallServerEndpoint
    private let fdChannel: FDChannelSender
    // Serving-thread state only.
    private var handshakeDone = false
    private var awaitingResponse = false

    /// Builds a channel whose payloads may be up to `maxMessageSize` bytes.
    /// `peerCheckIntervalMilliseconds` bounds how long a serving thread takes
    /// to notice that the client died while holding the window.
    public static func create(maxMessageSize: UInt32, peerCheckIntervalMilliseconds: Int = 500) throws -> Setup {
        guard peerCheckIntervalMilliseconds > 0 else {
            throw TransportError.invalidConfiguration("peer check interval must be positive")
        }
        let (window, memfd) = try PacketWindow.create(
            dataCapacity: UInt64(headerBytes) + UInt64(maxMessageSize))
        var pair: [Int32] = [-1, -1]
        guard clinux_seqpacket_pair(&pair) == 0 else {
            let err = errno
            _ = Glibc.close(memfd)
            throw TransportError.systemCall("socketpair", errno: err)
        }
        let fdChannel = FDChannelSender(fd: pair[0])
        let endpoint = FlipcallServerEndpoint(
            window: window,
            peerCheckIntervalNanos: Int64(peerCheckIntervalMilliseconds) * 1_000_000,
            peerIsAlive: { [unowned fdChannel] in fdChannel.peerIsAlive })
        let communicator = ChannelCommunicator(
            maxMessageSize: maxMessageSize, endpoint: endpoint, fdChannel: fdChannel)
        return Setup(communicator: communicator, donatedFDs: [memfd, pair[1]],
                     dataOffset: 0, dataLength: UInt64(window.length))
    }

    private init(maxMessageSize: UInt32, endpoint: FlipcallServerEndpoint, fdChannel: FDChannelSender) {
        self.maxMessageSize = maxMessageSize
        self.endpoint = endpoint
        self.fdChannel = fdChannel
    }

    public func receive() throws -> InboundRequest? {
        guard !awaitingResponse else {
            throw TransportError.protocolViolation("receive() called before the previous request was answered")
        }
        let dataLength: UInt32
        do {
            dataLength = handshakeDone ? try endpoint.receiveNext() : try endpoint.receiveFirst()
        } catch TransportError.shutDown {
            return nil
        }
        handshakeDone = true
        guard dataLength >= UInt32(Self.headerBytes) else {
            throw TransportError.protocolViolation("datagram of \(dataLength) bytes is shorter than the channel header")
        }
        let payloadLength = dataLength - UInt32(Self.headerBytes)
        guard payloadLength <= maxMessageSize else {
            throw TransportError.messageTooLarge(length: UInt64(payloadLength), max: maxMessageSize)
        }
        // Copy once: the client can rewrite the shared window at any moment.
        let data = UnsafeRawPointer(endpoint.data)
        let mid = UInt16(littleEndian: data.loadUnaligned(as: UInt16.self))
        let payload = [UInt8](UnsafeRawBufferPointer(start: data + Self.headerBytes, count: Int(payloadLength)))
        awaitingResponse = true
        return InboundRequest(mid: mid, payload: payload)
    }

    public func send(mid: UInt16, payload: [UInt8], fds: [Int32]) throws {
        defer { DonatedFDs.closeAll(fds) }
        guard awaitingResponse else {
            throw TransportError.protocolViolation("send() without a request to answer")
        }
        awaitingResponse = false
        guard payload.count <= Int(maxMessageSize),
              payload.count + Self.headerBytes <= Int(endpoint.dataCapacity) else {
            throw TransportError.messageTooLarge(length: UInt64(payload.count), max: maxMessageSize)
        }
        // As gVisor: more FDs than the header can count are all dropped;
        // otherwise send in order and report how many made it.
        var donated: UInt8 = 0
        if !fds.isEmpty && fds.count <= Int(UInt8.max) {
            DonatedFDs.makeNonBlocking(fds)
            donated = UInt8(fdChannel.send(fds))
        }
        let data = endpoint.data
        data.storeBytes(of: mid.littleEndian, toByteOffset: 0, as: UInt16.self)
        data.storeBytes(of: donated, toByteOffset: 2, as: UInt8.self)
        data.storeBytes(of: UInt8(0), toByteOffset: 3, as: UInt8.self)
        payload.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(start: data + Self.headerBytes, count: bytes.count).copyMemory(from: bytes)
        }
        try endpoint.send(dataLength: UInt32(Self.headerBytes + payload.count))
    }

    /// Wakes a serving thread blocked in `receive()` (which then returns nil)
    /// and tells the client the channel is gone. The window and socket are
    /// released when the communicator is freed, once no thread uses it.
    public func shutdown() {
        endpoint.shutdown()
    }
}
