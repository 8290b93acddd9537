import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Broken framing on the main socket: truncated headers, lengths that lie,
/// unknown MIDs, requests before Mount, FDs the client pushes at the server.
final class FramingTests: HostileTestCase {
    func testTruncatedHeaderThenHangUpBeforeMount() throws {
        for length in [1, 4, 7] {
            try startGofer(ping: false)
            client.sendRaw(Array(RawClient.frame(mid: MID.mount.rawValue, payload: []).prefix(length)))
            client.shutdownWrite()
            assertHangsUp("\(length)-byte header")
            finishGofer("\(length)-byte header")
        }
    }

    func testTruncatedHeaderThenHangUpAfterMount() throws {
        let root = try startAndMount()
        _ = try walkOne(root, "file")
        client.sendRaw([0x18, 0x00, 0x00])
        client.shutdownWrite()
        assertHangsUp("3-byte header after Mount")
    }

    func testLengthPastMaxMessageSizeClosesWithoutAllocating() throws {
        try startGofer()
        let max = try mount().maxMessageSize
        let hwmBefore = gofer?.statusField("VmHWM") ?? 0
        client.sendRaw(SocketMessageHeader(payloadLength: max + 1, mid: MID.walk.rawValue).encoded)
        assertHangsUp("length max+1")
        finishGofer()

        try startGofer()
        _ = try mount()
        client.sendRaw(SocketMessageHeader(payloadLength: .max, mid: MID.pWrite.rawValue).encoded + [1, 2, 3])
        assertHangsUp("length 2^32-1")
        let hwmAfter = gofer?.statusField("VmHWM") ?? 0
        print("[mem] VmHWM before \(hwmBefore) kB, after a 4 GiB length \(hwmAfter) kB")
        XCTAssertLessThan(hwmAfter, 256 * 1024, "gofer allocated for a peer-supplied 4 GiB length")
    }

    func testLengthExactlyMaxWithGarbagePayloadIsAnError() throws {
        try startGofer()
        let max = try mount().maxMessageSize
        var payload = [UInt8](repeating: 0xA5, count: Int(max))
        payload.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(1).littleEndian, as: UInt64.self) }
        let reply = client.call(mid: MID.walk.rawValue, payload: payload)
        assertError(reply, [EIO, EINVAL, ENAMETOOLONG, EBADF], "max-size garbage Walk")
        assertStillServing("after a max-size garbage message")
    }

    func testLengthLongerThanPayloadThenHangUp() throws {
        let root = try startAndMount()
        let walk = WalkReq(dirFD: root, path: ["file"]).encoded()
        client.sendRaw(SocketMessageHeader(payloadLength: UInt32(walk.count + 100), mid: MID.walk.rawValue).encoded + walk)
        client.shutdownWrite()
        assertHangsUp("payload 100 bytes short")
    }

    func testLengthShorterThanPayloadDesynchronises() throws {
        let root = try startAndMount()
        // Header says 8 bytes of Walk payload; 8 more follow which the server
        // must then read as a header: length 0xFFFFFFFF, MID 5.
        var bytes = SocketMessageHeader(payloadLength: 8, mid: MID.fStat.rawValue).encoded
        bytes += StatReq(fd: root).encoded()
        bytes += [0xFF, 0xFF, 0xFF, 0xFF, 0x05, 0x00, 0xEE, 0xEE]
        client.sendRaw(bytes)
        let first = client.receive()
        XCTAssertEqual(first.mid, MID.fStat.rawValue, "first (well-formed) part: \(first)")
        assertHangsUp("the bytes after it form a 4 GiB header")
    }

    func testPayloadLongerThanMessageWithTrailingBytesIsAnError() throws {
        let root = try startAndMount()
        // A valid FStat followed by junk inside the same message.
        let reply = client.call(mid: MID.fStat.rawValue, payload: StatReq(fd: root).encoded() + [1, 2, 3, 4])
        // gVisor ignores trailing bytes; sealgofer is stricter. Either is fine,
        // as long as the stream stays in sync.
        XCTAssertTrue(reply.errno == EIO || reply.mid == MID.fStat.rawValue, "FStat with trailing bytes: \(reply)")
        assertStillServing("after trailing bytes")
    }

    func testUnknownMIDs() throws {
        _ = try startAndMount()
        for mid: UInt16 in [34, 35, 100, 0x7FFF, 0xFFFF] {
            assertError(client.call(mid: mid, payload: []), [EOPNOTSUPP], "MID \(mid), empty")
            assertError(client.call(mid: mid, payload: [UInt8](repeating: 7, count: 4096)), [EOPNOTSUPP], "MID \(mid), 4 KiB")
        }
        // A large unknown message must be consumed whole, or the stream desyncs.
        assertError(client.call(mid: 0xFFFF, payload: [UInt8](repeating: 0xFF, count: 1 << 20)), [EOPNOTSUPP], "1 MiB MID 0xFFFF")
        assertStillServing("after unknown MIDs")
    }

    func testErrorMIDSentAsRequest() throws {
        _ = try startAndMount()
        assertError(client.call(mid: 0, payload: []), [EINVAL, EOPNOTSUPP], "MID 0, empty")
        assertError(client.call(mid: 0, payload: ErrorResp(errno: 2).encoded()), [EINVAL, EOPNOTSUPP], "MID 0, errno payload")
        assertError(client.call(mid: 0, payload: [UInt8](repeating: 0, count: 100)), [EINVAL, EOPNOTSUPP], "MID 0, 100 bytes")
        assertStillServing("after MID 0 requests")
    }

    func testRequestsBeforeMount() throws {
        try startGofer()
        for id: FDID in [0, 1, 2, .max] {
            assertError(client.call(.walk, WalkReq(dirFD: id, path: ["file"])), [EBADF], "Walk on \(id) before Mount")
            assertError(client.call(.walkStat, WalkReq(dirFD: id, path: [""])), [EBADF], "WalkStat on \(id) before Mount")
            assertError(fstat(id), [EBADF], "FStat on \(id) before Mount")
            assertError(openAt(id, flags: O_RDONLY), [EBADF], "OpenAt on \(id) before Mount")
            assertError(client.call(.pRead, PReadReq(offset: 0, fd: id, count: 10)), [EBADF], "PRead on \(id) before Mount")
            assertError(client.call(.mkdirAt, MkdirAtReq(dirFD: id, uid: 0, gid: 0, mode: 0o777, name: [UInt8]("x"))),
                        [EBADF], "MkdirAt on \(id) before Mount")
            let close = client.call(.close, CloseReq(fds: [id]))
            XCTAssertEqual(close.mid, MID.close.rawValue, "Close of unknown \(id) before Mount: \(close)")
        }
        let root = try mount().root.controlFD
        XCTAssertNotNil(walk(root, ["file"]), "Mount after rejected requests")
    }

    func testMalformedPayloadForEveryMID() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let fdSized: [UInt8] = withUnsafeBytes(of: root.littleEndian) { Array($0) }
        for raw in UInt16(3)...33 {
            guard let mid = MID(rawValue: raw) else { continue }
            for payload in [[], [0xFF], fdSized, fdSized + [0xFF, 0xFF, 0xFF]] as [[UInt8]] {
                let reply = client.call(mid: raw, payload: payload)
                // Some short payloads are complete requests (FStat on root): a
                // success is fine there; anything else must be an Error.
                if reply.errno == nil {
                    XCTAssertEqual(reply.mid, raw, "\(mid) with \(payload.count) bytes: \(reply)")
                    XCTAssertTrue((try? AnyRequest.decode(mid: raw, payload: payload)) != nil,
                                  "\(mid) with undecodable \(payload.count)-byte payload succeeded: \(reply)")
                }
            }
        }
        assertStillServing("after malformed payloads")
        assertHostFDs(back: baseline, "malformed payloads")
    }

    func testRandomPayloadFuzz() throws {
        try startGofer()
        let beforeMount = hostFDCount("before Mount")
        let root = try mount().root.controlFD
        var rng = SplitMix64(seed: 0x5EA1_60FE)
        var sent = 0
        for _ in 0..<1500 {
            var mid = UInt16(rng.next() % 34)
            if mid == MID.channel.rawValue || mid == MID.accept.rawValue { mid = MID.fStat.rawValue }
            var payload = (0..<Int(rng.next() % 96)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if payload.count >= 8 && rng.next() % 2 == 0 {
                // Aim at the root FD so handlers get past the lookup.
                withUnsafeBytes(of: root.littleEndian) { payload.replaceSubrange(0..<8, with: $0) }
            }
            let reply = client.call(mid: mid, payload: payload)
            guard case .message = reply else {
                XCTFail("MID \(mid) with \(payload.count) random bytes: \(reply); log:\n\(gofer?.logTail() ?? "")")
                return
            }
            sent += 1
        }
        print("[fuzz] \(sent) random requests answered")
        // FDIDs are issued sequentially: closing 1...65535 drops all of them.
        close(Array(1...65_535))
        assertHostFDs(back: beforeMount, "fuzz, all FDIDs closed")
        assertStillServing("after fuzzing")
    }

    func testFDsPushedByTheClientAreNotKept() throws {
        _ = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(devNull, 0)
        defer { _ = Glibc.close(devNull) }
        let many = [Int32](repeating: devNull, count: 250)
        for round in 0..<20 {
            let frame = RawClient.frame(mid: MID.mount.rawValue, payload: [])
            XCTAssertNil(client.sendRaw(frame, attaching: many), "round \(round)")
            let reply = client.receive()
            guard let root = decode(reply, MountResp.self, .mount) else { return }
            close([root.root.controlFD])
        }
        assertHostFDs(back: baseline, "5000 FDs pushed with requests")
    }

    func testPipelinedFloodThenHangUp() throws {
        let root = try startAndMount()
        var burst: [UInt8] = []
        for _ in 0..<2000 { burst += RawClient.frame(mid: MID.fStat.rawValue, payload: StatReq(fd: root).encoded()) }
        // Never read a reply: the server's sends fill the socket and then fail.
        _ = client.sendRaw(burst)
        client.close()
        // tearDown checks the exit status.
    }
}

/// Small deterministic PRNG so a fuzz failure reproduces.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
