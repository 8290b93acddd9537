import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Hostile concurrency through several channels at once (one server thread
/// each): closing FDs while other threads use them, renames racing walks and
/// creations, and a hang-up while every channel is busy. Any request that
/// gets no answer in 10 s is a hang; the gofer must stay up and leak nothing.
final class ConcurrencyTests: HostileTestCase {
    /// Channel RPCs until `count` channels are connected (fails if fewer).
    private func openChannels(_ count: Int) throws -> [FlipcallClient] {
        var channels: [FlipcallClient] = []
        for _ in 0..<count {
            let reply = client.call(.channel, ChannelReq(), keepFDs: true)
            guard let resp = decode(reply, ChannelResp.self, .channel) else {
                reply.fds.forEach { _ = Glibc.close($0) }
                break
            }
            guard let channel = FlipcallClient(fds: reply.fds, response: resp) else {
                XCTFail("flipcall handshake failed")
                break
            }
            channels.append(channel)
        }
        XCTAssertEqual(channels.count, count, "could not open \(count) channels")
        if channels.count != count { throw TestAbort(reason: "channels") }
        return channels
    }

    /// Thread-safe record of what the racing threads saw.
    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var failures: [String] = []
        private(set) var requests = 0
        private var ids: [FDID] = []

        func record(_ reply: Reply, _ what: String) {
            lock.lock(); defer { lock.unlock() }
            requests += 1
            switch reply {
            case .message: break
            default: if failures.count < 20 { failures.append("\(what): \(reply)") }
            }
        }
        func issue(_ id: FDID) { lock.lock(); ids.append(id); if ids.count > 64 { ids.removeFirst(32) }; lock.unlock() }
        func someIDs() -> [FDID] { lock.lock(); defer { lock.unlock() }; return Array(ids.suffix(8)) }
    }

    /// Runs each body on its own thread, repeatedly, for `seconds`.
    private func race(seconds: Double, _ bodies: [(Int) -> Void]) {
        let group = DispatchGroup()
        let deadline = Date().addingTimeInterval(seconds)
        for body in bodies {
            group.enter()
            Thread {
                var i = 0
                while Date() < deadline { body(i); i += 1 }
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + seconds + 30), .success, "racing threads did not finish (hang)")
    }

    func testChannelsServeRequests() throws {
        let root = try startAndMount()
        let channels = try openChannels(2)
        for channel in channels {
            let reply = channel.call(.fStat, StatReq(fd: root))
            XCTAssertNotNil(decode(reply, Statx.self, .fStat), "FStat over a channel: \(reply)")
            let walked = channel.call(.walk, WalkReq(dirFD: root, path: ["dir", "inner"]))
            XCTAssertEqual(decode(walked, WalkResp.self, .walk)?.inodes.count, 2)
        }
    }

    func testCloseRacesUseOfTheSameFDs() throws {
        try startGofer()
        let beforeMount = hostFDCount("before Mount")
        let root = try mount().root.controlFD
        let channels = try openChannels(3)
        let withChannels = hostFDCount("with 3 channels")
        let outcome = Outcome()
        race(seconds: 1.5, [
            { _ in
                let walked = channels[0].call(.walk, WalkReq(dirFD: root, path: ["dir", "inner"]))
                outcome.record(walked, "walk")
                if let resp = try? WalkResp.decode(walked.payload ?? []) { resp.inodes.forEach { outcome.issue($0.controlFD) } }
                if let last = outcome.someIDs().last {
                    let opened = channels[0].call(.openAt, OpenAtReq(fd: last, flags: 0))
                    outcome.record(opened, "open")
                    if let o = try? OpenAtResp.decode(opened.payload ?? []), opened.mid == MID.openAt.rawValue { outcome.issue(o.openFD) }
                }
            },
            { _ in outcome.record(channels[1].call(.close, CloseReq(fds: outcome.someIDs())), "close") },
            { i in
                for id in outcome.someIDs() {
                    let c = channels[2]
                    switch i % 5 {
                    case 0: outcome.record(c.call(.fStat, StatReq(fd: id)), "fstat")
                    case 1: outcome.record(c.call(.pRead, PReadReq(offset: 0, fd: id, count: 64)), "pread")
                    case 2: outcome.record(c.call(.walk, WalkReq(dirFD: id, path: ["inner"])), "walk from")
                    case 3: outcome.record(c.call(.getdents64, Getdents64Req(dirFD: id, count: 4096)), "getdents")
                    default: outcome.record(c.call(.close, CloseReq(fds: [id, id])), "double close")
                    }
                }
            },
            { _ in
                outcome.record(self.client.call(.fSync, FsyncReq(fds: outcome.someIDs())), "fsync")
            },
        ])
        print("[race] \(name): \(outcome.requests) requests")
        XCTAssertEqual(outcome.failures, [], "requests without an answer")
        assertStillServing("after the close/use race")
        close(Array(1...65_535).filter { $0 != root })
        assertHostFDs(back: withChannels, "close/use race, all closed")
        XCTAssertGreaterThanOrEqual(withChannels, beforeMount)
    }

    func testRenamesRaceWalksAndCreations() throws {
        let root = try startAndMount()
        for path in [["a"], ["b"], ["a", "x"], ["b", "x"]] {
            let parent = path.count == 1 ? root : try walkOne(root, path[0]).controlFD
            let made = client.call(.mkdirAt, MkdirAtReq(dirFD: parent, uid: 0, gid: 0, mode: 0o755, name: [UInt8](path.last!)))
            XCTAssertEqual(made.mid, MID.mkdirAt.rawValue, "mkdir \(path): \(made)")
        }
        let channels = try openChannels(4)
        let baseline = hostFDCount("with 4 channels")
        let outcome = Outcome()
        let a = try walkOne(root, "a").controlFD
        let b = try walkOne(root, "b").controlFD
        race(seconds: 2, [
            { i in
                let c = channels[0]
                if i % 2 == 0 {
                    outcome.record(c.call(.renameAt2, RenameAt2Req(oldDir: root, newDir: root, oldName: [UInt8]("a"),
                                                                   newName: [UInt8]("b"), flags: 2)), "exchange a b")
                } else {
                    outcome.record(c.call(.renameAt, RenameAtReq(oldDir: a, newDir: b, oldName: [UInt8]("x"),
                                                                 newName: [UInt8]("y"))), "move a/x b/y")
                    outcome.record(c.call(.renameAt, RenameAtReq(oldDir: b, newDir: a, oldName: [UInt8]("y"),
                                                                 newName: [UInt8]("x"))), "move b/y a/x")
                }
            },
            { i in
                let c = channels[1]
                let walked = c.call(.walk, WalkReq(dirFD: root, path: [i % 2 == 0 ? "a" : "b", "x", "f\(i % 7)"]))
                outcome.record(walked, "walk")
                if let resp = try? WalkResp.decode(walked.payload ?? []) {
                    outcome.record(c.call(.close, CloseReq(fds: resp.inodes.map(\.controlFD))), "close walked")
                }
            },
            { i in
                let c = channels[2]
                let walked = c.call(.walk, WalkReq(dirFD: root, path: [i % 2 == 0 ? "b" : "a", "x"]))
                outcome.record(walked, "walk x")
                guard let x = (try? WalkResp.decode(walked.payload ?? []))?.inodes.last?.controlFD else { return }
                let name = [UInt8]("f\(i % 7)")
                let created = c.call(.openCreateAt, OpenCreateAtReq(dirFD: x, uid: 0, gid: 0, mode: 0o644, flags: 2, name: name))
                outcome.record(created, "create")
                var ids = (try? WalkResp.decode(walked.payload ?? []))?.inodes.map(\.controlFD) ?? []
                if let made = try? OpenCreateAtResp.decode(created.payload ?? []), created.mid == MID.openCreateAt.rawValue {
                    ids += [made.child.controlFD, made.newFD]
                    outcome.record(c.call(.pWrite, PWriteReq(offset: 0, fd: made.newFD, buf: name)), "write")
                }
                outcome.record(c.call(.unlinkAt, UnlinkAtReq(dirFD: x, flags: 0, name: name)), "unlink")
                let made = c.call(.mkdirAt, MkdirAtReq(dirFD: x, uid: 0, gid: 0, mode: 0o755, name: name + [0x64]))
                outcome.record(made, "mkdir")
                if let dir = try? MkdirAtResp.decode(made.payload ?? []), made.mid == MID.mkdirAt.rawValue {
                    ids.append(dir.childDir.controlFD)
                }
                outcome.record(c.call(.unlinkAt, UnlinkAtReq(dirFD: x, flags: 0x200, name: name + [0x64])), "rmdir")
                outcome.record(c.call(.close, CloseReq(fds: ids)), "close created")
            },
            { i in
                let c = channels[3]
                outcome.record(c.call(.walkStat, WalkReq(dirFD: root, path: ["", i % 2 == 0 ? "a" : "b", "x"])), "walkstat")
                outcome.record(c.call(.fStat, StatReq(fd: i % 2 == 0 ? a : b)), "fstat")
            },
        ])
        print("[race] \(name): \(outcome.requests) requests")
        XCTAssertEqual(outcome.failures, [], "requests without an answer")
        assertStillServing("after the rename race")
        close([a, b])
        assertHostFDs(back: baseline, "rename race")
        // The tree is still just a, b and their x (whichever way round).
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: sandbox.served)) ?? [])
        XCTAssertTrue(names.isSuperset(of: ["a", "b"]), "served now holds \(names)")
    }

    func testHangUpWhileEveryChannelIsBusy() throws {
        let root = try startAndMount()
        let channels = try openChannels(4)
        let outcome = Outcome()
        let group = DispatchGroup()
        let stop = Date().addingTimeInterval(20)
        for channel in channels {
            group.enter()
            Thread {
                while Date() < stop {
                    let reply = channel.call(.walk, WalkReq(dirFD: root, path: ["dir", "inner"]))
                    if reply.isClosed { break }
                    if case .timedOut = reply { outcome.record(reply, "walk during hang-up"); break }
                }
                group.leave()
            }.start()
        }
        usleep(300_000)
        let started = Date()
        finishGofer("hang-up with 4 busy channels")
        XCTAssertEqual(group.wait(timeout: .now() + 15), .success, "channel threads never saw the shutdown")
        print("[race] \(name): gofer gone \(String(format: "%.2f", Date().timeIntervalSince(started))) s after hang-up")
        XCTAssertEqual(outcome.failures, [])
    }
}
