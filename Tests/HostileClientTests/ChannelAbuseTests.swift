import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Channel RPC abuse: more channels than the server allows, channels never
/// connected, channel FDs kept or dropped, then a hang-up. The gofer must
/// refuse the excess with an errno, leak nothing for refused ones, and exit
/// promptly (every channel thread woken) when the main socket closes.
final class ChannelAbuseTests: HostileTestCase {
    private func requestChannels(_ count: Int, keep: Bool) -> (granted: Int, errnos: [Int32: Int], fds: [Int32]) {
        var granted = 0
        var errnos: [Int32: Int] = [:]
        var fds: [Int32] = []
        for _ in 0..<count {
            let reply = client.call(.channel, ChannelReq(), keepFDs: keep)
            if let errno = reply.errno {
                errnos[errno, default: 0] += 1
            } else if let resp = decode(reply, ChannelResp.self, .channel) {
                granted += 1
                XCTAssertGreaterThan(resp.dataLength, 0)
                XCTAssertEqual(reply.fdCount, 2, "a channel comes with its memfd and fdchannel socket")
                fds += reply.fds
            }
        }
        return (granted, errnos, fds)
    }

    func testManyChannelsThenHangUp() throws {
        _ = try startAndMount()
        let before = hostFDCount("before Channel RPCs")
        let threadsBefore = gofer?.statusField("Threads") ?? -1
        let first = requestChannels(64, keep: false)
        print("[channel] \(name): \(first.granted) granted, refused \(first.errnos)")
        XCTAssertGreaterThan(first.granted, 0, "no channel at all")
        XCTAssertLessThan(first.granted, 64, "the server accepted 64 channels: no limit")
        XCTAssertTrue(Set(first.errnos.keys).isSubset(of: [ENOMEM, EAGAIN, EMFILE, ENOSYS, EBUSY]), "refusal errnos \(first.errnos)")
        let withChannels = hostFDCount("with \(first.granted) channels")
        let threads = gofer?.statusField("Threads") ?? -1
        print("[threads] \(name): \(threadsBefore) before, \(threads) with channels")
        // Refused requests must not cost anything.
        let second = requestChannels(200, keep: false)
        XCTAssertEqual(second.granted, 0)
        assertHostFDs(back: withChannels, "200 refused Channel RPCs")
        XCTAssertEqual(gofer?.statusField("Threads"), threads, "refused channels left threads")
        XCTAssertGreaterThanOrEqual(withChannels, before)
        assertStillServing("with channels never connected")
        // tearDown: hang-up must end the process (status 0) within 10 s.
    }

    func testChannelFDsKeptOpenAcrossHangUp() throws {
        _ = try startAndMount()
        let got = requestChannels(8, keep: true)
        defer { got.fds.forEach { _ = Glibc.close($0) } }
        XCTAssertGreaterThan(got.granted, 0)
        let started = Date()
        finishGofer("hang-up with channel FDs still open on our side")
        print("[channel] \(name): exit \(String(format: "%.2f", Date().timeIntervalSince(started))) s after hang-up "
              + "with \(got.fds.count) channel FDs held")
    }

    func testChannelSocketShutdownByClient() throws {
        _ = try startAndMount()
        let got = requestChannels(4, keep: true)
        // The client kills its end of every channel's fdchannel socket and
        // unmaps nothing: the serving threads must notice or stay harmless.
        for fd in got.fds { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)); _ = Glibc.close(fd) }
        usleep(100_000)
        assertStillServing("after the client shut its channel sockets")
        XCTAssertTrue(gofer?.isAlive() == true)
    }

    func testChannelsBeforeMount() throws {
        try startGofer()
        let got = requestChannels(3, keep: false)
        XCTAssertEqual(got.granted + got.errnos.values.reduce(0, +), 3)
        _ = try mount()
        assertStillServing()
    }

    func testChannelWithPayloadIsRefusedOrServed() throws {
        _ = try startAndMount()
        let reply = client.call(mid: MID.channel.rawValue, payload: [UInt8](repeating: 1, count: 64))
        XCTAssertTrue(reply.errno != nil || reply.mid == MID.channel.rawValue, "Channel with a payload: \(reply)")
        assertStillServing()
    }
}
