import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

final class CommitTests: XCTestCase {
    override func tearDown() { TestHooks.crashAt = nil }

    func testRoundTripSizes() throws {
        for suite in Fixture.suites {
            let dir = TempDir()
            var store = try Fixture.store(dir, suite: suite)
            let c = 4096
            let sizes = [0, 1, c - 1, c, c + 1, 7 * c + 123, 64 * c]
            for (i, size) in sizes.enumerated() {
                let f = try store.createFile(in: store.dataDirectory, name: "f\(i)")
                let content = Fixture.bytes(size, seed: UInt64(i))
                try f.commitAll(content)
                XCTAssertEqual(try f.readAll(), content, "\(suite) size \(size)")
                f.close()
            }
            store = try reopen(store)
            for (i, size) in sizes.enumerated() {
                let f = try openPath(store, "f\(i)")
                XCTAssertEqual(f.committedSize, UInt64(size))
                XCTAssertEqual(try f.readAll(), Fixture.bytes(size, seed: UInt64(i)), "\(suite) size \(size) after reopen")
                var st = stat(); fstat(f.fileDescriptor, &st)
                XCTAssertEqual(UInt64(st.st_size), ChunkLayout(chunkSize: c, suite: suite).fileLength(size: UInt64(size)))
                f.close()
            }
            XCTAssertTrue(Verifier.run(store: store).isClean)
            store.close()
        }
    }

    func testPartialChangesGrowAndShrink() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let c = 4096
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        var model = Fixture.bytes(3 * c + 100, seed: 1)
        try f.commitAll(model)
        // Change chunk 1 only.
        let new1 = Fixture.bytes(c, seed: 2)
        try f.commit([ChunkChange(index: 1, plaintext: new1)], newSize: UInt64(model.count), durable: true)
        model.replaceSubrange(c..<2 * c, with: new1)
        XCTAssertEqual(try f.readAll(), model)
        // Grow without giving chunks: the old partial chunk is zero-extended, new chunks are zeros.
        try f.commit([], newSize: UInt64(6 * c + 5), durable: false)
        model += [UInt8](repeating: 0, count: 6 * c + 5 - model.count)
        XCTAssertEqual(try f.readAll(), model)
        // Shrink mid-chunk without giving the new last chunk: it is cut.
        try f.commit([], newSize: UInt64(2 * c + 10), durable: false)
        model = Array(model[0..<(2 * c + 10)])
        XCTAssertEqual(try f.readAll(), model)
        // Shrink to a chunk boundary, then to zero.
        try f.commit([], newSize: UInt64(c), durable: false)
        XCTAssertEqual(try f.readAll(), Array(model[0..<c]))
        try f.commit([], newSize: 0, durable: true)
        XCTAssertEqual(try f.readAll(), [])
        XCTAssertEqual(try fileSize(fd: f.fileDescriptor), UInt64(FileHeader.length), "trimmed")
        XCTAssertEqual(f.generation, 6)
        try f.commit([], newSize: 0, durable: true)
        XCTAssertEqual(f.generation, 6, "an unchanged commit is a no-op")
        // Ranged reads.
        try f.commitAll(Fixture.bytes(5 * c, seed: 3))
        XCTAssertEqual(try f.read(offset: UInt64(c - 3), count: 10), Array(Fixture.bytes(5 * c, seed: 3)[(c - 3)..<(c + 7)]))
        XCTAssertEqual(try f.read(offset: UInt64(5 * c - 2), count: 10).count, 2)
        XCTAssertEqual(try f.read(offset: UInt64(5 * c), count: 10), [])
        f.close()
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    func testInvalidChangesAreRejected() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        XCTAssertThrowsError(try f.commit([ChunkChange(index: 0, plaintext: [1, 2])], newSize: 3, durable: false))
        XCTAssertThrowsError(try f.commit([ChunkChange(index: 1, plaintext: [1])], newSize: 3, durable: false))
        XCTAssertThrowsError(try f.commit([ChunkChange(index: 0, plaintext: [1]), ChunkChange(index: 0, plaintext: [1])], newSize: 1, durable: false))
        XCTAssertEqual(f.committedSize, 0)
        XCTAssertEqual(f.generation, 0)
    }

    func testHardLinksShareOneHandleAndRemovalWaitsForClose() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "a")
        try f.commitAll([1, 2, 3])
        XCTAssertEqual(linkat(store.dataDirectory, "a", store.dataDirectory, "b", 0), 0)
        let g = try openPath(store, "b")
        XCTAssertTrue(f === g)
        let id = f.id
        unlinkat(store.dataDirectory, "a", 0); unlinkat(store.dataDirectory, "b", 0)
        try store.removeFile(id)
        XCTAssertNotNil(try store.layout.readSidecar(id), "still open: removal deferred")
        g.close()
        XCTAssertEqual(try f.readAll(), [1, 2, 3])
        f.close()
        XCTAssertNil(try store.layout.readSidecar(id))
        XCTAssertThrowsError(try f.readAll())
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    func testStoreLockIsExclusive() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        XCTAssertThrowsError(try SealedStore.open(at: store.path, key: Fixture.key)) { XCTAssertEqual($0 as? SealedStoreError, .storeInUse) }
        store.close()
        XCTAssertNoThrow(try SealedStore.open(at: store.path, key: Fixture.key).close())
    }

    func testDigestDetectsChanges() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        let a = [UInt8](repeating: 1, count: 100), b = [UInt8](repeating: 2, count: 100)
        let da = a.withUnsafeBytes { f.digest(of: $0) }
        XCTAssertEqual(da, a.withUnsafeBytes { f.digest(of: $0) })
        XCTAssertNotEqual(da, b.withUnsafeBytes { f.digest(of: $0) })
        let g = try store.createFile(in: store.dataDirectory, name: "g")
        XCTAssertNotEqual(da, a.withUnsafeBytes { g.digest(of: $0) }, "keyed per file")
    }

    /// Simulated crash at every step of a journaled commit, an append and a move: after reopening,
    /// the file is exactly the old or exactly the new content, and verify is clean.
    func testCrashAtEveryStepIsAtomic() throws {
        for suite in Fixture.suites {
            for step in [CommitStep.directWritten, .journalWritten, .chunksApplied, .sidecarWritten, .headerWritten] {
                for scenario in ["overwrite+grow", "append", "shrink", "move"] {
                    let dir = TempDir()
                    var options = SealedStore.Options()
                    if scenario == "move" { options.rekeyThreshold = 6 }
                    var store = try Fixture.store(dir, suite: suite, options: options)
                    let f = try store.createFile(in: store.dataDirectory, name: "f")
                    let old = Fixture.bytes(3 * 4096 + 7, seed: 9)
                    try f.commitAll(old)
                    let new: [UInt8]
                    switch scenario {
                    case "append": new = old + Fixture.bytes(9000, seed: 10)
                    case "shrink": new = Array(old[0..<5000])
                    default: new = Array(old[0..<4096]) + Fixture.bytes(4096, seed: 11) + Array(old[8192...]) + Fixture.bytes(10000, seed: 12)
                    }
                    TestHooks.crashAt = step
                    let oldID = f.id
                    var crashed = false
                    do { try f.commitAll(new) } catch { crashed = true }
                    TestHooks.crashAt = nil
                    store = try reopen(store, options: options)
                    let g = try openPath(store, "f")
                    let got = try g.readAll()
                    let label = "\(suite) \(scenario) crash after \(step) (crashed: \(crashed))"
                    XCTAssertTrue(got == old || got == new, label)
                    if crashed && [.journalWritten, .chunksApplied, .sidecarWritten, .headerWritten].contains(step) && scenario != "append" && scenario != "shrink" {
                        XCTAssertEqual(got, new, "past the commit point: \(label)")
                    }
                    if scenario == "move" && suite == .aes256gcm && got == new { XCTAssertNotEqual(g.id, oldID, label) }
                    let report = Verifier.run(store: store)
                    XCTAssertTrue(report.isClean, "\(label): \(report.damage)")
                    // The file stays usable.
                    try g.commitAll(Array(got.reversed()))
                    XCTAssertEqual(try g.readAll(), Array(got.reversed()))
                    g.close()
                    XCTAssertTrue(Verifier.run(store: store).isClean, label)
                    store.close()
                }
            }
        }
    }

    /// AES-256-GCM files move to a fresh ID and the newest epoch before the nonce budget runs out.
    func testRekeyMovesToFreshIDAndNewestEpoch() throws {
        guard CipherSuite.aes256gcm.isAvailable else { throw XCTSkip("no AES-NI") }
        let dir = TempDir()
        var options = SealedStore.Options()
        options.rekeyThreshold = 8
        var store = try Fixture.store(dir, suite: .aes256gcm, options: options)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        var model = Fixture.bytes(4 * 4096, seed: 1)
        try f.commitAll(model)
        let firstID = f.id
        XCTAssertEqual(f.epoch, 1)
        try store.addEpoch()
        var ids: Set<FileID> = [firstID]
        for round in 0..<20 {
            let chunk = UInt64(round % 4)
            let p = Fixture.bytes(4096, seed: UInt64(100 + round))
            try f.commit([ChunkChange(index: chunk, plaintext: p)], newSize: UInt64(model.count), durable: false)
            model.replaceSubrange(Int(chunk) * 4096..<(Int(chunk) + 1) * 4096, with: p)
            XCTAssertLessThanOrEqual(f.encryptions, 8)
            ids.insert(f.id)
            XCTAssertEqual(try f.readAll(), model)
        }
        XCTAssertGreaterThan(ids.count, 2, "moved at least twice")
        XCTAssertEqual(f.epoch, 2, "moved files use the newest epoch")
        XCTAssertNil(try store.layout.readSidecar(firstID), "old sidecar removed")
        f.close()
        store = try reopen(store, options: options)
        let g = try openPath(store, "f")
        XCTAssertEqual(try g.readAll(), model)
        let report = Verifier.run(store: store)
        XCTAssertTrue(report.isClean, "\(report.damage)")
        XCTAssertEqual(report.sidecars, 1)
    }
}

final class ConcurrencyTests: XCTestCase {
    /// Readers never see a torn commit; commits to different files run side by side.
    func testConcurrentReadsAndCommits() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let shared = try store.createFile(in: store.dataDirectory, name: "shared")
        let states = (0..<8).map { Fixture.bytes(5 * 4096 + 17 * $0, seed: UInt64($0)) }
        try shared.commitAll(states[0])
        let valid = Set(states.map { contentFingerprint($0) })
        let others = try (0..<2).map { try store.createFile(in: store.dataDirectory, name: "o\($0)") }
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 5); failures.initialize(repeating: 0, count: 5)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 5) { t in
            for round in 0..<40 {
                do {
                    switch t {
                    case 0: try shared.commitAll(states[round % 8])
                    case 1, 2: if !valid.contains(contentFingerprint(try shared.readAll())) { failures[t] += 1 }
                    default:
                        let f = others[t - 3]
                        let content = Fixture.bytes(3 * 4096 + round, seed: UInt64(100 * t + round))
                        try f.commitAll(content)
                        if try f.readAll() != content { failures[t] += 1 }
                    }
                } catch { failures[t] += 1 }
            }
        }
        XCTAssertEqual((0..<5).map { failures[$0] }, [0, 0, 0, 0, 0])
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    func testReopeningAnOpenFileReusesItAndRemoveByDescriptor() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "x")
        try f.commitAll([9, 9, 9])
        let fd = openat(store.dataDirectory, "x", O_RDONLY | O_NOFOLLOW)
        defer { close(fd) }
        let g = try store.openFile(descriptor: fd)
        XCTAssertTrue(f === g)
        unlinkat(store.dataDirectory, "x", 0)
        try store.removeFile(descriptor: fd)
        let id = f.id
        XCTAssertNotNil(try store.layout.readSidecar(id))
        f.close(); g.close()
        XCTAssertNil(try store.layout.readSidecar(id), "removed at last close")
        XCTAssertTrue(Verifier.run(store: store).isClean)
        // And a file that is not open is removed at once.
        let h = try store.createFile(in: store.dataDirectory, name: "y")
        let hid = h.id
        h.close()
        let fd2 = openat(store.dataDirectory, "y", O_RDONLY | O_NOFOLLOW)
        unlinkat(store.dataDirectory, "y", 0)
        try store.removeFile(descriptor: fd2)
        close(fd2)
        XCTAssertNil(try store.layout.readSidecar(hid))
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }
}
