import CLinux
import Foundation
import Lisafs
@testable import SealedProvider
@testable import SealedStore
import XCTest

/// A full scratch filesystem, a full backing store and a commit that fails
/// after its commit point give clean errors and lose no committed data.
/// The filesystems are small tmpfs mounts (root only; skipped otherwise).
final class FaultTests: XCTestCase {
    var fixture: StoreFixture!
    var mounts: [String] = []

    override func setUpWithError() throws {
        fixture = try StoreFixture()
    }

    override func tearDown() {
        for m in mounts.reversed() { _ = run(["/bin/umount", "-l", m]) }
        fixture?.remove()
        TestHooks.crashAt = nil
    }

    @discardableResult
    private func run(_ args: [String]) -> Int32 {
        var pid: pid_t = 0
        let argv = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        guard posix_spawn(&pid, args[0], nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }

    /// A tmpfs of `size` at `path` (created).
    private func mountTmpfs(_ path: String, size: String) throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        mkdir(path, 0o700)
        guard run(["/bin/mount", "-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path]) == 0 else {
            throw XCTSkip("cannot mount a tmpfs here")
        }
        mounts.append(path)
    }

    private func serve(_ options: SealedProvider.Options, store path: String? = nil) throws -> (SealedProvider, LisafsClient, FDID) {
        let store = try SealedStore.open(at: path ?? fixture.storePath, key: fixture.key)
        let provider = try SealedProvider(store: store, options: options)
        let client = try LisafsClient(server: Server(provider: provider))
        return (provider, client, try client.mount().root.controlFD)
    }

    func testFullScratchFilesystemFallsBackToRPCsAndFailsWritesCleanly() throws {
        let content = (0..<400_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        do {
            let (provider, client, root) = try serve(fixture.options())
            let c = try client.create(root, "big")
            try client.pwrite(c.fd, content, at: 0)
            try client.close([c.fd])
            client.shutdown(); provider.shutdown()
        }
        let small = fixture.root + "/small-scratch"
        try mountTmpfs(small, size: "128k")
        let (provider, client, root) = try serve(fixture.options { $0.scratchDirectory = small })
        defer { client.shutdown(); provider.shutdown() }
        // Too big for the scratch filesystem: served through RPCs instead.
        let big = try client.lookup(root, "big").controlFD
        let opened = try client.open(big, flags: O_RDWR)
        XCTAssertNil(opened.donated)
        XCTAssertEqual(try client.pread(opened.fd, count: 1000, at: 300_000), Array(content[300_000..<301_000]))
        try client.pwrite(opened.fd, [1, 2, 3], at: 10)
        try client.flush(opened.fd)
        // A new file gets a scratch; writing past the filesystem's size fails
        // with ENOSPC on the donated FD itself, and what fit is committed.
        let c = try client.create(root, "new")
        let fd = try XCTUnwrap(c.donated)
        defer { Glibc.close(fd) }
        var wrote = 0
        var failure: Int32 = 0
        let piece = [UInt8](repeating: 0x5A, count: 16 * 1024)
        while wrote < 1 << 20 {
            let n = piece.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(wrote)) }
            if n < 0 { failure = errno; break }
            wrote += n
            if n < piece.count { continue }
        }
        XCTAssertEqual(failure, ENOSPC)
        XCTAssertGreaterThan(wrote, 0)
        try client.flush(c.fd)
        try client.close([c.fd, opened.fd])
        client.shutdown(); provider.shutdown()
        var expected = content
        expected.replaceSubrange(10..<13, with: [1, 2, 3])
        XCTAssertEqual(try fixture.plaintext("big"), expected)
        XCTAssertEqual(try fixture.plaintext("new"), [UInt8](repeating: 0x5A, count: wrote))
        XCTAssertTrue(try fixture.verify().isClean)
    }

    func testFullBackingStoreFailsFlushCleanlyAndALaterCommitSucceeds() throws {
        let fs = fixture.root + "/storefs"
        try mountTmpfs(fs, size: "3m")
        let storePath = fs + "/store"
        try SealedStore.initialize(at: storePath, key: fixture.key, chunkSize: 4096)
        var (provider, client, root) = try serve(fixture.options(), store: storePath)
        let kept = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let a = try client.create(root, "a")
        try client.pwrite(a.fd, kept, at: 0)
        try client.flush(a.fd)
        let b = try client.create(root, "b")
        // Fill the filesystem.
        let filler = fs + "/filler"
        let ffd = Glibc.open(filler, O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0, count: 64 * 1024)
        while block.withUnsafeBytes({ Glibc.write(ffd, $0.baseAddress!, $0.count) }) > 0 {}
        Glibc.close(ffd)

        // An append that does not fit: Flush reports ENOSPC, the commit stays as it was.
        let bfd = try XCTUnwrap(b.donated)
        defer { Glibc.close(bfd) }
        let payload = [UInt8](repeating: 0xB0, count: 600_000)
        try hostWrite(bfd, payload, at: 0)
        XCTAssertEqual(client.errno { try client.flush(b.fd) }, .ENOSPC)
        XCTAssertEqual(client.errno { try client.fsync([b.fd]) }, .ENOSPC)
        // An in-place overwrite needs a journal: same.
        let afd = try XCTUnwrap(a.donated)
        defer { Glibc.close(afd) }
        try hostWrite(afd, [UInt8](repeating: 0xEE, count: 50_000), at: 0)
        XCTAssertEqual(client.errno { try client.flush(a.fd) }, .ENOSPC)
        XCTAssertEqual(provider.statistics.failedCommits, 3)
        // The live files still read their uncommitted content.
        XCTAssertEqual(try client.pread(b.fd, count: 10, at: 599_990), [UInt8](repeating: 0xB0, count: 10))
        // Closing them cannot commit either, but the data stays for later.
        try client.close([b.fd, a.fd])
        XCTAssertEqual(provider.loadedFileCount, 2, "entries with uncommitted data are kept")
        XCTAssertEqual(fixture.metadataCount().sidecars, 0, "(the fixture's own store is untouched)")
        XCTAssertEqual(provider.statistics.failedCommits, 5)
        unlink(filler)
        let commits = provider.statistics.commits
        provider.commitAll()
        XCTAssertEqual(provider.statistics.failedCommits, 5)
        XCTAssertEqual(provider.statistics.commits, commits + 2, "the retry commits both files")
        client.shutdown(); provider.shutdown()
        _ = (provider, client, root)
        // Offline: both files hold their last content, the store is clean.
        let store = try SealedStore.open(at: storePath, key: fixture.key)
        defer { store.close() }
        var expectedA = kept
        expectedA.replaceSubrange(0..<50_000, with: [UInt8](repeating: 0xEE, count: 50_000))
        XCTAssertEqual(try StoreFixture.plaintext(store, "a"), expectedA)
        XCTAssertEqual(try StoreFixture.plaintext(store, "b"), payload)
        let report = Verifier.run(store: store)
        XCTAssertTrue(report.isClean, "\(report.damage) \(report.notes)")
        (provider, client, root) = (provider, client, root)
    }

    func testCommitFailingAfterItsCommitPointIsRecoveredByTheNextCommit() throws {
        let (provider, client, root) = try serve(fixture.options())
        let c = try client.create(root, "j")
        let fd = try XCTUnwrap(c.donated)
        defer { Glibc.close(fd) }
        var content = [UInt8](repeating: 1, count: 40_000)
        try hostWrite(fd, content, at: 0)
        try client.flush(c.fd)
        // An in-place overwrite goes through the journal; fail right after it.
        try hostWrite(fd, [UInt8](repeating: 2, count: 5_000), at: 8_000)
        content.replaceSubrange(8_000..<13_000, with: [UInt8](repeating: 2, count: 5_000))
        TestHooks.crashAt = .chunksApplied
        XCTAssertEqual(client.errno { try client.flush(c.fd) }, .EIO)
        TestHooks.crashAt = nil
        // More changes, including one that reverts a journaled chunk.
        try hostWrite(fd, [UInt8](repeating: 1, count: 4_096), at: 8_192)
        content.replaceSubrange(8_192..<12_288, with: [UInt8](repeating: 1, count: 4_096))
        try hostWrite(fd, [3], at: 39_999)
        content[39_999] = 3
        try client.flush(c.fd)
        try client.close([c.fd])
        client.shutdown(); provider.shutdown()
        XCTAssertEqual(try fixture.plaintext("j"), content)
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "\(report.damage)")
    }

    /// A create on a full backing store fails with ENOSPC and leaves nothing
    /// (no orphan sidecar or pending entry that verify would report). With the
    /// creation pool, the files it made before the disk filled are still
    /// created (their header and sidecar are written already); the creates after
    /// them fail with ENOSPC the same way.
    func testCreateOnFullBackingStoreLeavesNothing() throws {
        for pool in [0, 4] {
            let fs = fixture.root + "/storefs\(pool)"
            try mountTmpfs(fs, size: "1m")
            let storePath = fs + "/store"
            try SealedStore.initialize(at: storePath, key: fixture.key, chunkSize: 4096)
            let (provider, client, root) = try serve(fixture.options { $0.creationPool = pool }, store: storePath)
            if pool > 0 { XCTAssertTrue(provider.store.waitForFullCreationPool(seconds: 10)) }
            let filler = fs + "/filler"
            let ffd = Glibc.open(filler, O_WRONLY | O_CREAT, 0o600)
            let block = [UInt8](repeating: 0, count: 4096)
            while block.withUnsafeBytes({ Glibc.write(ffd, $0.baseAddress!, $0.count) }) > 0 {}
            Glibc.close(ffd)
            var created = 0
            func create(_ name: String) -> Errno? {
                client.errno {
                    let c = try client.create(root, name)
                    if let d = c.donated { Glibc.close(d) }
                    return c
                }
            }
            while created <= pool, create("c\(created)") == nil { created += 1 }
            XCTAssertLessThanOrEqual(created, pool, "pool \(pool): only pooled files can still be created")
            XCTAssertEqual(create("last"), .ENOSPC, "pool \(pool)")
            client.shutdown(); provider.shutdown()
            let store = try SealedStore.open(at: storePath, key: fixture.key)
            defer { store.close() }
            let report = Verifier.run(store: store)
            XCTAssertTrue(report.isClean, "pool \(pool): \(report.damage)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: storePath + "/meta/pending"), [], "pool \(pool)")
        }
    }
}
