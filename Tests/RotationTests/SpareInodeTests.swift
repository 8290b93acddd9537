import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// Replacing moves that overwrite the old inode of an earlier move (`SpareInodes`) instead of
/// creating their new file: longer and shorter spares, mapped and pwritten ones, with and without
/// syncs, and crashes while a spare is being turned into a new file.
final class SpareInodeTests: XCTestCase {
    /// Sizes around the thresholds: below and above the mapping minimum (256 KiB), exact chunk
    /// multiples, empty, so that spares are both longer and shorter than the files written into them.
    static let sizes = [0, 1, 5_000, 4096 * 70, 262_144, 300_001, 700_000, 1 << 20, (1 << 20) + 1, 2 << 20, 600_000, 65_537,
                        1_500_000, 4096 * 300, 90_000, 2_000_000]

    /// Where the fixtures go: TMPDIR (here ext4: spares rewritten with pwrite) and, if present,
    /// /dev/shm (tmpfs: large spares rewritten through a shared mapping).
    static let places: [String?] = {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        let shm = mounts.split(separator: "\n").contains { $0.split(separator: " ").prefix(3).dropFirst().elementsEqual(["/dev/shm", "tmpfs"]) }
        return [nil] + (shm ? ["/dev/shm"] : [])
    }()

    /// A store of `copies` rounds of `sizes` in shuffled order, chunk size 4096.
    static func fixture(_ label: String, copies: Int, seed: UInt64, under place: String? = nil) throws -> StoreFixture {
        let scratch = Scratch(label, under: place)
        var rng = SeededRandom(seed)
        var paths: [String] = []
        for c in 0..<copies {
            var order = sizes
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let dir = "d\(c % 3)"
            try FileManager.default.createDirectory(atPath: scratch.sub("src/" + dir), withIntermediateDirectories: true)
            for (i, size) in order.enumerated() {
                let path = "\(dir)/f\(c)-\(i)"
                try Data(TreeMaker.bytes(size, seed: seed &+ UInt64(c * 100 + i))).write(to: URL(fileURLWithPath: scratch.sub("src/" + path)))
                paths.append(path)
            }
        }
        let f = StoreFixture(scratch: scratch, paths: paths)
        XCTAssertEqual(try CLI.run(["init", "--store", f.storePath, "--key-file", f.keyPath, "--chunk-size", "4096"]).status, 0)
        XCTAssertEqual(try CLI.run(["import", "--store", f.storePath, "--key-file", f.keyPath, f.sourcePath]).status, 0)
        return f
    }

    /// Every file ID the store has had, for every path: a spare's old bytes left in a file (an
    /// uncut tail, an unwritten range) would authenticate under its former owner's ID.
    static func allFormer(_ ids: [String: FileID]) -> [String: Set<FileID>] {
        let all = Set(ids.values)
        return ids.mapValues { _ in all }
    }

    func testSparesOfEverySizeAreReusedCleanly() throws {
        for place in SpareInodeTests.places { for syncs in [false, true] {
            let f = try SpareInodeTests.fixture("spares", copies: 3, seed: syncs ? 5 : 6, under: place)
            let (keys, ids) = try f.capture()
            var options = RotationOptions()
            options.jobs = 2
            options.syncs = syncs
            options.inPlaceLimit = 0   // every file, however small, takes the replacing move
            options.batchFiles = 5     // with syncs a spare waits a batch: several batches per worker
            options.batchBytes = 3 << 20
            let r = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            XCTAssertTrue(r.complete, "\(r.failures.map(\.message))")
            XCTAssertEqual(r.moved, ids.count)
            XCTAssertGreaterThan(r.reusedInodes, ids.count / 3, "syncs \(syncs): spares must be reused")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/pending"), [], "spares left behind")
            let v = try f.verify()
            XCTAssertEqual(v.status, 0, v.stdout)
            try f.assertContentsIntact()
            // Each data file is exactly as long as its committed size says (no tail of a longer spare).
            let store = try SealedStore.open(at: f.storePath, key: f.key)
            for p in f.paths {
                var st = stat()
                XCTAssertEqual(stat(f.storePath + "/data/" + p, &st), 0)
                let size = try Data(contentsOf: URL(fileURLWithPath: f.sourcePath + "/" + p)).count
                let layout = ChunkLayout(chunkSize: 4096, suite: store.config.suite)
                XCTAssertEqual(UInt64(st.st_size), layout.fileLength(size: UInt64(size)), p)
            }
            store.close()
            // A second rotation reuses the first one's new files as spares.
            let (secondKeys, middle) = try f.capture()
            let again = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            XCTAssertTrue(again.complete && again.reusedInodes > 0)
            _ = try EpochRetirement.retire(path: f.storePath, key: f.key)
            try f.assertContentsIntact()
            var former = SpareInodeTests.allFormer(ids)
            for p in f.paths { former[p]!.formUnion(Set(middle.values)) }
            try assertRetiredKeysOpenNothing(f, retired: keys.merging(secondKeys) { a, _ in a }, formerIDs: former, kept: 3)
        } }
    }

    /// Killed (in-process) right after a spare was renamed to `.new` and before anything was
    /// written into it, or after it was written completely: the `.new` entry holds another file's
    /// old inode; the next open of the store removes it, every file reads as before or after, and a
    /// rerun finishes.
    func testCrashWhileASpareBecomesANewFile() throws {
        for place in SpareInodeTests.places { for step in [RotationStep.reusedSpare, .stagedFile, .staged] {
            let f = try SpareInodeTests.fixture("sparecrash", copies: 2, seed: 9, under: place)
            let (keys, ids) = try f.capture()
            var options = RotationOptions()
            options.jobs = 1
            options.syncs = false
            options.inPlaceLimit = 0
            RotationTestHooks.crashAt = step
            // .stagedFile/.staged: let the first moves through so that spares exist when it fires.
            RotationTestHooks.passes = step == .reusedSpare ? 0 : 4
            defer { RotationTestHooks.crashAt = nil; RotationTestHooks.passes = 0 }
            let interrupted = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            RotationTestHooks.crashAt = nil
            XCTAssertGreaterThan(interrupted.moved, 0, "\(step)")
            XCTAssertGreaterThan(interrupted.reusedInodes, 0, "\(step)")
            XCTAssertFalse(interrupted.failures.isEmpty, "\(step)")
            XCTAssertTrue(interrupted.failures.allSatisfy { $0.message.contains("simulated crash") }, "\(step)")
            let pending = try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/pending")
            XCTAssertFalse(pending.filter { $0.hasSuffix(".new") }.isEmpty, "\(step): interrupted moves leave `.new` entries")
            try f.assertContentsIntact()
            let v = try f.verify()
            XCTAssertEqual(v.status, 0, "\(step): \(v.stdout)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/pending"), [], "\(step)")
            let resumed = try StoreRotation.rotate(path: f.storePath, key: f.key)
            XCTAssertTrue(resumed.resumed && resumed.complete, "\(step): \(resumed.failures.map(\.message))")
            XCTAssertEqual(resumed.moved + resumed.alreadyCurrent, ids.count)
            _ = try EpochRetirement.retire(path: f.storePath, key: f.key)
            try f.assertContentsIntact()
            XCTAssertEqual(try f.verify().status, 0)
            try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: SpareInodeTests.allFormer(ids), kept: 2)
        } }
    }

    /// `rotate` SIGKILLed at random instants on a store of large files (so nearly every move
    /// after a worker's first takes a spare), with and without syncs, rerun until complete:
    /// every file reads back after every kill, and the end state is clean.
    func testSIGKILLWhileSparesAreReused() throws {
        for place in SpareInodeTests.places { try killAndResume(under: place) }
    }

    private func killAndResume(under place: String?) throws {
        let kills = longMode ? 60 : 16
        let f = try SpareInodeTests.fixture("sparekill", copies: 4, seed: 11, under: place)
        var (allKeys, firstIDs) = try f.capture()
        var rng = SystemRandomNumberGenerator()
        var interrupted = 0
        var window: UInt32 = 300_000
        for iteration in 0..<kills {
            var args = ["rotate", "--store", f.storePath, "--key-file", f.keyPath, "--json"]
            if iteration % 2 == 0 { args += ["--no-sync"] }
            let child = try CLI.spawn(args)
            usleep(UInt32.random(in: 2_000...window, using: &rng))
            kill(child.pid, SIGKILL)
            let status = child.wait()
            if status == 0 { window = max(20_000, window / 2) } else { XCTAssertEqual(status, 128 + SIGKILL, "iteration \(iteration)") }
            let info = try f.info()
            if !(info["rotationInProgress"] is NSNull) { interrupted += 1 }
            XCTAssertEqual(info["filesWithUnknownEpoch"] as? Int, 0, "iteration \(iteration)")
            try f.assertContentsIntact()
            let (keys, _) = try f.capture()
            for (e, k) in keys where allKeys[e] == nil { allKeys[e] = k }
        }
        let final = try f.rotate()
        XCTAssertEqual(final.status, 0, final.stderr)
        let kept = UInt32(final.json["epoch"] as! Int)
        XCTAssertEqual(try f.verify().status, 0)
        XCTAssertEqual(try f.rotate(["--retire"]).status, 0)
        try f.assertExportMatches()
        allKeys[kept] = nil
        try assertRetiredKeysOpenNothing(f, retired: allKeys, formerIDs: firstIDs.mapValues { [$0] }, kept: kept)
        firstIDs = [:]
        XCTAssertGreaterThanOrEqual(interrupted, kills / 2, "too few kills landed inside a rotation")
        print("spare kills (\(place ?? "TMPDIR")): \(kills), left a rotation unfinished: \(interrupted), epochs seen: \(allKeys.count + 1)")
    }
}
