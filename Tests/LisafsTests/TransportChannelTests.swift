import CLinux
import Foundation
import Glibc
import XCTest
@testable import Lisafs

/// A hand-driven flipcall client over the channel's shared window, able to
/// break the rules on purpose. (Well-behaved clients are gVisor's own, in
/// TransportPeerTests.)
final class FakeFlipcallClient {
    let base: UnsafeMutableRawPointer
    let length: Int
    var state: UnsafeMutablePointer<UInt32> { base.assumingMemoryBound(to: UInt32.self) }
    var dataLength: UnsafeMutablePointer<UInt32> { (base + 4).assumingMemoryBound(to: UInt32.self) }
    var data: UnsafeMutableRawPointer { base + 16 }

    convenience init(_ setup: ChannelCommunicator.Setup) throws {
        try self.init(memfd: setup.donatedFDs[0], offset: setup.dataOffset, length: setup.dataLength)
    }

    /// From what a ChannelResp carries (the memfd is the first donated FD).
    init(memfd: Int32, offset: Int64, length: UInt64) throws {
        self.length = Int(length)
        base = try XCTUnwrap(clinux_map_shared(memfd, length, offset))
    }

    deinit { _ = clinux_unmap(base, UInt64(length)) }

    /// Publishes `bytes` as the datagram and hands control to the server.
    func handOver(_ bytes: [UInt8], claimedLength: UInt32? = nil) {
        UnsafeMutableRawBufferPointer(start: data, count: bytes.count).copyBytes(from: bytes)
        clinux_atomic_store_u32(dataLength, claimedLength ?? UInt32(bytes.count))
        XCTAssertEqual(clinux_atomic_cas_u32(state, 0, 1), 1)
        _ = clinux_futex_wake(state, 1)
    }

    /// Waits until the server hands control back; returns the datagram.
    func awaitReply(seconds: Double = 5) -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        while clinux_atomic_load_u32(state) == 1 {
            if Date() > deadline { return nil }
            _ = clinux_futex_wait(state, 1, 10_000_000)
        }
        let n = Int(clinux_atomic_load_u32(dataLength))
        return Array(UnsafeRawBufferPointer(start: data, count: n))
    }

    func connect() {
        handOver(Array("{}\n".utf8))
    }

    func request(mid: UInt16, payload: [UInt8], claimedLength: UInt32? = nil) {
        handOver([UInt8(mid & 0xff), UInt8(mid >> 8), 0, 0] + payload, claimedLength: claimedLength)
    }
}

final class TransportChannelTests: XCTestCase {
    private var setups: [ChannelCommunicator.Setup] = []

    override func tearDown() {
        for setup in setups { setup.donatedFDs.forEach { close($0) } }
        setups = []
    }

    private func makeChannel(maxMessageSize: UInt32 = 8192, intervalMs: Int = 200) throws -> ChannelCommunicator.Setup {
        let setup = try ChannelCommunicator.create(maxMessageSize: maxMessageSize, peerCheckIntervalMilliseconds: intervalMs)
        setups.append(setup)
        return setup
    }

    /// Runs `receive()` on another thread (as the server's serving thread would).
    private func receiveAsync(_ communicator: ChannelCommunicator) -> () -> Result<InboundRequest?, Error>? {
        let done = DispatchSemaphore(value: 0)
        let result = TransportTestBox<Result<InboundRequest?, Error>?>(nil)
        Thread {
            result.value = Result { try communicator.receive() }
            done.signal()
        }.start()
        return {
            done.wait(timeout: .now() + 5) == .success ? result.value : nil
        }
    }

    func testWindowGeometryMatchesWhatTheClientNeeds() throws {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let setup = try makeChannel(maxMessageSize: 2 * 1024 * 1024 - UInt32(page))
        XCTAssertEqual(setup.dataOffset, 0)
        XCTAssertEqual(setup.dataLength, 2 * 1024 * 1024, "16-byte flipcall header + 4-byte channel header round up to 2 MiB")
        XCTAssertEqual(setup.donatedFDs.count, 2)
        var st = stat()
        XCTAssertEqual(fstat(setup.donatedFDs[0], &st), 0)
        XCTAssertEqual(UInt64(st.st_size), setup.dataLength)
        // Sealed: the client cannot shrink the file under our mapping.
        XCTAssertEqual(ftruncate(setup.donatedFDs[0], 4096), -1)
        XCTAssertEqual(errno, EPERM)
        var type: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        XCTAssertEqual(getsockopt(setup.donatedFDs[1], SOL_SOCKET, SO_TYPE, &type, &len), 0)
        XCTAssertEqual(type, Int32(SOCK_SEQPACKET.rawValue))
        XCTAssertThrowsError(try ChannelCommunicator.create(maxMessageSize: UInt32.max))
    }

    func testRoundTripsWithHandDrivenClient() throws {
        let setup = try makeChannel()
        let client = try FakeFlipcallClient(setup)
        let channel = setup.communicator
        // The first receive() answers flipcall's handshake, then waits for a request.
        var pending = receiveAsync(channel)
        client.connect()
        XCTAssertEqual(client.awaitReply().map { String(decoding: $0, as: UTF8.self) }, "{}\n")
        for i in 0..<50 {
            if i > 0 { pending = receiveAsync(channel) }
            client.request(mid: 100, payload: Array(repeating: UInt8(i), count: i))
            let request = try XCTUnwrap(try XCTUnwrap(pending()).get())
            XCTAssertEqual(request.mid, 100)
            XCTAssertEqual(request.payload, Array(repeating: UInt8(i), count: i))
            try channel.send(mid: 101, payload: [UInt8(i), 9], fds: [])
            XCTAssertEqual(client.awaitReply(), [101, 0, 0, 0, UInt8(i), 9])
        }
    }

    func testFDsAreQueuedOnFDChannelBeforeResponse() throws {
        let setup = try makeChannel()
        let (client, pending) = try connect(setup)
        client.request(mid: 7, payload: [])
        _ = try XCTUnwrap(pending())
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[1]) }
        let duplicate = dup(ends[0])
        try setup.communicator.send(mid: 7, payload: [], fds: [ends[0], duplicate])
        XCTAssertEqual(client.awaitReply(), [7, 0, 2, 0], "header counts the 2 donated FDs")
        for _ in 0..<2 {
            var fds: [Int32] = [-1]
            var count: Int32 = 0
            var empty: UInt8 = 0
            let n = clinux_recv_with_fds(setup.donatedFDs[1], &empty, 0, &fds, 1, &count, Int32(MSG_DONTWAIT))
            XCTAssertEqual(n, 0)
            XCTAssertEqual(count, 1)
            XCTAssertNotEqual(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0)
            close(fds[0])
        }
        XCTAssertEqual(fcntl(ends[0], F_GETFD), -1, "communicator closed its copies")
        XCTAssertEqual(fcntl(duplicate, F_GETFD), -1)
    }

    func testBadHandshakeIsRejected() throws {
        let setup = try makeChannel()
        let client = try FakeFlipcallClient(setup)
        let pending = receiveAsync(setup.communicator)
        client.handOver(Array("hello".utf8))
        XCTAssertThrowsError(try XCTUnwrap(pending()).get()) {
            guard case TransportError.protocolViolation = $0 else { return XCTFail("\($0)") }
        }
    }

    /// Maps the window as a client, completes the handshake, and returns the
    /// serving thread's pending wait for the first request.
    private func connect(_ setup: ChannelCommunicator.Setup) throws
        -> (FakeFlipcallClient, () -> Result<InboundRequest?, Error>?) {
        let client = try FakeFlipcallClient(setup)
        let pending = receiveAsync(setup.communicator)
        client.connect()
        XCTAssertEqual(client.awaitReply(), Array("{}\n".utf8))
        return (client, pending)
    }

    private func connectedChannel() throws
        -> (ChannelCommunicator.Setup, FakeFlipcallClient, () -> Result<InboundRequest?, Error>?) {
        let setup = try makeChannel()
        let (client, pending) = try connect(setup)
        return (setup, client, pending)
    }

    func testDatagramShorterThanChannelHeaderIsRejected() throws {
        let (_, client, pending) = try connectedChannel()
        client.handOver([1, 0])
        XCTAssertThrowsError(try XCTUnwrap(pending()).get()) {
            guard case TransportError.protocolViolation = $0 else { return XCTFail("\($0)") }
        }
    }

    func testDatagramLengthBeyondWindowIsRejected() throws {
        let (_, client, pending) = try connectedChannel()
        client.request(mid: 1, payload: [], claimedLength: UInt32(client.length))
        XCTAssertThrowsError(try XCTUnwrap(pending()).get()) {
            guard case TransportError.protocolViolation = $0 else { return XCTFail("\($0)") }
        }
    }

    func testPayloadAboveMaxMessageSizeIsRejected() throws {
        let (_, client, pending) = try connectedChannel()
        // The window is page-rounded, so it holds more than maxMessageSize.
        client.request(mid: 1, payload: [UInt8](repeating: 1, count: 8193))
        XCTAssertThrowsError(try XCTUnwrap(pending()).get()) {
            XCTAssertEqual($0 as? TransportError, .messageTooLarge(length: 8193, max: 8192))
        }
    }

    func testGarbageControlWordIsRejected() throws {
        let (_, client, pending) = try connectedChannel()
        usleep(50_000)
        clinux_atomic_store_u32(client.state, 77)
        _ = clinux_futex_wake(client.state, 1)
        XCTAssertThrowsError(try XCTUnwrap(pending()).get()) {
            guard case TransportError.protocolViolation = $0 else { return XCTFail("\($0)") }
        }
    }

    func testClientShutdownEndsReceive() throws {
        let (_, client, pending) = try connectedChannel()
        usleep(50_000)
        XCTAssertEqual(clinux_atomic_swap_u32(client.state, 2), 0)
        _ = clinux_futex_wake(client.state, 1)
        XCTAssertNil(try XCTUnwrap(pending()).get())
    }

    func testShutdownUnblocksReceiveLongBeforePeerCheck() throws {
        // A peer check once a minute: only shutdown() can end this wait quickly.
        let setup = try makeChannel(intervalMs: 60_000)
        let start = Date()
        let (client, pending) = try connect(setup)  // the serving thread now waits for a request
        usleep(100_000)
        setup.communicator.shutdown()
        setup.communicator.shutdown()  // idempotent
        let result = try XCTUnwrap(pending(), "receive() still blocked after shutdown()")
        XCTAssertNil(try result.get())
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(clinux_atomic_load_u32(client.state), 2, "the client is told the channel is shut down")
        XCTAssertNil(try setup.communicator.receive(), "a shut-down channel stays shut down")
    }

    func testShutdownBeforeAnyClientConnects() throws {
        let setup = try makeChannel(intervalMs: 60_000)
        let pending = receiveAsync(setup.communicator)
        usleep(50_000)
        setup.communicator.shutdown()
        XCTAssertNil(try XCTUnwrap(pending()).get())
    }

    func testClientClosingItsFDChannelEndsReceive() throws {
        let setup = try makeChannel(intervalMs: 100)
        let (_, pending) = try connect(setup)
        // What the kernel does when the client process dies.
        close(setup.donatedFDs[1])
        setups[setups.count - 1] = ChannelCommunicator.Setup(
            communicator: setup.communicator, donatedFDs: [setup.donatedFDs[0]],
            dataOffset: setup.dataOffset, dataLength: setup.dataLength)
        XCTAssertNil(try XCTUnwrap(pending(), "receive() did not notice the dead client").get())
    }
}
