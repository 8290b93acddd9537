import CLinux
import Foundation
import Glibc
@testable import Lisafs

/// A tiny lisafs-shaped server for the transport tests: one thread per
/// communicator, echoing test MIDs (see Tests/TransportPeer/protocol.go) and
/// answering lisafs' Channel RPC with real `ChannelCommunicator`s.
///
/// It never shuts channels down on its own when the socket closes, so the
/// tests prove that channel threads notice a dead peer by themselves.
final class TransportEchoServer: @unchecked Sendable {
    enum TestMID {
        static let channel: UInt16 = 2
        static let echo: UInt16 = 100
        static let donate: UInt16 = 101
        static let sized: UInt16 = 102
        static let slow: UInt16 = 103
        static let shutdownChannels: UInt16 = 104
    }

    let maxMessageSize: UInt32
    let peerCheckIntervalMilliseconds: Int
    private let lock = NSLock()
    private var channels: [ChannelCommunicator] = []
    private var outcomeLog: [String] = []
    private let threads = DispatchGroup()

    init(maxMessageSize: UInt32, peerCheckIntervalMilliseconds: Int = 200) {
        self.maxMessageSize = maxMessageSize
        self.peerCheckIntervalMilliseconds = peerCheckIntervalMilliseconds
    }

    /// How each serving thread ended, e.g. "socket: closed", "channel: closed",
    /// "socket: messageTooLarge(...)".
    var outcomes: [String] { lock.withLock { outcomeLog } }

    func serve(socketFD: Int32) {
        startThread(name: "socket", communicator: SocketCommunicator(fd: socketFD, maxMessageSize: maxMessageSize))
    }

    /// True if every serving thread has exited within `seconds`.
    func waitForAllThreads(seconds: Double) -> Bool {
        threads.wait(timeout: .now() + seconds) == .success
    }

    private func startThread(name: String, communicator: ServerCommunicator) {
        threads.enter()
        let thread = Thread { [self] in
            let outcome = serveLoop(communicator)
            lock.withLock { outcomeLog.append("\(name): \(outcome)") }
            threads.leave()
        }
        thread.start()
    }

    private func serveLoop(_ communicator: ServerCommunicator) -> String {
        do {
            while let request = try communicator.receive() {
                let (mid, payload, fds) = handle(request)
                try communicator.send(mid: mid, payload: payload, fds: fds)
            }
            return "closed"
        } catch {
            return "\(error)"
        }
    }

    private func handle(_ request: InboundRequest) -> (UInt16, [UInt8], [Int32]) {
        switch request.mid {
        case TestMID.channel:
            do {
                let setup = try ChannelCommunicator.create(
                    maxMessageSize: maxMessageSize,
                    peerCheckIntervalMilliseconds: peerCheckIntervalMilliseconds)
                lock.withLock { channels.append(setup.communicator) }
                startThread(name: "channel", communicator: setup.communicator)
                var writer = WireWriter()
                writer.i64(setup.dataOffset)
                writer.u64(setup.dataLength)
                return (request.mid, writer.bytes, setup.donatedFDs)
            } catch {
                return errorResponse(ENOMEM)
            }
        case TestMID.echo:
            return (request.mid, request.payload, [])
        case TestMID.donate:
            let count = Int(request.payload.first ?? 0)
            var fds: [Int32] = []
            for i in 0..<count {
                var ends: [Int32] = [-1, -1]
                guard pipe(&ends) == 0 else { break }
                _ = clinux_fcntl_int(ends[0], F_SETFD, FD_CLOEXEC)
                let text = Array("fd-\(i)".utf8)
                _ = text.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
                close(ends[1])
                fds.append(ends[0])
            }
            return (request.mid, [], fds)
        case TestMID.sized:
            let n = Int(readU32(request.payload))
            guard n <= Int(maxMessageSize) else { return errorResponse(EINVAL) }
            return (request.mid, (0..<n).map { UInt8(truncatingIfNeeded: 7 &* $0 &+ 3) }, [])
        case TestMID.slow:
            usleep(readU32(request.payload) * 1000)
            return (request.mid, request.payload, [])
        case TestMID.shutdownChannels:
            for channel in lock.withLock({ channels }) { channel.shutdown() }
            return (request.mid, [], [])
        default:
            return errorResponse(EOPNOTSUPP)
        }
    }

    private func readU32(_ bytes: [UInt8]) -> UInt32 {
        guard bytes.count >= 4 else { return 0 }
        return UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    private func errorResponse(_ errno: Int32) -> (UInt16, [UInt8], [Int32]) {
        var writer = WireWriter()
        writer.u32(UInt32(errno))
        return (0, writer.bytes, [])
    }
}

/// A mutable slot a test thread fills and the test reads after a semaphore.
final class TransportTestBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
