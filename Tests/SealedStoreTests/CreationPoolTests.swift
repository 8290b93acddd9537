import XCTest
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// The creation pool (Keys/README.md §7.1): new files made ahead by a background thread are
/// ordinary interrupted creates on disk, so a process death with a full pool leaves nothing after
/// recovery, `close` removes them, and a create served from the pool is indistinguishable from
/// one made on the spot (mode as open(2) would set it, fresh times, owner from `prepare`).
final class CreationPoolTests: XCTestCase {
    private let capacity = 8

    private func pooledStore(_ dir: TempDir) throws -> SealedStore {
        let store = try Fixture.store(dir)
        store.startCreationPool(capacity: capacity)
        XCTAssertTrue(store.waitForFullCreationPool(seconds: 10), "the pool fills")
        return store
    }

    func testAFullPoolIsPendingCreatesOnDisk() throws {
        let dir = TempDir()
        let store = try pooledStore(dir)
        defer { store.close() }
        let pending = pendingEntries(store)
        XCTAssertEqual(pending.count, capacity)
        XCTAssertTrue(pending.allSatisfy { $0.hasSuffix(".new") }, "\(pending)")
        XCTAssertEqual(sidecarCount(store), capacity, "each entry has its sidecar already")
        for name in pending {
            var st = stat()
            XCTAssertEqual(fstatat(store.layout.pendingFD, name, &st, AT_SYMLINK_NOFOLLOW), 0)
            XCTAssertEqual(st.st_mode & 0o7777, 0o600, "pooled files are private until taken")
            XCTAssertEqual(st.st_nlink, 1)
            XCTAssertEqual(st.st_size, off_t(FileHeader.length), "complete header")
        }
    }

    /// Entries made after a create take the mode it asked for, so repeated creates of one mode
    /// skip the chmod; a create of another mode (set-ID bits included) still gets exactly its own.
    func testEntriesFollowTheLastRequestedModeAndCreatesStillGetTheirOwn() throws {
        let dir = TempDir()
        let mask = umask(0o022)
        defer { umask(mask) }
        let store = try pooledStore(dir)
        defer { store.close() }
        for i in 0..<capacity {   // every entry made before the first create is taken and remade
            try store.createFile(in: store.dataDirectory, name: "a\(i)", mode: 0o640).close()
        }
        // The stock refills once half of it is taken, after the first create set the hint; the
        // refill thread runs at nice 19, so wait (bounded) until its entries show.
        var modes: [UInt32] = []
        for _ in 0..<1000 {
            modes = pendingEntries(store).map { name in
                var st = stat()
                _ = fstatat(store.layout.pendingFD, name, &st, AT_SYMLINK_NOFOLLOW)
                return UInt32(st.st_mode) & 0o7777
            }
            if modes.contains(0o640) { break }
            usleep(10_000)
        }
        XCTAssertTrue(modes.allSatisfy { $0 == 0o600 || $0 == 0o640 }, "\(modes.map { String($0, radix: 8) })")
        XCTAssertTrue(modes.contains(0o640), "entries made after 0640 creates have that mode")
        for (i, mode) in [UInt32(0o640), 0o4755, 0o600, 0o640].enumerated() {
            try store.createFile(in: store.dataDirectory, name: "b\(i)", mode: mode).close()
            var st = stat()
            XCTAssertEqual(fstatat(store.dataDirectory, "b\(i)", &st, AT_SYMLINK_NOFOLLOW), 0)
            XCTAssertEqual(UInt32(st.st_mode) & 0o7777, mode & ~0o022, "mode \(String(mode, radix: 8))")
        }
        store.waitForFullCreationPool(seconds: 1)   // full or not: every entry is checked
        for name in pendingEntries(store) {
            var st = stat()
            XCTAssertEqual(fstatat(store.layout.pendingFD, name, &st, AT_SYMLINK_NOFOLLOW), 0)
            XCTAssertEqual(st.st_mode & 0o7000, 0, "never set-ID or sticky in meta/pending")
        }
    }

    func testCreatesFromThePoolAreOrdinaryFiles() throws {
        let dir = TempDir()
        let mask = umask(0o022)   // before the pool starts: it applies the umask it saw then
        defer { umask(mask) }
        let store = try pooledStore(dir)
        var before = timespec()
        clock_gettime(CLOCK_REALTIME, &before)
        var names: [String] = []
        for (i, mode) in [UInt32(0o644), 0o640, 0o600, 0o777, 0o4755].enumerated() {
            let name = "f\(i)"
            names.append(name)
            let f = try store.createFile(in: store.dataDirectory, name: name, mode: mode)
            try f.commitAll(Array("content \(i)".utf8))
            f.close()
            var st = stat()
            XCTAssertEqual(fstatat(store.dataDirectory, name, &st, AT_SYMLINK_NOFOLLOW), 0)
            XCTAssertEqual(UInt32(st.st_mode) & 0o7777, mode & ~0o022, "mode \(String(mode, radix: 8)) as open(2) with umask 022")
            XCTAssertEqual(st.st_nlink, 1, "one name, no pending link")
            XCTAssertEqual(st.st_uid, getuid())
            XCTAssertGreaterThanOrEqual(st.st_mtim.tv_sec, before.tv_sec, "made ahead, but its times are the create's")
        }
        // The refill thread runs at nice 19: give it the time it needs to catch up.
        for _ in 0..<1000 where store.creationPoolStatistics.made <= capacity { usleep(10_000) }
        XCTAssertGreaterThan(store.creationPoolStatistics.made, capacity, "the creates took pooled files and it refilled")
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, name: "f0")) {
            guard case .io(_, let e) = $0 as? SealedStoreError else { return XCTFail("\($0)") }
            XCTAssertEqual(e, EEXIST, "RENAME_NOREPLACE keeps an existing name")
        }
        store.close()
        XCTAssertEqual(pendingEntries(store), [], "close removes the pool's entries")
        XCTAssertEqual(sidecarCount(store), names.count, "and their sidecars: none is orphaned")
        let reopened = try SealedStore.open(at: store.path, key: Fixture.key)
        defer { reopened.close() }
        XCTAssertEqual(reopened.recoveredOperations, 0)
        let report = Verifier.run(store: reopened)
        XCTAssertTrue(report.isClean, "\(report.damage)")
        for (i, name) in names.enumerated() {
            let fd = openat(reopened.dataDirectory, name, O_RDONLY | O_NOFOLLOW)
            let f = try reopened.openFile(descriptor: fd)
            close(fd)
            XCTAssertEqual(try f.readAll(), Array("content \(i)".utf8))
            f.close()
        }
    }

    /// `prepare` (owner, mode fixes) runs on a pooled file before its name appears, and a failing
    /// `prepare` uses up the entry without leaving anything.
    func testPrepareAndItsFailureWithThePool() throws {
        let dir = TempDir()
        let store = try pooledStore(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "p", mode: 0o600) { fd in
            var st = stat()
            fstat(fd, &st)
            XCTAssertEqual(st.st_nlink, 1, "not named under data/ yet")
            XCTAssertEqual(fchmod(fd, 0o640), 0)
            if getuid() == 0 { XCTAssertEqual(fchown(fd, 1234, 5678), 0) }
        }
        f.close()
        var st = stat()
        XCTAssertEqual(fstatat(store.dataDirectory, "p", &st, AT_SYMLINK_NOFOLLOW), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        if getuid() == 0 { XCTAssertEqual(st.st_uid, 1234); XCTAssertEqual(st.st_gid, 5678) }
        XCTAssertThrowsError(try store.createFile(in: store.dataDirectory, name: "g") { _ in throw SealedStoreError.invalidArgument("no") })
        var gone = stat()
        XCTAssertNotEqual(fstatat(store.dataDirectory, "g", &gone, AT_SYMLINK_NOFOLLOW), 0)
        store.close()
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 1)
    }

    /// A process death with a full pool (simulated: no cleanup at all) leaves `.new` entries with
    /// link count 1 and their sidecars; the next open drops them, verify is clean.
    func testDeathWithAFullPoolLeavesNothingAfterRecovery() throws {
        let dir = TempDir()
        let store = try pooledStore(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "kept")
        try f.commitAll([7, 7, 7])
        f.close()
        let inStock = store.creationPoolCount   // the pool refills only once half of it is taken
        XCTAssertEqual(inStock, capacity - 1)
        store.abandon()
        XCTAssertEqual(pendingEntries(store).count, inStock, "the pool's entries are still on disk")
        XCTAssertEqual(sidecarCount(store), inStock + 1)
        let reopened = try SealedStore.open(at: store.path, key: Fixture.key)
        defer { reopened.close() }
        XCTAssertEqual(reopened.recoveredOperations, inStock)
        XCTAssertEqual(pendingEntries(reopened), [])
        XCTAssertEqual(sidecarCount(reopened), 1, "no orphan sidecar")
        let report = Verifier.run(store: reopened)
        XCTAssertTrue(report.isClean, "\(report.damage)")
    }

    /// Entries are tied to the epoch whose master key made them: after a new epoch, a create
    /// gets a file of the new epoch, and the stale entries are removed.
    func testEntriesOfAnOlderEpochAreNotUsed() throws {
        let dir = TempDir()
        let store = try pooledStore(dir)
        let old = store.keyring.currentEpoch
        let new = try store.addEpoch()
        XCTAssertNotEqual(old, new)
        let f = try store.createFile(in: store.dataDirectory, name: "n")
        XCTAssertEqual(f.header.epoch, new)
        f.close()
        store.close()
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), 1)
        let reopened = try SealedStore.open(at: store.path, key: Fixture.key)
        defer { reopened.close() }
        XCTAssertTrue(Verifier.run(store: reopened).isClean)
    }

    /// Many threads creating at once drain and refill the pool; every file is there once.
    func testConcurrentCreatesWithThePool() throws {
        let dir = TempDir()
        let store = try pooledStore(dir)
        let perThread = 60, threads = 4
        let failures = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread {
                do {
                    let f = try store.createFile(in: store.dataDirectory, name: "t\(t)-\(i)")
                    f.close()
                } catch {
                    failures.add()
                }
            }
        }
        XCTAssertEqual(failures.value, 0)
        store.close()
        XCTAssertEqual(pendingEntries(store), [])
        XCTAssertEqual(sidecarCount(store), perThread * threads)
        let reopened = try SealedStore.open(at: store.path, key: Fixture.key)
        defer { reopened.close() }
        XCTAssertTrue(Verifier.run(store: reopened).isClean)
    }
}

private final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
