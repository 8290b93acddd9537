import CLinux
import Foundation
import Lisafs
import SealedStore
import XCTest

/// `sealgofer serve --store` under its seccomp allowlist (kill mode, the
/// default): the model workload plus every other operation the SealedProvider
/// implements runs in the real child process, with tight limits so the RPC
/// path, scratch eviction and periodic commits all happen, then SIGTERM commits
/// and the child must exit 0 — any syscall missing from the allowlist kills it
/// with SIGSYS instead. (To list missing syscalls rather than die on the first,
/// run with SEALGOFER_SECCOMP=log and read `dmesg | grep type=1326`.)
final class SeccompServeTests: XCTestCase {
    func testStoreServingWorkloadRunsUnderTheAllowlist() throws {
        let seed = TestEnvironment.seed("SEALGOFER_FSX_SEED")
        print("seccomp serve: seed \(seed)")
        let fixture = try StoreFixture(chunkSize: 4096)
        defer { fixture.remove() }
        let child = try CrashTests.Child.start(fixture, extra: [
            "--commit-interval", "0.05", "--scratch-limit", "96K", "--donate-limit", "48K", "--log-level", "info",
        ])
        var exited = false
        defer { if !exited { child.kill() } }
        do {
            try run(child, fixture, seed: seed, exited: &exited)
        } catch {
            XCTFail("\(error); serve log:\n\(serveLog(fixture))")
        }
    }

    private func run(_ child: CrashTests.Child, _ fixture: StoreFixture, seed: UInt64, exited: inout Bool) throws {
        let client = child.client
        let root = try client.mount().root.controlFD

        // Namespace, attribute and directory operations beyond the model's.
        let dir = try client.mkdir(root, "dir")
        let link = try client.symlink(dir.controlFD, "link", target: "../a")
        let made = try client.create(dir.controlFD, "file", mode: 0o600)
        if let host = made.donated { try hostWrite(host, Array("in a subdirectory".utf8), at: 0); Glibc.close(host) }
        try client.flush(made.fd)
        var attributes = SetStatReq(fd: made.inode.controlFD, mask: StatxMask.mode | StatxMask.uid | StatxMask.gid
                                        | StatxMask.atime | StatxMask.mtime)
        attributes.mode = 0o640
        attributes.uid = 1234
        attributes.gid = 5678
        attributes.atime = Timespec(sec: 1_000_000, nsec: 5)
        attributes.mtime = Timespec(sec: 2_000_000, nsec: 7)
        let set = try client.setStat(attributes)
        XCTAssertEqual(set.failureMask, 0, "SetStat failed: errno \(set.failureErrNo)")
        let st = try client.fstat(made.inode.controlFD)
        XCTAssertEqual(st.mode & 0o7777, 0o640)
        XCTAssertEqual(st.uid, 1234)
        XCTAssertEqual(st.gid, 5678)
        XCTAssertEqual(try client.list(dir.controlFD), ["file", "link"])
        _ = try client.call(.readLinkAt, ReadLinkAtReq(fd: link.controlFD), ReadLinkAtResp.self)
        _ = try client.call(.fStatFS, FStatFSReq(fd: root), StatFS.self)
        _ = try client.call(.fAllocate, FAllocateReq(fd: made.fd, mode: 0, offset: 0, length: 8192), FAllocateResp.self)
        try client.fsync([made.fd])
        try client.close([made.fd, made.inode.controlFD, link.controlFD])
        try client.rename(dir.controlFD, "file", dir.controlFD, "renamed")
        try client.unlink(dir.controlFD, "renamed")
        try client.unlink(dir.controlFD, "link")
        try client.close([dir.controlFD])
        try client.unlink(root, "dir", flags: UInt32(AT_REMOVEDIR))

        // The model workload: donated FDs and RPC I/O, truncation, renames,
        // links, unlinks, flush/fsync/close commits.
        var model = ModelWorkload(seed: seed, chunk: 4096, maxSize: 160 * 1024)
        do {
            for _ in 0..<600 { try model.step(client, root: root) }
        } catch {
            XCTFail("seed \(seed), step \(model.steps): \(error)\n\(model.trace)\nserve log:\n\(serveLog(fixture))")
            return
        }
        // Let the periodic committer run on the open files, then SIGTERM: it
        // commits the rest and exits 0.
        usleep(200_000)
        XCTAssertEqual(Glibc.kill(child.pid, SIGTERM), 0)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child.pid, &status, 0), child.pid)
        exited = true
        client.shutdown()
        for handle in model.handles { if let host = handle.host { Glibc.close(host) } }
        XCTAssertEqual(status, 0, "serve ended with wait status \(status) (SIGSYS = \(SIGSYS)): log:\n\(serveLog(fixture))")
        let log = serveLog(fixture)
        XCTAssertTrue(log.contains("seccomp filter installed"), "the filter was not installed: \(log)")
        XCTAssertFalse(log.contains("seccomp disabled"), log)
        // SIGTERM committed what every open handle held.
        for handle in model.handles { model.committed[handle.inode] = model.contents[handle.inode] }
        do { try model.checkCommitted(fixture) } catch { XCTFail("seed \(seed): \(error)\n\(model.trace)") }
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "seed \(seed): \(report.damage)")
    }

    private func serveLog(_ fixture: StoreFixture) -> String {
        (try? String(contentsOfFile: fixture.root + "/serve.log", encoding: .utf8)) ?? "(no log)"
    }
}
