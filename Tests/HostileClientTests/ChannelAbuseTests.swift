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

    /// Opens one connected channel (flipcall handshake done).
    private func connectedChannel() throws -> FlipcallClient {
        let reply = client.call(.channel, ChannelReq(), keepFDs: true)
        let resp = try XCTUnwrap(decode(reply, ChannelResp.self, .channel))
        return try XCTUnwrap(FlipcallClient(fds: reply.fds, response: resp), "flipcall handshake failed")
    }

    func testMalformedChannelDatagrams() throws {
        let root = try startAndMount()
        // Each abuse gets its own channel; the gofer may drop that channel, but
        // must answer or shut it, keep serving the main socket, and not crash.
        func outcome(_ reply: [UInt8]?) -> String { reply.map { "answered \($0.count) bytes" } ?? "no answer / shut" }
        let abuses: [(String, (FlipcallClient) -> String)] = [
            ("length past the window", { outcome($0.handOverRaw([5, 0, 0, 0], claimedLength: .max, timeout: 0.3)) }),
            ("length = window size", { outcome($0.handOverRaw([5, 0, 0, 0], claimedLength: UInt32(2 << 20), timeout: 0.3)) }),
            ("datagram shorter than the channel header", { outcome($0.handOverRaw([5], claimedLength: 1, timeout: 0.3)) }),
            ("empty datagram", { outcome($0.handOverRaw([], claimedLength: 0, timeout: 0.3)) }),
            ("unknown MID", { "\($0.call(mid: 0xFFFF, payload: [1, 2, 3]))" }),
            ("garbage state word", { $0.scribbleState(0xDEAD_BEEF); return "state scribbled" }),
            ("server-active without a request", { $0.scribbleState(1); return "state scribbled" }),
            ("shutdown by the client", { $0.scribbleState(2); return "state scribbled" }),
        ]
        var kept: [FlipcallClient] = []
        for (label, abuse) in abuses {
            // Channel limit: recycle by hanging up is not possible, so use a fresh gofer per 4.
            if kept.count == 4 {
                kept.removeAll()
                finishGofer("after channel abuses")
                _ = try startAndMount()
            }
            let channel = try connectedChannel()
            let result = abuse(channel)
            print("[channel] \(name) \(label): \(result)")
            usleep(20_000)
            XCTAssertTrue(gofer?.isAlive() == true, "\(label): gofer died: \(String(describing: gofer?.exit)); log:\n\(gofer?.logTail() ?? "")")
            assertStillServing("after channel abuse: \(label)")
            kept.append(channel)
        }
        _ = root
    }

    func testResizingTheChannelMemoryIsRefused() throws {
        let root = try startAndMount()
        let channel = try connectedChannel()
        // A shrunk memfd would SIGBUS the gofer on its next access to the window.
        XCTAssertEqual(ftruncate(channel.memoryFD, 0), -1, "the client could shrink the channel memfd")
        XCTAssertEqual(ftruncate(channel.memoryFD, 1 << 30), -1, "the client could grow the channel memfd")
        let reply = channel.call(.fStat, StatReq(fd: root))
        XCTAssertEqual(reply.mid, MID.fStat.rawValue, "FStat over the channel after resize attempts: \(reply)")
        XCTAssertTrue(gofer?.isAlive() == true)
    }
}
