import CLinux
import Foundation
import XCTest
@testable import Lisafs
#if canImport(Glibc)
import Glibc
#endif

/// Teardown must finish even when a request on a channel is stuck in the
/// provider on a bound socket: the server interrupts bound sockets before
/// it waits for the channel threads.
final class ServerTeardownTests: XCTestCase {
    /// Its `accept` blocks until `interrupt(boundSocket:)` is called, like
    /// accept(2) on a blocking socket until shutdown(2).
    final class BlockingAcceptProvider: MinimalTestProvider, @unchecked Sendable {
        typealias BoundSocket = TestHandle
        private let condition = NSCondition()
        private var interrupted = false
        let acceptEntered = DispatchSemaphore(value: 0)
        var wasInterrupted: Bool { condition.withLock { interrupted } }

        var supportedMIDs: Set<MID> { [.bindAt, .listen, .accept] }

        func bind(in dir: TestHandle, _ name: FileName, socketType: UInt32,
                  attributes: CreateAttributes) throws -> BoundSocketCreated<TestHandle, TestHandle> {
            let notification = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard notification >= 0 else { throw Errno.current }
            return BoundSocketCreated(node: TestHandle("sock"), stat: Statx(mode: UInt16(FileType.socket) | 0o600),
                                      boundSocket: TestHandle("bound"), donatedFD: notification)
        }
        func listen(_ socket: TestHandle, backlog: Int32) throws {}
        func accept(_ socket: TestHandle) throws -> (fd: Int32, peerAddress: [UInt8]) {
            acceptEntered.signal()
            condition.withLock { while !interrupted { condition.wait() } }
            throw Errno.EINVAL
        }
        func interrupt(boundSocket: TestHandle) {
            condition.withLock {
                interrupted = true
                condition.broadcast()
            }
        }
    }

    func testHangUpEndsTheConnectionWhileAcceptIsStuckOnAChannel() throws {
        let provider = BlockingAcceptProvider()
        let client = try RawLisafsClient(server: Server(provider: provider))
        let root = try client.mount().root.controlFD
        let bound = try client.call(.bindAt, BindAtReq(dirFD: root, uid: NoUID, gid: NoGID, mode: 0o600, sockType: 1,
                                                       name: Array("sock".utf8)), expecting: BindAtResp.self)
        var channelFDs: [Int32] = []
        let channel = try client.call(.channel, ChannelReq(), expecting: ChannelResp.self, fds: &channelFDs)
        defer { channelFDs.forEach { _ = Glibc.close($0) } }
        XCTAssertEqual(channelFDs.count, 2, "memfd and fdchannel socket")
        let flipcall = try FakeFlipcallClient(memfd: channelFDs[0], offset: channel.dataOffset, length: channel.dataLength)
        flipcall.connect()
        XCTAssertEqual(flipcall.awaitReply(), Array("{}\n".utf8), "channel handshake")
        flipcall.request(mid: MID.accept.rawValue, payload: AcceptReq(fd: bound.boundSocketFD).encoded())
        XCTAssertEqual(provider.acceptEntered.wait(timeout: .now() + 5), .success, "Accept reached the provider")

        // Hang up on the main socket: teardown must interrupt the stuck Accept.
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            client.shutdownAndWait()
            finished.signal()
        }
        if finished.wait(timeout: .now() + 5) == .timedOut {
            XCTFail("teardown waited forever for the channel thread stuck in accept")
            provider.interrupt(boundSocket: TestHandle())  // let the test finish
            finished.wait()
        }
        XCTAssertTrue(provider.wasInterrupted)
    }
}
