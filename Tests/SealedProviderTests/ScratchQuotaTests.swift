import CLinux
import Foundation
import Lisafs
import SealedProvider
import SealedStore
import XCTest

/// `serve --store` without `--scratch`, as root: scratch files live on a
/// private tmpfs sized from `--scratch-limit`, so the sandbox's writes through
/// a donated scratch FD end in ENOSPC at the cap instead of filling the host's
/// /dev/shm; what was committed stays intact. Also: the locked-down gofer
/// cannot open a host path outside its store and scratch (Landlock).
final class ScratchQuotaTests: XCTestCase {
    /// `sealgofer serve --fd 3 --store … ARGS` with stderr in the fixture's serve.log.
    private func startServe(_ fixture: StoreFixture, _ extra: [String]) throws -> (pid: pid_t, client: LisafsClient) {
        let child = try CrashTests.Child.start(fixture, extra: ["--log-level", "info"] + extra, fixtureScratch: false)
        return (child.pid, child.client)
    }

    private func serveLog(_ fixture: StoreFixture) -> String {
        (try? String(contentsOfFile: fixture.root + "/serve.log", encoding: .utf8)) ?? ""
    }

    /// SIGTERM commits and exits 0.
    private func stop(_ pid: pid_t, _ client: LisafsClient, _ fixture: StoreFixture) {
        XCTAssertEqual(Glibc.kill(pid, SIGTERM), 0)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        client.shutdown()
        XCTAssertTrue(status & 0x7f == 0 && (status >> 8) & 0xff == 0, "serve ended with status \(status):\n\(serveLog(fixture))")
    }

    private func requireCapSysAdmin() throws {
        try XCTSkipUnless(getuid() == 0, "the private scratch tmpfs needs CAP_SYS_ADMIN (root)")
    }

    func testDonatedWritesBeyondTheScratchCapGetENOSPC() throws {
        try requireCapSysAdmin()
        try checkDonatedWritesAreCapped(scratch: [])
    }

    /// `sealgofer run` passes a private directory under /dev/shm as `--scratch`:
    /// the cap applies there too.
    func testAScratchDirectoryOnALargeTmpfsIsReplacedByTheCappedOne() throws {
        try requireCapSysAdmin()
        var template = Array("/dev/shm/scratchquota-XXXXXX".utf8CString)
        let made = try XCTUnwrap(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) })
        let directory = String(cString: made)
        defer { rmdir(directory) }
        try checkDonatedWritesAreCapped(scratch: ["--scratch", directory])
    }

    /// A `--scratch` on a disk is the operator's choice: used as given.
    func testAScratchDirectoryOnADiskIsKept() throws {
        let fixture = try StoreFixture(chunkSize: 4096)
        defer { fixture.remove() }
        var probe = clinux_statfs()
        let rootFD = open(fixture.scratchPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { Glibc.close(rootFD) }
        try XCTSkipIf(clinux_fstatfs(rootFD, &probe) != 0 || probe.type == 0x0102_1994, "the fixture's directory is on a tmpfs here")
        let (pid, client) = try startServe(fixture, ["--scratch", fixture.scratchPath, "--scratch-limit", "1M"])
        let root = try client.mount().root.controlFD
        let made = try client.create(root, "f")
        let host = try XCTUnwrap(made.donated)
        var scratchFile = stat(), directory = stat()
        XCTAssertEqual(fstat(host, &scratchFile), 0)
        XCTAssertEqual(stat(fixture.scratchPath, &directory), 0)
        XCTAssertEqual(scratchFile.st_dev, directory.st_dev, "the scratch file must be in the given directory's filesystem")
        Glibc.close(host)
        try client.close([made.fd, made.inode.controlFD])
        stop(pid, client, fixture)
    }

    private func checkDonatedWritesAreCapped(scratch: [String]) throws {
        let fixture = try StoreFixture(chunkSize: 4096)
        defer { fixture.remove() }
        let limit: UInt64 = 1 << 20
        let (pid, client) = try startServe(fixture, ["--scratch-limit", "1M", "--donate-limit", "512K"] + scratch)
        var stopped = false
        defer { if !stopped { Glibc.kill(pid, SIGKILL); waitpid(pid, nil, 0) } }
        let root = try client.mount().root.controlFD

        // A committed file first.
        let kept = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let a = try client.create(root, "kept")
        let aHost = try XCTUnwrap(a.donated, "a new small file must get a donated scratch FD")
        try hostWrite(aHost, kept, at: 0)
        Glibc.close(aHost)
        try client.flush(a.fd)
        try client.close([a.fd, a.inode.controlFD])

        // Then a sandbox that writes far past the cap through its donated FD.
        let b = try client.create(root, "filler")
        let bHost = try XCTUnwrap(b.donated)
        defer { Glibc.close(bHost) }
        var scratchFS = clinux_statfs()
        XCTAssertEqual(clinux_fstatfs(bHost, &scratchFS), 0)
        var shm = stat(), scratchFile = stat()
        XCTAssertEqual(stat("/dev/shm", &shm), 0)
        XCTAssertEqual(fstat(bHost, &scratchFile), 0)
        XCTAssertNotEqual(scratchFile.st_dev, shm.st_dev, "the scratch file must not live on the host's /dev/shm:\n\(serveLog(fixture))")
        XCTAssertEqual(scratchFS.type, 0x0102_1994, "scratch is a tmpfs")
        let capacity = scratchFS.blocks * UInt64(scratchFS.bsize)
        XCTAssertEqual(capacity, ScratchTmpfs.tmpfsSize(scratchLimit: limit), "the tmpfs is sized from --scratch-limit")

        let block = [UInt8](repeating: 0x5a, count: 1 << 20)
        var written: UInt64 = 0
        var failure: Errno? = nil
        while written < 64 << 20 {
            do {
                try hostWrite(bHost, block, at: written)
                written += UInt64(block.count)
            } catch let error as Errno {
                failure = error
                break
            }
        }
        XCTAssertEqual(failure, Errno(ENOSPC), "writes past the cap must fail with ENOSPC (wrote \(written) bytes)")
        XCTAssertLessThanOrEqual(UInt64(hostSize(bHost)), capacity)
        XCTAssertGreaterThanOrEqual(UInt64(hostSize(bHost)), limit, "the cap is not below --scratch-limit")

        // The sandbox gives up on the filler; the committed file is untouched
        // and still readable through the gofer.
        try client.unlink(root, "filler")
        try client.close([b.fd, b.inode.controlFD])
        let again = try client.lookup(root, "kept")
        let reopened = try client.open(again.controlFD, flags: O_RDONLY)
        if let host = reopened.donated {
            XCTAssertEqual(try hostRead(host, count: kept.count + 1, at: 0), kept)
            Glibc.close(host)
        } else {
            XCTAssertEqual(try client.pread(reopened.fd, count: UInt32(kept.count + 1), at: 0), kept)
        }
        try client.close([reopened.fd, again.controlFD])
        stop(pid, client, fixture)
        stopped = true
        XCTAssertFalse(serveLog(fixture).contains("no private scratch tmpfs"), serveLog(fixture))
        XCTAssertEqual(try fixture.plaintext("kept"), kept)
        XCTAssertNil(try fixture.plaintext("filler"))
        XCTAssertTrue(try fixture.verify().isClean, "verify after the ENOSPC episode")
    }

    /// After lock-down the store-serving process cannot open host paths outside
    /// its store and scratch (Landlock), though it opens its own files.
    func testLockedDownStoreServeCannotOpenOutsideItsStore() throws {
        try XCTSkipUnless(clinux_landlock_abi() > 0, "the kernel has no Landlock")
        let fixture = try StoreFixture(chunkSize: 4096)
        defer { fixture.remove() }
        let outside = fixture.root + "/outside"
        XCTAssertTrue(FileManager.default.createFile(atPath: outside, contents: Data("secret".utf8)))
        for (path, expected) in [(outside, "errno \(EACCES)"), ("/etc/passwd", "errno \(EACCES)"),
                                 (fixture.storePath + "/config", "ok")] {
            let (pid, client) = try startServe(fixture, ["--debug-open-path", path])
            _ = try client.mount()
            stop(pid, client, fixture)
            let log = serveLog(fixture)
            XCTAssertTrue(log.contains("debug: open \(path): \(expected)"), "\(path): \(log)")
            try? FileManager.default.removeItem(atPath: fixture.root + "/serve.log")
        }
    }
}
