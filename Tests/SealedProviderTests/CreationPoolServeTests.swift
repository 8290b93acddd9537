import CLinux
import Foundation
import Lisafs
import SealedProvider
import SealedStore
import XCTest

/// The creation pool seen from the client: files created through it have the
/// mode, owner and times they would have without it, and a server killed with a
/// full pool leaves a store that needs nothing but the usual recovery.
final class CreationPoolServeTests: XCTestCase {
    /// What the client and the disk see of one created file.
    struct Outcome: Equatable {
        var replyMode: UInt32, replyUID: UInt32, replyGID: UInt32
        var diskMode: UInt32, diskUID: UInt32, diskGID: UInt32
        var size: UInt64
    }

    /// Every combination of mode and owner the sentry may send, under umask 022,
    /// with the pool (16) and without it (0): identical results, fresh times.
    func testModeOwnerAndUmaskAreTheSameWithAndWithoutThePool() throws {
        let mask = umask(0o022)   // the provider (and its pool) read it at start
        defer { umask(mask) }
        let owners: [(UID, GID)] = getuid() == 0 ? [(NoUID, NoGID), (UID(1234), GID(5678)), (NoUID, GID(4321))] : [(NoUID, NoGID)]
        let modes: [UInt16] = [0o644, 0o600, 0o640, 0o777, 0o700, 0o2755, 0o4755, 0o1666, 0o000]
        var results: [Int: [String: Outcome]] = [:]
        for pool in [0, 16] {
            let fixture = try StoreFixture()
            defer { fixture.remove() }
            let provider = try fixture.provider(fixture.options { $0.creationPool = pool })
            let client = try LisafsClient(server: Server(provider: provider))
            let root = try client.mount().root.controlFD
            if pool > 0 { XCTAssertTrue(provider.store.waitForFullCreationPool(seconds: 10)) }
            var before = timespec()
            clock_gettime(CLOCK_REALTIME, &before)
            var seen: [String: Outcome] = [:]
            for (i, mode) in modes.enumerated() {
                for (j, owner) in owners.enumerated() {
                    let name = "f\(i)-\(j)"
                    var fds: [Int32] = []
                    let r = try client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: owner.0, gid: owner.1, mode: mode,
                                                                           flags: UInt32(O_WRONLY), name: Array(name.utf8)),
                                            OpenCreateAtResp.self, fds: &fds)
                    fds.forEach { _ = Glibc.close($0) }
                    try client.close([r.newFD, r.child.controlFD])
                    var st = stat()
                    XCTAssertEqual(stat(fixture.storePath + "/data/" + name, &st), 0)
                    XCTAssertGreaterThanOrEqual(st.st_mtim.tv_sec, before.tv_sec, "pool \(pool), \(name): the create's own times")
                    XCTAssertEqual(st.st_nlink, 1, "pool \(pool), \(name)")
                    let s = r.child.stat
                    seen[name] = Outcome(replyMode: UInt32(s.mode) & 0o7777, replyUID: s.uid, replyGID: s.gid,
                                         diskMode: UInt32(st.st_mode) & 0o7777, diskUID: st.st_uid, diskGID: st.st_gid,
                                         size: s.size)
                }
            }
            if pool > 0 {
                // 27 creates took pooled files (or made their own when it ran dry); the refill
                // thread runs at nice 19, so let it catch up before counting what it made.
                for _ in 0..<1000 where provider.store.creationPoolStatistics.made <= 16 { usleep(10_000) }
                XCTAssertGreaterThan(provider.store.creationPoolStatistics.made, 16, "the creates used the pool")
            }
            client.shutdown()
            provider.shutdown()
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixture.storePath + "/meta/pending"), [],
                           "shutdown removes the pool's entries")
            XCTAssertEqual(fixture.metadataCount().sidecars, modes.count * owners.count)
            let report = try fixture.verify()
            XCTAssertTrue(report.isClean, "pool \(pool): \(report.damage)")
            results[pool] = seen
        }
        XCTAssertEqual(results[0], results[16])
        // And what they are: exactly the mode the sentry sent (it applied its own
        // umask; the gofer's umask strips nothing), the sentry's owner.
        XCTAssertEqual(results[16]?["f0-0"]?.diskMode, 0o644)
        XCTAssertEqual(results[16]?["f3-0"]?.diskMode, 0o777)
        XCTAssertEqual(results[16]?["f3-0"]?.replyMode, 0o777)
        if getuid() == 0 {
            XCTAssertEqual(results[16]?["f1-1"]?.diskUID, 1234)
            XCTAssertEqual(results[16]?["f1-1"]?.diskGID, 5678)
            XCTAssertEqual(results[16]?["f1-2"]?.diskGID, 4321)
        }
    }

    /// SIGKILL `sealgofer serve` while its pool is full: the next open of the
    /// store drops every pooled entry with its sidecar (§7.1: a `.new` with link
    /// count 1), `verify` exits 0, and the files created before are intact.
    func testSIGKILLWithAFullPoolLeavesNothing() throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let child = try CrashTests.Child.start(fixture)
        let root = try child.client.mount().root.controlFD
        let payload = Array("kept through the kill".utf8)
        for name in ["a", "b"] {
            let c = try child.client.create(root, name)
            try child.client.pwrite(c.fd, payload, at: 0)
            if let d = c.donated { Glibc.close(d) }
            try child.client.close([c.fd, c.inode.controlFD])
        }
        func pooled() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: fixture.storePath + "/meta/pending")) ?? [])
                .filter { $0.hasSuffix(".new") }.count
        }
        // 16 made at start; the two creates took two, which it refills only once
        // half is taken (or they came during the first fill): 14 to 16.
        let deadline = Date(timeIntervalSinceNow: 10)
        while pooled() < 14 && Date() < deadline { usleep(10_000) }
        usleep(300_000)
        let inPool = pooled()
        XCTAssertGreaterThanOrEqual(inPool, 14, "serve keeps a pool")
        child.kill()
        XCTAssertEqual(pooled(), inPool, "killed: the entries are still on disk")

        let store = try SealedStore.open(at: fixture.storePath, key: fixture.key)
        XCTAssertEqual(store.recoveredOperations, inPool)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixture.storePath + "/meta/pending"), [])
        XCTAssertEqual(try StoreFixture.plaintext(store, "a"), payload)
        XCTAssertEqual(try StoreFixture.plaintext(store, "b"), payload)
        store.close()
        XCTAssertEqual(fixture.metadataCount().sidecars, 2, "no orphan sidecar")

        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: CrashTests.binary)
        verify.arguments = ["verify", "--store", fixture.storePath, "--key-file", fixture.keyPath]
        verify.standardOutput = FileHandle.nullDevice
        try verify.run()
        verify.waitUntilExit()
        XCTAssertEqual(verify.terminationStatus, 0, "sealgofer verify")
    }
}
