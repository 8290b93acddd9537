import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `serve`'s limit flags (ServeLimits): each exceeded limit is answered with
/// an errno (or, for an oversized frame, a hang-up), the connection stays
/// usable, and freeing what was held makes room again.
final class LimitTests: HostileTestCase {
    func testFDCapGivesEMFILEAndFreesUp() throws {
        let root = try startAndMount(extraArguments: ["--max-fds", "32"])
        let tally = ExhaustionTests.pipelinedWalks(client, dir: root, name: "file", count: 100)
        XCTAssertEqual(tally.other, [])
        XCTAssertEqual(tally.ids.count, 31, "root + 31 walks = 32 FDIDs")
        XCTAssertEqual(tally.errnos, [EMFILE: 69])
        // OpenAt and the channel-free RPCs that create FDIDs hit the same cap.
        assertError(openAt(root, flags: O_RDONLY), [EMFILE], "OpenAt at the cap")
        let created = client.call(.mkdirAt, MkdirAtReq(dirFD: root, uid: NoUID, gid: NoGID, mode: 0o755, name: [UInt8]("new")))
        assertError(created, [EMFILE], "MkdirAt at the cap")
        // Mkdir at the cap must not have left the directory behind without an FDID.
        XCTAssertNil(sandbox.lstatServed("new"), "a refused MkdirAt created the directory")
        close(Array(tally.ids.prefix(5)))
        let again = Self.pipelinedWalks(client, dir: root, count: 10)
        XCTAssertEqual(again.ids.count, 5)
        XCTAssertEqual(again.errnos, [EMFILE: 5])
        close(Array(tally.ids.dropFirst(5)) + again.ids)
        assertStillServing("after the FD cap")
    }

    func testChannelCapGivesENOMEM() throws {
        _ = try startAndMount(extraArguments: ["--max-channels", "2"])
        var granted = 0
        var errnos: [Int32: Int] = [:]
        for _ in 0..<6 {
            let reply = client.call(.channel, ChannelReq())
            if let errno = reply.errno { errnos[errno, default: 0] += 1 } else if reply.mid == MID.channel.rawValue { granted += 1 }
        }
        XCTAssertEqual(granted, 2)
        XCTAssertEqual(errnos, [ENOMEM: 4])
        assertStillServing("after the channel cap")
    }

    /// A 16 KiB message size: announced in MountResp, PRead beyond it is
    /// ENOBUFS, Getdents64 answers fit in it (and still list everything),
    /// a longer frame ends the connection.
    func testSmallMessageSizeBoundsEveryAnswer() throws {
        let max: UInt32 = 16 * 1024
        for i in 0..<600 { XCTAssertTrue(FileManager.default.createFile(atPath: sandbox.served + "/dir/entry-\(i)", contents: nil)) }
        try startGofer(extraArguments: ["--max-message-size", "16K"])
        let mounted = try mount()
        XCTAssertEqual(mounted.maxMessageSize, max)
        let root = mounted.root.controlFD

        let file = try walkOne(root, "file").controlFD
        let open = try XCTUnwrap(decode(openAt(file, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        assertError(client.call(.pRead, PReadReq(offset: 0, fd: open, count: max)), [ENOBUFS], "PRead of max bytes")
        let fits = client.call(.pRead, PReadReq(offset: 0, fd: open, count: max - 8))
        XCTAssertEqual(decode(fits, PReadResp.self, .pRead).map { String(decoding: $0.buf, as: UTF8.self) }, Sandbox.servedFileContents)

        let dir = try walkOne(root, "dir").controlFD
        let dirOpen = try XCTUnwrap(decode(openAt(dir, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        var names = Set<String>()
        var count = -Int32.max
        for _ in 0..<1000 {
            let reply = client.call(.getdents64, Getdents64Req(dirFD: dirOpen, count: count))
            count = .max
            guard case .message(_, let payload, _, _) = reply, let resp = decode(reply, Getdents64Resp.self, .getdents64) else { break }
            XCTAssertLessThanOrEqual(payload.count, Int(max), "a Getdents64 answer larger than the message size")
            if resp.dirents.isEmpty { break }
            names.formUnion(resp.dirents.map(\.nameString))
        }
        XCTAssertEqual(names.subtracting([".", ".."]).count, 601, "every entry listed across batches")
        close([open, file, dirOpen, dir])

        client.sendRaw(SocketMessageHeader(payloadLength: max + 1, mid: MID.walk.rawValue).encoded)
        assertHangsUp("a frame of max+1 bytes")
    }

    func testOutOfRangeLimitsAreRefusedAtStartup() throws {
        for bad in [["--max-message-size", "1K"], ["--max-message-size", "1G"], ["--max-channels", "0"],
                    ["--max-channels", "1000"], ["--max-fds", "1"], ["--max-fds", "99999999"]] {
            let result = try HostileStore.runBinary(["serve", "--fd", "3", "--passthrough", sandbox.served] + bad)
            XCTAssertEqual(result.status, 2, "\(bad): \(result.output)")
        }
    }

    /// --scratch-limit (per serve process, shared by its connections): a file
    /// whose plaintext does not fit is served by RPCs, without a donated FD;
    /// smaller ones still get scratches.
    func testScratchLimitServesLargerFilesByRPC() throws {
        let store = try HostileStore()
        defer { store.remove() }
        let big = [UInt8](repeating: 0x5a, count: 100 * 1024)
        for (limit, expectDonatedBig) in [("64K", false), ("1M", true)] {
            try startGofer(serving: store.serveArguments + ["--scratch-limit", limit, "--donate-limit", "1M"])
            let root = try mount().root.controlFD
            if limit == "64K" {
                for (name, size) in [("big", big.count), ("small", 10 * 1024)] {
                    let made = try XCTUnwrap(decode(client.call(.openCreateAt, OpenCreateAtReq(
                        dirFD: root, uid: NoUID, gid: NoGID, mode: 0o644, flags: UInt32(O_RDWR), name: [UInt8](name))),
                        OpenCreateAtResp.self, .openCreateAt))
                    var offset = 0
                    while offset < size {
                        let n = min(8 * 1024, size - offset)
                        let reply = client.call(.pWrite, PWriteReq(offset: UInt64(offset), fd: made.newFD, buf: Array(big[offset..<(offset + n)])))
                        XCTAssertEqual(decode(reply, PWriteResp.self, .pWrite)?.count, UInt64(n))
                        offset += n
                    }
                    close([made.newFD, made.child.controlFD])
                }
            }
            for (name, expectDonated) in [("big", expectDonatedBig), ("small", true)] {
                let control = try walkOne(root, name).controlFD
                let reply = openAt(control, flags: O_RDWR)
                let opened = try XCTUnwrap(decode(reply, OpenAtResp.self, .openAt))
                XCTAssertEqual(reply.fdCount == 1, expectDonated, "--scratch-limit \(limit): \(name) donated \(reply.fdCount) FDs")
                let read = client.call(.pRead, PReadReq(offset: 0, fd: opened.openFD, count: 4096))
                XCTAssertEqual(decode(read, PReadResp.self, .pRead)?.buf, Array(big.prefix(4096)), "\(name) contents")
                close([opened.openFD, control])
            }
            finishGofer("--scratch-limit \(limit)")
        }
    }

    /// `count` walks to "file", pipelined.
    static func pipelinedWalks(_ client: RawClient, dir: FDID, count: Int) -> ExhaustionTests.WalkTally {
        ExhaustionTests.pipelinedWalks(client, dir: dir, name: "file", count: count)
    }
}
