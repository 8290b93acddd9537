import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// 10 000 FDs never closed: the gofer must hand them out or refuse with
/// EMFILE/ENFILE, never crash, and release every host FD when they are
/// closed or the connection ends.
final class ExhaustionTests: HostileTestCase {
    struct WalkTally {
        var ids: [FDID] = []
        var errnos: [Int32: Int] = [:]
        var other: [String] = []
    }

    /// Walks `name` from `dir` `count` times, pipelining `batch` requests at a time.
    static func pipelinedWalks(_ client: RawClient, dir: FDID, name: String, count: Int, batch: Int = 200) -> WalkTally {
        var tally = WalkTally()
        let frame = RawClient.frame(mid: MID.walk.rawValue, payload: WalkReq(dirFD: dir, path: [name]).encoded())
        var remaining = count
        while remaining > 0 {
            let n = min(batch, remaining)
            remaining -= n
            if let err = client.sendRaw(Array([[UInt8]](repeating: frame, count: n).joined())) {
                tally.other.append("send failed: errno \(err)")
                return tally
            }
            for _ in 0..<n {
                let reply = client.receive()
                if let errno = reply.errno {
                    tally.errnos[errno, default: 0] += 1
                } else if reply.mid == MID.walk.rawValue, let resp = try? WalkResp.decode(reply.payload ?? []),
                          resp.status == .success, resp.inodes.count == 1 {
                    tally.ids.append(resp.inodes[0].controlFD)
                } else {
                    tally.other.append("\(reply)")
                    if !(reply.mid != nil) { return tally }
                }
            }
        }
        return tally
    }

    func test10000UnclosedWalksThenCloseAll() throws {
        try startGofer()
        let beforeMount = hostFDCount("before Mount")
        let root = try mount().root.controlFD
        let start = Date()
        let tally = Self.pipelinedWalks(client, dir: root, name: "file", count: 10_000)
        let held = gofer?.steadyFDCount() ?? -1
        print("[fd] \(name) 10000 walks in \(String(format: "%.2f", Date().timeIntervalSince(start))) s: "
              + "\(tally.ids.count) FDs issued, errors \(tally.errnos), host FDs held \(held)")
        XCTAssertEqual(tally.other, [], "unexpected replies")
        XCTAssertTrue(Set(tally.errnos.keys).isSubset(of: [EMFILE, ENFILE]), "walk errors other than EMFILE/ENFILE: \(tally.errnos)")
        XCTAssertEqual(Set(tally.ids).count, tally.ids.count, "an FDID was issued twice")
        assertStillServing("while holding \(tally.ids.count) FDs")
        close(tally.ids + [root])
        assertHostFDs(back: beforeMount, "10000 walks closed")
    }

    func test10000OpenFDsOnOneFile() throws {
        try startGofer()
        let beforeMount = hostFDCount("before Mount")
        let root = try mount().root.controlFD
        let file = try walkOne(root, "file").controlFD
        let frame = RawClient.frame(mid: MID.openAt.rawValue, payload: OpenAtReq(fd: file, flags: UInt32(O_RDWR)).encoded())
        var ids: [FDID] = []
        var errnos: [Int32: Int] = [:]
        var donated = 0
        for _ in 0..<50 {
            XCTAssertNil(client.sendRaw(Array([[UInt8]](repeating: frame, count: 200).joined())))
            for _ in 0..<200 {
                let reply = client.receive()
                donated += reply.fdCount
                if let errno = reply.errno { errnos[errno, default: 0] += 1 }
                else if let o = try? OpenAtResp.decode(reply.payload ?? []), reply.mid == MID.openAt.rawValue { ids.append(o.openFD) }
                else { XCTFail("OpenAt: \(reply)"); return }
            }
        }
        let held = gofer?.steadyFDCount() ?? -1
        print("[fd] \(name) 10000 OpenAt: \(ids.count) open FDs, \(donated) donated, errors \(errnos), host FDs held \(held)")
        XCTAssertTrue(Set(errnos.keys).isSubset(of: [EMFILE, ENFILE]), "errors other than EMFILE/ENFILE: \(errnos)")
        close(ids + [file, root])
        assertHostFDs(back: beforeMount, "10000 open FDs closed")
    }

    func testWalksBeyondTheHostFileLimitGetEMFILE() throws {
        try startGofer()
        let beforeMount = hostFDCount("before Mount")
        try XCTUnwrap(gofer).setFileLimit(64)
        let root = try mount().root.controlFD
        let tally = Self.pipelinedWalks(client, dir: root, name: "file", count: 10_000)
        print("[fd] \(name) RLIMIT_NOFILE 64: \(tally.ids.count) walks succeeded, errors \(tally.errnos)")
        XCTAssertEqual(tally.other, [], "unexpected replies")
        XCTAssertGreaterThan(tally.errnos[EMFILE, default: 0] + tally.errnos[ENFILE, default: 0], 0,
                             "expected EMFILE once the host limit is reached")
        XCTAssertTrue(Set(tally.errnos.keys).isSubset(of: [EMFILE, ENFILE]), "errors other than EMFILE/ENFILE: \(tally.errnos)")
        // Other requests while exhausted: errors, not crashes.
        let file = tally.ids.first ?? root
        let open = openAt(file, flags: O_RDONLY)
        XCTAssertTrue(open.errno != nil || open.mid == MID.openAt.rawValue, "OpenAt while exhausted: \(open)")
        let created = client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644, flags: 2, name: [UInt8]("new")))
        XCTAssertTrue(created.errno != nil || created.mid == MID.openCreateAt.rawValue, "OpenCreateAt while exhausted: \(created)")
        if created.errno != nil { XCTAssertNil(sandbox.lstatServed("new"), "failed OpenCreateAt left a file behind") }
        let channel = client.call(.channel, ChannelReq())
        XCTAssertTrue(channel.errno != nil || channel.mid == MID.channel.rawValue, "Channel while exhausted: \(channel)")
        var ids = tally.ids + [root]
        if let o = try? OpenAtResp.decode(open.payload ?? []), open.mid == MID.openAt.rawValue { ids.append(o.openFD) }
        if let c = try? OpenCreateAtResp.decode(created.payload ?? []), created.mid == MID.openCreateAt.rawValue {
            ids += [c.child.controlFD, c.newFD]
        }
        close(ids)
        // Recovered: the same walk works again.
        let again = try mount().root.controlFD
        XCTAssertEqual(walk(again, ["file"])?.status, .success)
        close(Array(1...65_535))
        // A channel (if one was made) holds its own host FDs until hang-up.
        if channel.mid != MID.channel.rawValue { assertHostFDs(back: beforeMount, "EMFILE recovery") }
    }

    func testHostFDsAndThreadsReleasedWhenTheConnectionCloses() throws {
        // Listen mode keeps the process alive across connections, so what a
        // closed connection leaves behind is visible.
        let socketPath = sandbox.base + ".sock"
        defer { unlink(socketPath) }
        let listener = try GoferProcess.spawn(
            arguments: ["serve", "--listen", socketPath, "--passthrough", sandbox.served, "--log-level", "info"],
            connectionFD: nil, logPath: sandbox.logPath)
        defer { _ = listener.terminate() }
        let deadline = Date().addingTimeInterval(10)
        while access(socketPath, F_OK) != 0 && Date() < deadline { usleep(10_000) }
        let baseline = listener.steadyFDCount() ?? -1
        let threadsBefore = listener.statusField("Threads") ?? -1

        for round in 1...2 {
            let conn = try XCTUnwrap(Self.connect(socketPath), "cannot connect to \(socketPath)")
            let c = RawClient(fd: conn)
            let root = try XCTUnwrap(decode(c.call(.mount, MountReq()), MountResp.self, .mount)).root.controlFD
            let tally = Self.pipelinedWalks(c, dir: root, name: "file", count: 10_000)
            XCTAssertEqual(tally.other, [])
            for _ in 0..<20 { _ = c.call(.openAt, OpenAtReq(fd: tally.ids.first ?? root, flags: 0)) }
            var channels = 0
            for _ in 0..<3 where c.call(.channel, ChannelReq()).mid == MID.channel.rawValue { channels += 1 }
            _ = c.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: [UInt8]("sock\(round)")))
            let held = listener.steadyFDCount() ?? -1
            print("[fd] \(name) round \(round): \(tally.ids.count) walks, \(channels) channels; host FDs \(baseline) idle, \(held) held")
            c.close()  // hang up without closing a single FDID
            let after = listener.settledFDCount(expecting: baseline, timeout: 10) ?? -1
            print("[fd] \(name) round \(round): before \(baseline), after hang-up \(after)")
            XCTAssertEqual(after, baseline, "host FDs left after the connection closed:\n" + listener.fdTargets().joined(separator: "\n"))
            XCTAssertTrue(listener.isAlive(), "listener died: \(String(describing: listener.exit)); log:\n\(listener.logTail())")
        }
        var threadsAfter = listener.statusField("Threads") ?? -1
        let threadDeadline = Date().addingTimeInterval(5)
        while threadsAfter > threadsBefore && Date() < threadDeadline {
            usleep(20_000)
            threadsAfter = listener.statusField("Threads") ?? -1
        }
        print("[threads] \(name): before \(threadsBefore), after \(threadsAfter)")
        XCTAssertEqual(threadsAfter, threadsBefore, "serving threads left after connections closed")
    }

    /// Connects an AF_UNIX stream socket to `path`.
    static func connect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { Glibc.close(fd); return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { Glibc.close(fd); return nil }
        return fd
    }
}
