import CLinux
import Foundation
import Glibc
import XCTest
@testable import Lisafs

/// SocketCommunicator against a raw socket the test writes by hand.
final class TransportSocketFramingTests: XCTestCase {
    private var clientFD: Int32 = -1
    private var communicator: SocketCommunicator!

    override func setUp() {
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(clinux_stream_pair(&pair), 0)
        communicator = SocketCommunicator(fd: pair[0], maxMessageSize: 1024)
        clientFD = pair[1]
    }

    override func tearDown() {
        communicator = nil
        if clientFD >= 0 { close(clientFD) }
    }

    private func clientWrite(_ bytes: [UInt8]) {
        let n = bytes.withUnsafeBytes { write(clientFD, $0.baseAddress, $0.count) }
        XCTAssertEqual(n, bytes.count)
    }

    private func hangUp() {
        close(clientFD)
        clientFD = -1
    }

    private func header(length: UInt32, mid: UInt16) -> [UInt8] {
        SocketMessageHeader(payloadLength: length, mid: mid).encoded
    }

    func testHeaderLayoutMatchesGVisorSockHeader() throws {
        XCTAssertEqual(header(length: 0x0403_0201, mid: 0x0605), [1, 2, 3, 4, 5, 6, 0, 0])
        let raw: [UInt8] = [9, 0, 0, 0, 7, 0, 0xAA, 0xBB]
        let decoded = try raw.withUnsafeBytes { try SocketMessageHeader(decoding: $0) }
        XCTAssertEqual(decoded, SocketMessageHeader(payloadLength: 9, mid: 7))  // padding ignored
    }

    func testHangUpBetweenMessagesIsOrderlyEnd() throws {
        clientWrite(header(length: 3, mid: 5) + [1, 2, 3])
        hangUp()
        let request = try XCTUnwrap(communicator.receive())
        XCTAssertEqual(request.mid, 5)
        XCTAssertEqual(request.payload, [1, 2, 3])
        XCTAssertNil(try communicator.receive())
    }

    func testTruncatedHeaderThrows() {
        clientWrite([5, 0, 0, 0, 1])
        hangUp()
        XCTAssertThrowsError(try communicator.receive()) {
            XCTAssertEqual($0 as? TransportError, .truncatedHeader(received: 5))
        }
    }

    func testTruncatedPayloadThrows() {
        clientWrite(header(length: 10, mid: 1) + [1, 2, 3, 4])
        hangUp()
        XCTAssertThrowsError(try communicator.receive()) {
            XCTAssertEqual($0 as? TransportError, .truncatedPayload(expected: 10, received: 4))
        }
    }

    func testOversizedLengthThrowsBeforeReadingPayload() {
        // The peer claims 4 GiB and sends nothing more: must throw at once, not
        // allocate or wait for the payload.
        clientWrite(header(length: UInt32.max, mid: 1))
        XCTAssertThrowsError(try communicator.receive()) {
            XCTAssertEqual($0 as? TransportError, .messageTooLarge(length: UInt64(UInt32.max), max: 1024))
        }
        clientWrite(header(length: 1025, mid: 1))
        XCTAssertThrowsError(try communicator.receive())
    }

    func testMaxSizePayloadAccepted() throws {
        let payload = (0..<1024).map { UInt8(truncatingIfNeeded: $0) }
        clientWrite(header(length: 1024, mid: 3) + payload)
        XCTAssertEqual(try communicator.receive()?.payload, payload)
    }

    func testMessageArrivingInPiecesIsReassembled() throws {
        let message = header(length: 6, mid: 9) + Array("abcdef".utf8)
        let writer = Thread { [clientFD] in
            for byte in message {
                var b = byte
                _ = write(clientFD, &b, 1)
                usleep(2000)
            }
        }
        writer.start()
        let request = try XCTUnwrap(communicator.receive())
        XCTAssertEqual(request.mid, 9)
        XCTAssertEqual(String(decoding: request.payload, as: UTF8.self), "abcdef")
    }

    func testSendAttachesFDsToFirstBytesAndClosesThem() throws {
        clientWrite(header(length: 0, mid: 7))
        _ = try communicator.receive()
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[1]) }
        try communicator.send(mid: 7, payload: [1, 2, 3], fds: [ends[0]])
        // The communicator owns and closed its copy.
        XCTAssertEqual(fcntl(ends[0], F_GETFD), -1)

        var buffer = [UInt8](repeating: 0, count: 64)
        var fds: [Int32] = [-1, -1]
        var count: Int32 = 0
        let n = buffer.withUnsafeMutableBytes { raw in
            clinux_recv_with_fds(clientFD, raw.baseAddress, raw.count, &fds, 2, &count, 0)
        }
        XCTAssertEqual(n, 11)
        XCTAssertEqual(Array(buffer[0..<11]), header(length: 3, mid: 7) + [1, 2, 3])
        XCTAssertEqual(count, 1)
        defer { close(fds[0]) }
        XCTAssertNotEqual(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0, "donated FDs are made non-blocking as gVisor does")
        var byte: UInt8 = 42
        XCTAssertEqual(write(ends[1], &byte, 1), 1)
        var got: UInt8 = 0
        XCTAssertEqual(read(fds[0], &got, 1), 1)
        XCTAssertEqual(got, 42)
    }

    func testOversizedResponseThrowsAndStillClosesFDs() throws {
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[1]) }
        XCTAssertThrowsError(try communicator.send(mid: 1, payload: [UInt8](repeating: 0, count: 1025), fds: [ends[0]])) {
            XCTAssertEqual($0 as? TransportError, .messageTooLarge(length: 1025, max: 1024))
        }
        XCTAssertEqual(fcntl(ends[0], F_GETFD), -1)
    }

    func testLargeResponseOnNonBlockingSocketIsWrittenCompletely() throws {
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(clinux_stream_pair(&pair), 0)
        XCTAssertEqual(clinux_set_nonblocking(pair[0]), 0)
        let big = SocketCommunicator(fd: pair[0], maxMessageSize: 4 << 20)
        defer { close(pair[1]) }
        let payload = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        // Far more than the socket buffer: send must survive EAGAIN and
        // partial writes while the reader drains slowly.
        let received = TransportTestBox<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        Thread { [pair] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while received.value.count < payload.count + 8 {
                usleep(200)
                let n = chunk.withUnsafeMutableBytes { read(pair[1], $0.baseAddress, $0.count) }
                if n <= 0 { break }
                received.value.append(contentsOf: chunk[0..<n])
            }
            done.signal()
        }.start()
        clientWriteTo(pair[1], header(length: 0, mid: 2))
        _ = try big.receive()
        try big.send(mid: 2, payload: payload, fds: [])
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(Array(received.value.prefix(8)), header(length: UInt32(payload.count), mid: 2))
        XCTAssertTrue(received.value.dropFirst(8).elementsEqual(payload))
    }

    private func clientWriteTo(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func testShutdownUnblocksReceive() throws {
        let result = DispatchSemaphore(value: 0)
        let outcome = TransportTestBox<Result<InboundRequest?, Error>?>(nil)
        let communicator = self.communicator!
        Thread {
            outcome.value = Result { try communicator.receive() }
            result.signal()
        }.start()
        usleep(100_000)  // let it block in recv
        communicator.shutdown()
        communicator.shutdown()  // idempotent
        XCTAssertEqual(result.wait(timeout: .now() + 5), .success, "receive() still blocked after shutdown()")
        XCTAssertNil(try XCTUnwrap(outcome.value).get())
    }
}
