import XCTest
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// O_PATH (not exported by Swift's Glibc module): how the provider holds victims.
let oPath: Int32 = 0o10000000

/// Creates, imports and removals interrupted at every step (Keys/README.md §7.1), in-process:
/// * a simulated crash (`TestHooks.namespaceCrashAt`) leaves the disk as a process death would;
///   the store is dropped without cleanup and reopened: every name is in its state before or
///   after the operation, meta/pending is empty and verify is clean;
/// * an injected I/O error (`TestHooks.namespaceFailAt`) makes the operation throw; what it
///   leaves is consistent after reopening too, and a failure before the point of no return
///   leaves nothing at all, without a reopen.
final class NamespaceCrashTests: XCTestCase {
    override func tearDown() {
        TestHooks.crashAt = nil
        TestHooks.namespaceCrashAt = nil
        TestHooks.namespaceFailAt = nil
        TestHooks.noPendingLinks = false
    }

    private static let createSteps: [NamespaceStep] = [.createIntent, .createSidecar, .createLinked]
    private static let removeSteps: [NamespaceStep] = [.unlinkIntent, .unlinkDone, .goneRecorded, .metadataRemoved]

    // MARK: Create

    func testCreateInterruptedAtEveryStep() throws {
        for step in Self.createSteps {
            for crash in [true, false] {
                let label = "\(crash ? "crash" : "failure") after \(step)"
                let dir = TempDir()
                var store = try Fixture.store(dir)
                arm(step, crash: crash)
                XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, name: "f") { _ = fchmod($0, 0o600) }, label)
                disarm()
                if !crash {
                    // Nothing left behind, without a reopen.
                    XCTAssertFalse(exists(store, "f"), label)
                    XCTAssertEqual(pendingEntries(store), [], label)
                    XCTAssertEqual(sidecarCount(store), 0, label)
                    XCTAssertTrue(Verifier.run(store: store).isClean, label)
                }
                store = try reopenAfter(crash: crash, store)
                XCTAssertEqual(pendingEntries(store), [], label)
                let report = Verifier.run(store: store)
                XCTAssertTrue(report.isClean, "\(label): \(report.damage)")
                if exists(store, "f") {
                    // Rolled forward: an ordinary empty file.
                    XCTAssertEqual(step, .createLinked, "only a linked file may survive: \(label)")
                    let f = try openPath(store, "f")
                    XCTAssertEqual(try f.readAll(), [], label)
                    try f.commitAll([1, 2, 3])
                    f.close()
                } else {
                    XCTAssertEqual(sidecarCount(store), 0, label)
                    let f = try store.createFile(in: store.dataDirectory, name: "f")   // the name is free again
                    f.close()
                }
                if crash {
                    // Once named, the rename has taken meta/pending/<id>.new with it: nothing to recover.
                    if step == .createLinked { XCTAssertEqual(store.recoveredOperations, 0, label) }
                    else { XCTAssertGreaterThan(store.recoveredOperations, 0, label) }
                }
                XCTAssertTrue(Verifier.run(store: store).isClean, label)
                store.close()
            }
        }
    }

    func testCreateOfAnExistingNameLeavesNothing() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        defer { store.close() }
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        f.close()
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, name: "f")) {
            guard case .io(_, let e) = $0 as? SealedStoreError else { return XCTFail("\($0)") }
            XCTAssertEqual(e, EEXIST)
        }
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 1)
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    /// Names are bytes: a non-UTF-8 name is created as such (no temporary name).
    func testCreateWithANonUTF8Name() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let name: [UInt8] = [0x66, 0xff, 0xfe]
        let f = try store.createFile(in: store.dataDirectory, nameBytes: name)
        try f.commitAll([4, 5])
        f.close()
        let fd = (name + [0]).withUnsafeBufferPointer { n in
            n.withMemoryRebound(to: CChar.self) { openat(store.dataDirectory, $0.baseAddress!, O_RDONLY | O_NOFOLLOW) }
        }
        XCTAssertGreaterThanOrEqual(fd, 0)
        let g = try store.openFile(descriptor: fd)
        close(fd)
        XCTAssertEqual(try g.readAll(), [4, 5])
        g.close()
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, nameBytes: name))
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, nameBytes: [0x61, 0]))
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 1)
        XCTAssertTrue(Verifier.run(store: store).isClean)
        // Recovery's search of data/ (the `.unlinking` fallback) sees the file under its byte name.
        let linked = (name + [0]).withUnsafeBufferPointer { n in
            n.withMemoryRebound(to: CChar.self) { linkat(store.dataDirectory, $0.baseAddress!, store.dataDirectory, "x", 0) }
        }
        XCTAssertEqual(linked, 0)
        TestHooks.noPendingLinks = true
        TestHooks.namespaceCrashAt = .unlinkDone
        let v = openat(store.dataDirectory, "x", oPath | O_NOFOLLOW)
        XCTAssertThrowsError(try store.removingLink(of: v) { XCTAssertEqual(unlinkat(store.dataDirectory, "x", 0), 0) })
        close(v)
        disarm()
        TestHooks.noPendingLinks = false
        let reopened = try reopenAfter(crash: true, store)
        defer { reopened.close() }
        XCTAssertEqual(reopened.recoveredOperations, 1)
        XCTAssertEqual(sidecarCount(reopened), 1, "the file still has a name: its sidecar stays")
        XCTAssertTrue(Verifier.run(store: reopened).isClean)
    }

    /// Owner and mode set in `prepare` are there when the name appears; a failing `prepare` leaves nothing.
    func testPrepareRunsBeforeTheNameAppears() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        defer { store.close() }
        let f = try store.createFile(in: store.dataDirectory, name: "f", mode: 0o600) { fd in
            var st = stat()
            fstat(fd, &st)
            XCTAssertEqual(st.st_nlink, 1, "not linked under data/ yet")
            XCTAssertEqual(fchmod(fd, 0o640), 0)
        }
        f.close()
        var st = stat()
        XCTAssertEqual(fstatat(store.dataDirectory, "f", &st, AT_SYMLINK_NOFOLLOW), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o640)
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, name: "g") { _ in throw SealedStoreError.invalidArgument("no") })
        XCTAssertFalse(exists(store, "g"))
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 1)
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    // MARK: Import

    /// An import interrupted at any step of any file leaves whole files (content and mode) or none.
    func testImportInterruptedAtEveryStep() throws {
        for step in Self.createSteps {
            for crash in [true, false] {
                let label = "import, \(crash ? "crash" : "failure") after \(step)"
                let dir = TempDir()
                let source = dir.sub("src")
                try FileManager.default.createDirectory(atPath: source + "/sub", withIntermediateDirectories: true)
                let contents = ["a": Fixture.bytes(3 * 4096 + 5, seed: 1), "sub/b": Fixture.bytes(100, seed: 2), "sub/c": []]
                for (name, bytes) in contents {
                    FileManager.default.createFile(atPath: source + "/" + name, contents: Data(bytes))
                    chmod(source + "/" + name, 0o640)
                }
                var options = SealedStore.Options()
                options.orderingSyncs = false
                var store = try Fixture.store(dir, options: options)
                arm(step, crash: crash)
                XCTAssertThrowsError(try TreeImporter.run(store: store, source: source, destination: "/"), label)
                disarm()
                if !crash { XCTAssertEqual(pendingEntries(store), [], label) }
                store = try reopenAfter(crash: crash, store)
                XCTAssertEqual(pendingEntries(store), [], label)
                let report = Verifier.run(store: store)
                XCTAssertTrue(report.isClean, "\(label): \(report.damage)")
                var present = 0
                for (name, bytes) in contents where exists(store, name) {
                    present += 1
                    let f = try openPath(store, name)
                    XCTAssertEqual(try f.readAll(), bytes, "\(label): \(name)")
                    var st = stat()
                    fstat(f.fileDescriptor, &st)
                    XCTAssertEqual(st.st_mode & 0o777, 0o640, "\(label): \(name) appears with its mode")
                    f.close()
                }
                XCTAssertEqual(sidecarCount(store), present, label)
                // Rerunning the import over what is there finishes it.
                store.close()
                store = try SealedStore.open(at: dir.sub("store"), key: Fixture.key, options: options)
                for name in contents.keys where exists(store, name) {
                    let d = name.contains("/") ? openat(store.dataDirectory, "sub", O_RDONLY | O_DIRECTORY) : dup(store.dataDirectory)
                    let leaf = String(name.split(separator: "/").last!)
                    let fd = openat(d, leaf, oPath | O_NOFOLLOW)
                    XCTAssertTrue(try store.removingLink(of: fd) { XCTAssertEqual(unlinkat(d, leaf, 0), 0) })
                    close(fd); close(d)
                }
                _ = try TreeImporter.run(store: store, source: source, destination: "/")
                for (name, bytes) in contents {
                    let f = try openPath(store, name)
                    XCTAssertEqual(try f.readAll(), bytes, "\(label): rerun \(name)")
                    f.close()
                }
                XCTAssertTrue(Verifier.run(store: store).isClean, label)
                store.close()
            }
        }
    }

    // MARK: Remove

    enum RemoveScenario: String, CaseIterable {
        case unlinkClosed, unlinkOpen, renameOver, unlinkOneOfTwoLinks, legacyRemoveOpen
    }

    /// Every removal scenario interrupted at every step: afterwards each name is in its state before
    /// or after, a removed file's metadata is gone, a surviving file reads its content, verify is clean.
    func testRemovalInterruptedAtEveryStep() throws {
        for fallback in [false, true] {
            for scenario in RemoveScenario.allCases {
                for step in Self.removeSteps {
                    for crash in [true, false] {
                        try removal(scenario, step: step, crash: crash, fallback: fallback)
                    }
                }
            }
        }
    }

    private func removal(_ scenario: RemoveScenario, step: NamespaceStep, crash: Bool, fallback: Bool) throws {
        let label = "\(scenario)\(fallback ? " (no pending link)" : ""), \(crash ? "crash" : "failure") after \(step)"
        let dir = TempDir()
        let aes = CipherSuite.aes256gcm.isAvailable
        var options = SealedStore.Options()
        options.rekeyThreshold = 3   // commits to the open, unlinked file move it to fresh IDs
        var store = try Fixture.store(dir, suite: aes ? .aes256gcm : .xchacha20poly1305, options: options)
        let old = Fixture.bytes(5000, seed: 3), other = Fixture.bytes(70, seed: 4)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        try f.commitAll(old)
        let g = try store.createFile(in: store.dataDirectory, name: "g")
        try g.commitAll(other)
        g.close()
        if scenario == .unlinkOneOfTwoLinks { XCTAssertEqual(linkat(store.dataDirectory, "f", store.dataDirectory, "f2", 0), 0) }
        let keepOpen = scenario == .unlinkOpen || scenario == .legacyRemoveOpen
        if !keepOpen { f.close() }
        let before = try names(store)

        TestHooks.noPendingLinks = fallback
        arm(step, crash: crash)
        var threw = false
        do {
            switch scenario {
            case .unlinkClosed, .unlinkOpen, .unlinkOneOfTwoLinks:
                let v = openat(store.dataDirectory, "f", oPath | O_NOFOLLOW)
                defer { close(v) }
                try store.removingLink(of: v) { XCTAssertEqual(unlinkat(store.dataDirectory, "f", 0), 0) }
            case .renameOver:
                let v = openat(store.dataDirectory, "f", oPath | O_NOFOLLOW)
                defer { close(v) }
                try store.removingLink(of: v) { XCTAssertEqual(renameat(store.dataDirectory, "g", store.dataDirectory, "f"), 0) }
            case .legacyRemoveOpen:
                XCTAssertEqual(unlinkat(store.dataDirectory, "f", 0), 0)
                try store.removeFile(f.id)
            }
        } catch { threw = true }
        if keepOpen && !(crash && threw) {
            // The sandbox keeps writing to the unlinked file (moving it to fresh IDs), then closes it.
            if !exists(store, "f") { for i in 0..<3 { try f.commitAll(Fixture.bytes(9000, seed: 10 + UInt64(i))) } }
            f.close()
        }
        disarm()
        TestHooks.noPendingLinks = false
        store = try reopenAfter(crash: crash && threw, store)

        let after: [String: [UInt8]]
        switch scenario {
        case .unlinkClosed, .unlinkOpen, .legacyRemoveOpen: after = ["g": other]
        case .renameOver: after = ["f": other]
        case .unlinkOneOfTwoLinks: after = ["f2": old, "g": other]
        }
        let got = try names(store)
        XCTAssertTrue(got == before || got == after, "\(label): \(got.mapValues(\.count))")
        XCTAssertEqual(pendingEntries(store), [], label)
        XCTAssertEqual(sidecarCount(store), Set(got.keys.map { inode(store, $0) }).count, "\(label): one sidecar per file")
        let report = Verifier.run(store: store)
        XCTAssertTrue(report.isClean, "\(label): \(report.damage)")
        store.close()
    }

    /// A crash while a removed file is still open leaves `.gone`; the next open removes its metadata
    /// under every ID it had (it moved to fresh IDs after its name went).
    func testOpenRemovedFileMovedThenCrashedLeavesNothing() throws {
        guard CipherSuite.aes256gcm.isAvailable else { throw XCTSkip("moves to fresh IDs need AES-256-GCM") }
        let dir = TempDir()
        var options = SealedStore.Options()
        options.rekeyThreshold = 3
        var store = try Fixture.store(dir, suite: .aes256gcm, options: options)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        try f.commitAll(Fixture.bytes(9000, seed: 1))
        let v = openat(store.dataDirectory, "f", oPath | O_NOFOLLOW)
        XCTAssertTrue(try store.removingLink(of: v) { XCTAssertEqual(unlinkat(store.dataDirectory, "f", 0), 0) })
        close(v)
        var ids = Set([f.id])
        for i in 0..<4 { try f.commitAll(Fixture.bytes(9000, seed: 2 + UInt64(i))); ids.insert(f.id) }
        XCTAssertGreaterThan(ids.count, 2, "the file moved to fresh IDs")
        XCTAssertEqual(pendingEntries(store).filter { $0.hasSuffix(".gone") }.count, ids.count, "one .gone per ID held since the removal")
        store.abandon()
        store = try SealedStore.open(at: dir.sub("store"), key: Fixture.key, options: options)
        defer { store.close() }
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.sub("store/meta/journal")), [])
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    /// A file whose move to a fresh ID was interrupted (journal of the old ID, sidecar of the new one,
    /// header still old) and that is removed before anything opened it again: both IDs' metadata go.
    func testRemovalOfAFileWithAnInterruptedMove() throws {
        guard CipherSuite.aes256gcm.isAvailable else { throw XCTSkip("moves to fresh IDs need AES-256-GCM") }
        for step in [CommitStep.journalWritten, .chunksApplied, .sidecarWritten] {
            let dir = TempDir()
            var options = SealedStore.Options()
            options.rekeyThreshold = 3
            var store = try Fixture.store(dir, suite: .aes256gcm, options: options)
            let f = try store.createFile(in: store.dataDirectory, name: "f")
            try f.commitAll(Fixture.bytes(5000, seed: 1))
            TestHooks.crashAt = step
            XCTAssertThrowsError(try f.commitAll(Fixture.bytes(9000, seed: 2)), "\(step)")
            TestHooks.crashAt = nil
            store.abandon()
            store = try SealedStore.open(at: dir.sub("store"), key: Fixture.key, options: options)
            XCTAssertGreaterThan(sidecarCount(store) + ((try? FileManager.default.contentsOfDirectory(atPath: dir.sub("store/meta/journal")).count) ?? 0), 1)
            let v = openat(store.dataDirectory, "f", oPath | O_NOFOLLOW)
            XCTAssertTrue(try store.removingLink(of: v) { XCTAssertEqual(unlinkat(store.dataDirectory, "f", 0), 0) }, "\(step)")
            close(v)
            XCTAssertEqual(sidecarCount(store), 0, "\(step)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.sub("store/meta/journal")), [], "\(step)")
            XCTAssertTrue(Verifier.run(store: store).isClean, "\(step)")
            store.close()
        }
    }

    /// A clean close of the store performs deferred removals (nothing left for recovery).
    func testStoreCloseFinishesDeferredRemovals() throws {
        let dir = TempDir()
        var store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        try f.commitAll([1, 2, 3])
        let v = openat(store.dataDirectory, "f", oPath | O_NOFOLLOW)
        XCTAssertTrue(try store.removingLink(of: v) { XCTAssertEqual(unlinkat(store.dataDirectory, "f", 0), 0) })
        close(v)
        var st = stat()
        XCTAssertEqual(fstat(f.fileDescriptor, &st), 0)
        XCTAssertEqual(st.st_nlink, 0, "no pending hard link keeps an open removed file visible")
        XCTAssertEqual(sidecarCount(store), 1, "still open")
        store.close()
        store = try SealedStore.open(at: dir.sub("store"), key: Fixture.key)
        defer { store.close() }
        XCTAssertEqual(store.recoveredOperations, 0)
        XCTAssertEqual(sidecarCount(store), 0)
        XCTAssertTrue(Verifier.run(store: store).isClean)
    }

    /// Leftovers recovery does not understand are reported, not guessed at.
    func testUnknownPendingEntriesAreReported() throws {
        let dir = TempDir()
        var store = try Fixture.store(dir)
        store.close()
        let pending = dir.sub("store/meta/pending")
        FileManager.default.createFile(atPath: pending + "/stray", contents: Data())
        store = try SealedStore.open(at: dir.sub("store"), key: Fixture.key)
        defer { store.close() }
        let report = Verifier.run(store: store)
        XCTAssertTrue(report.isClean)
        XCTAssertTrue(report.notes.contains { $0.contains("meta/pending/stray") }, "\(report.notes)")
    }

    // MARK: Full filesystem

    /// On a full filesystem (a 1 MiB tmpfs) a create or an import fails with ENOSPC and leaves
    /// nothing; a removal still works.
    func testFullFilesystemCreateLeavesNothing() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        let dir = TempDir()
        let fs = dir.sub("fs")
        mkdir(fs, 0o700)
        guard spawnWait(["/bin/mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", fs]) == 0 else {
            throw XCTSkip("cannot mount a tmpfs here")
        }
        defer { _ = spawnWait(["/bin/umount", "-l", fs]) }
        let path = fs + "/store"
        try SealedStore.initialize(at: path, key: Fixture.key, suite: .xchacha20poly1305, chunkSize: 4096)
        let store = try SealedStore.open(at: path, key: Fixture.key)
        defer { store.close() }
        let f = try store.createFile(in: store.dataDirectory, name: "kept")
        try f.commitAll(Fixture.bytes(10_000, seed: 1))
        f.close()
        let filler = open(fs + "/filler", O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(filler, $0.baseAddress!, $0.count) }) > 0 {}
        close(filler)
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, name: "new")) {
            guard case .io(_, let e) = $0 as? SealedStoreError else { return XCTFail("\($0)") }
            XCTAssertEqual(e, ENOSPC)
        }
        let source = dir.sub("src")
        mkdir(source, 0o700)
        FileManager.default.createFile(atPath: source + "/big", contents: Data(Fixture.bytes(50_000, seed: 2)))
        XCTAssertThrowsError(try TreeImporter.run(store: store, source: source, destination: "/"))
        XCTAssertFalse(exists(store, "new"))
        XCTAssertFalse(exists(store, "big"))
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 1)
        var report = Verifier.run(store: store)
        XCTAssertTrue(report.isClean, "\(report.damage)")
        let v = openat(store.dataDirectory, "kept", oPath | O_NOFOLLOW)
        XCTAssertTrue(try store.removingLink(of: v) { XCTAssertEqual(unlinkat(store.dataDirectory, "kept", 0), 0) })
        close(v)
        XCTAssertEqual(sidecarCount(store), 0)
        report = Verifier.run(store: store)
        XCTAssertTrue(report.isClean, "\(report.damage)")
    }

    private func spawnWait(_ args: [String]) -> Int32 {
        let argv = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, args[0], nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    // MARK: Init

    func testInterruptedInitCanBeRerun() throws {
        let dir = TempDir()
        let path = dir.sub("store")
        // What initialize leaves when killed before the keyring rename.
        for d in ["", "/data", "/meta", "/meta/files", "/meta/journal", "/meta/pending"] { mkdir(path + d, 0o700) }
        FileManager.default.createFile(atPath: path + "/meta/lock", contents: Data())
        FileManager.default.createFile(atPath: path + "/config", contents: Data("format-version=1\n".utf8))
        FileManager.default.createFile(atPath: path + "/keyring.tmp", contents: Data([1, 2]))
        XCTAssertThrowsError(try SealedStore.open(at: path, key: Fixture.key))
        try SealedStore.initialize(at: path, key: Fixture.key, suite: .xchacha20poly1305, chunkSize: 4096)
        let store = try SealedStore.open(at: path, key: Fixture.key)
        XCTAssertTrue(Verifier.run(store: store).isClean)
        store.close()
        // Anything that is not an init's own skeleton is never touched.
        let other = dir.sub("other")
        for d in ["", "/data"] { mkdir(other + d, 0o700) }
        FileManager.default.createFile(atPath: other + "/data/precious", contents: Data([1]))
        XCTAssertThrowsError(try SealedStore.initialize(at: other, key: Fixture.key))
        XCTAssertTrue(FileManager.default.fileExists(atPath: other + "/data/precious"))
    }

    // MARK: Helpers

    private func arm(_ step: NamespaceStep, crash: Bool) {
        if crash { TestHooks.namespaceCrashAt = step } else { TestHooks.namespaceFailAt = step }
    }

    private func disarm() { TestHooks.namespaceCrashAt = nil; TestHooks.namespaceFailAt = nil }

    /// After a simulated crash the store is dropped like a dead process (no cleanup at all).
    private func reopenAfter(crash: Bool, _ store: SealedStore) throws -> SealedStore {
        if crash { store.abandon() } else { store.close() }
        return try SealedStore.open(at: store.path, key: Fixture.key, options: store.options)
    }

    private func openPath(_ store: SealedStore, _ name: String) throws -> SealedFile {
        let fd = openBeneathForTest(store, name, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0, name)
        defer { close(fd) }
        return try store.openFile(descriptor: fd)
    }

    private func openBeneathForTest(_ store: SealedStore, _ name: String, _ flags: Int32) -> Int32 {
        let parts = name.split(separator: "/").map(String.init)
        var dir = dup(store.dataDirectory)
        for p in parts.dropLast() { let next = openat(dir, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW); close(dir); dir = next }
        defer { close(dir) }
        return openat(dir, parts.last!, flags | O_NOFOLLOW)
    }

    private func exists(_ store: SealedStore, _ name: String) -> Bool {
        let fd = openBeneathForTest(store, name, oPath)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    private func inode(_ store: SealedStore, _ name: String) -> UInt64 {
        var st = stat()
        fstatat(store.dataDirectory, name, &st, AT_SYMLINK_NOFOLLOW)
        return UInt64(st.st_ino)
    }

    /// Name → content of every file directly in data/.
    private func names(_ store: SealedStore) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: store.path + "/data") {
            let f = try openPath(store, name)
            out[name] = try f.readAll()
            f.close()
        }
        return out
    }
}
