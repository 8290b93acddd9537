import CLinux
import Foundation
import Lisafs
import SealedProvider
import SealedStore
import XCTest

/// SIGKILL `sealgofer serve --fd 3 --store …` at random instants while the
/// model workload runs over its socket; after each kill the store is checked
/// offline: every file holds its last acknowledged commit or the one in flight,
/// and `verify` is clean. Then a new server continues from that state.
///
/// SEALGOFER_CRASH_SEED reproduces the workload (kill instants are timing);
/// SEALGOFER_SERVE_KILLS sets the number of kills (default 100, 10–30 s; 1000 with
/// SEALGOFER_LONG_TESTS=1).
final class CrashTests: XCTestCase {
    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("sealgofer").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/sealgofer").path
    }()

    /// A `sealgofer serve` child on one end of a socketpair.
    struct Child {
        let pid: pid_t
        let client: LisafsClient

        /// `fixtureScratch`: pass `--scratch` with the fixture's scratch directory; without it
        /// `serve` picks its own (the private tmpfs as root).
        static func start(_ fixture: StoreFixture, extra: [String] = [], fixtureScratch: Bool = true) throws -> Child {
            var pair: [Int32] = [-1, -1]
            guard clinux_stream_pair(&pair) == 0 else { throw Errno.current }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, pair[1], 3)
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, fixture.root + "/serve.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
            let args = [binary, "serve", "--fd", "3", "--store", fixture.storePath, "--key-file", fixture.keyPath]
                + (fixtureScratch ? ["--scratch", fixture.scratchPath] : []) + ["--commit-interval", "0"] + extra
            let argv = args.map { strdup($0) } + [nil]
            defer { for a in argv { free(a) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, binary, &actions, nil, argv, environ)
            Glibc.close(pair[1])
            guard rc == 0 else { Glibc.close(pair[0]); throw Errno(rc) }
            return Child(pid: pid, client: LisafsClient(connectedFD: pair[0]))
        }

        func kill() {
            _ = Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            client.shutdown()
        }
    }

    func testKillAtRandomInstantsKeepsLastOrNextCommit() throws {
        let seed = TestEnvironment.seed("SEALGOFER_CRASH_SEED")
        let kills = TestEnvironment.value("SEALGOFER_SERVE_KILLS").flatMap(Int.init) ?? (TestEnvironment.isLong ? 1000 : 100)
        print("crash: seed \(seed) (SEALGOFER_CRASH_SEED=\(seed) reproduces the workload), \(kills) kills")
        let fixture = try StoreFixture(chunkSize: 4096)
        defer { fixture.remove() }
        var model = ModelWorkload(seed: seed, chunk: 4096, maxSize: 160 * 1024)
        var timing = SeededRandom(seed: seed ^ 0x5EED)

        // Files are created before the killing starts (see ModelWorkload.namespaceOperations).
        do {
            let child = try Child.start(fixture)
            let root = try child.client.mount().root.controlFD
            for name in model.names.prefix(4) {
                let c = try child.client.create(root, name)
                try child.client.pwrite(c.fd, model.data(Int.random(in: 0..<20_000, using: &timing)), at: 0)
                try child.client.close([c.fd, c.inode.controlFD])
            }
            child.kill()
        }
        // What the files hold now is the starting point (read back, not assumed).
        model.namespaceOperations = false
        model.keepsHistory = true
        try fixture.withStore { store in
            for (i, name) in model.names.prefix(4).enumerated() {
                let bytes = try XCTUnwrap(try StoreFixture.plaintext(store, name))
                model.links[name] = i
                model.contents[i] = bytes
                model.committed[i] = bytes
            }
        }
        model.nextInode = 4

        var killedMidCommit = 0
        for round in 0..<kills {
            let child = try Child.start(fixture)
            model.note("round \(round): server pid \(child.pid)")
            let killer = DispatchWorkItem { _ = Glibc.kill(child.pid, SIGKILL) }
            do {
                let root = try child.client.mount().root.controlFD
                // A random instant in the next ~50 ms of workload (a few hundred RPCs).
                DispatchQueue.global().asyncAfter(deadline: .now() + .microseconds(Int.random(in: 0..<50_000, using: &timing)),
                                                  execute: killer)
                for _ in 0..<2_000 { try model.step(child.client, root: root) }
                XCTFail("round \(round): the child survived 2000 steps")
            } catch let error as LisafsClient.ServerError {
                killer.cancel()
                child.kill()
                XCTFail("seed \(seed), round \(round): the server answered \(error)\n\(model.trace)")
                return
            } catch let error as ModelMismatch {
                killer.cancel()
                child.kill()
                XCTFail("seed \(seed), round \(round): \(error)\n\(model.trace)")
                return
            } catch {
                // The connection died: the child was killed.
                model.note("killed (\(error)); in flight: \(model.inflight.map { "inode \($0.inode), \($0.content.count) bytes" } ?? "nothing")")
            }
            child.kill()
            if model.inflight != nil { killedMidCommit += 1 }
            // Every file: its last commit, or the one in flight.
            var mismatch: String? = nil
            try fixture.withStore { store in
                for (name, inode) in model.links {
                    let got = try StoreFixture.plaintext(store, name)
                    let last = model.committed[inode]
                    let next = model.inflight?.inode == inode ? model.inflight?.content : nil
                    if got == last { continue }
                    if let next, got == next { model.committed[inode] = next; continue }
                    let matching = model.history[inode]?.last { $0.content == got }.map { "step \($0.step)'s content" } ?? "no content since the last commit"
                    mismatch = "\(name) (inode \(inode)) holds \(got?.count ?? -1) bytes (\(matching)); last commit \(last?.count ?? -1), in flight \(next?.count ?? -1)"
                }
                let report = Verifier.run(store: store)
                if !report.isClean { mismatch = (mismatch ?? "") + " verify: \(report.damage)" }
            }
            if let mismatch {
                XCTFail("seed \(seed), round \(round): \(mismatch)\n\(model.trace)")
                return
            }
            // Continue from what is on disk; handles died with the server.
            for h in model.handles { if let host = h.host { Glibc.close(host) } }
            model.handles = []
            model.inflight = nil
            for (_, inode) in model.links { model.contents[inode] = model.committed[inode]; model.history[inode] = [] }
        }
        print("crash: seed \(seed): \(kills) kills, \(killedMidCommit) during a commit RPC, \(model.steps) steps")
        XCTAssertGreaterThan(killedMidCommit, 0, "some kills landed inside a commit")
    }

    /// SIGTERM: everything written (not flushed) is committed, then exit 0.
    func testSIGTERMCommitsEverythingAndExits() throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let child = try Child.start(fixture)
        let root = try child.client.mount().root.controlFD
        let c = try child.client.create(root, "unflushed")
        let fd = try XCTUnwrap(c.donated)
        defer { Glibc.close(fd) }
        try hostWrite(fd, Array("written through the FD, never flushed".utf8), at: 0)
        let other = try child.client.create(root, "rpc")
        try child.client.pwrite(other.fd, Array("via PWrite".utf8), at: 0)
        XCTAssertEqual(Glibc.kill(child.pid, SIGTERM), 0)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child.pid, &status, 0), child.pid)
        XCTAssertEqual(status, 0, "exit status 0 after SIGTERM")
        child.client.shutdown()
        XCTAssertEqual(try fixture.plaintext("unflushed"), Array("written through the FD, never flushed".utf8))
        XCTAssertEqual(try fixture.plaintext("rpc"), Array("via PWrite".utf8))
        XCTAssertTrue(try fixture.verify().isClean)
    }
}
