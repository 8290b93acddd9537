import CLinux
import Foundation
import Glibc
import XCTest
@testable import Lisafs

/// Runs gVisor's own client-side transport code (Tests/TransportPeer, Go)
/// against `TransportEchoServer`. If Go or gVisor's sources are missing the
/// peer cannot be built and these tests fail.
final class TransportPeerTests: XCTestCase {
    /// gVisor's lisafs.MaxMessageSize(): 2 MiB minus a page, so the packet
    /// window is exactly 2 MiB.
    static let maxMessageSize: UInt32 = 2 * 1024 * 1024 - 4096

    struct PeerResult {
        let status: Int32
        let killedBySignal: Bool
        let output: String
    }

    static let runScript = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TransportPeer/run")

    /// Starts `server` on one end of a socketpair and the Go peer on the
    /// other (as its stdin), and waits for the peer to exit.
    func runPeer(_ server: TransportEchoServer, _ arguments: [String], timeout: Double = 120) throws -> PeerResult {
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(clinux_stream_pair(&pair), 0)
        server.serve(socketFD: pair[0])

        let process = Process()
        process.executableURL = Self.runScript
        process.arguments = arguments
        process.standardInput = FileHandle(fileDescriptor: pair[1], closeOnDealloc: false)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Only the peer may hold the client end, or its death goes unseen.
        close(pair[1])

        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        let text = String(decoding: data, as: UTF8.self)
        print(text, terminator: "")
        return PeerResult(status: process.terminationStatus,
                          killedBySignal: process.terminationReason == .uncaughtSignal,
                          output: text)
    }

    func assertAllThreadsExit(_ server: TransportEchoServer, expected: [String],
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(server.waitForAllThreads(seconds: 10), "serving threads still running: \(server.outcomes)",
                      file: file, line: line)
        XCTAssertEqual(server.outcomes.sorted(), expected.sorted(), file: file, line: line)
    }

    func testSocketMessagesWithFDsAgainstGVisorClient() throws {
        let server = TransportEchoServer(maxMessageSize: Self.maxMessageSize)
        let result = try runPeer(server, ["socket", "\(Self.maxMessageSize)"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("socket ok"), result.output)
        assertAllThreadsExit(server, expected: ["socket: closed"])
    }

    func testChannelsAgainstGVisorFlipcallClient() throws {
        let server = TransportEchoServer(maxMessageSize: Self.maxMessageSize)
        let result = try runPeer(server, ["channel", "\(Self.maxMessageSize)", "5000"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("channel ok (5000 round trips)"), result.output)
        // The client destroyed its channels and exited: every thread notices.
        assertAllThreadsExit(server, expected: ["socket: closed"] + Array(repeating: "channel: closed", count: 4))
    }

    func testOversizedSocketMessageClosesConnection() throws {
        let server = TransportEchoServer(maxMessageSize: 4096)
        let result = try runPeer(server, ["oversize", "4096"])
        XCTAssertEqual(result.status, 0, result.output)
        assertAllThreadsExit(server, expected: ["socket: \(TransportError.messageTooLarge(length: 4097, max: 4096))"])
    }

    func testPeerKilledMidCallEndsEveryServingThread() throws {
        let server = TransportEchoServer(maxMessageSize: Self.maxMessageSize)
        let result = try runPeer(server, ["killed", "\(Self.maxMessageSize)"])
        XCTAssertTrue(result.killedBySignal && result.status == SIGKILL, "peer did not die by SIGKILL: \(result)")
        XCTAssertTrue(result.output.contains("killing myself mid-call"), result.output)
        assertAllThreadsExit(server, expected: ["socket: closed", "channel: closed", "channel: closed"])
    }

    func testServerShutdownIsSeenByGVisorClient() throws {
        let server = TransportEchoServer(maxMessageSize: Self.maxMessageSize)
        let result = try runPeer(server, ["shutdown", "\(Self.maxMessageSize)"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("shutdown observed by the client"), result.output)
        assertAllThreadsExit(server, expected: ["socket: closed", "channel: closed"])
    }

    /// Prints round-trip latency of a channel vs. the socket (not asserted).
    func testRoundTripLatencyChannelVersusSocket() throws {
        let server = TransportEchoServer(maxMessageSize: Self.maxMessageSize)
        let result = try runPeer(server, ["bench", "\(Self.maxMessageSize)", "20000"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("bench channel"), result.output)
        assertAllThreadsExit(server, expected: ["socket: closed", "channel: closed"])
    }
}
