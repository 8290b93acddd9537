import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// Resumability: `rotate` SIGKILLed at random instants, rerun, until it completes; and crashes
/// simulated in-process after each step of a file move.
final class InterruptedRotationTests: XCTestCase {
    /// SEALGOFER_ROTATE_KILLS overrides the number of kills (short: 30, long: 200).
    func testSIGKILLAtRandomInstantsThenResume() throws {
        let kills = Int(ProcessInfo.processInfo.environment["SEALGOFER_ROTATE_KILLS"] ?? "") ?? (longMode ? 200 : 30)
        let f = try StoreFixture.make("kill", files: longMode ? 4_000 : 1_000, seed: 21, maxLarge: 1 << 20)
        var (allKeys, firstIDs) = try f.capture()
        var rng = SystemRandomNumberGenerator()
        var interrupted = 0, completedBeforeKill = 0, checks = 0
        // Kill windows adapt: a run that completes before its kill halves the window.
        var window: UInt32 = 800_000
        for iteration in 0..<kills {
            var args = ["rotate", "--store", f.storePath, "--key-file", f.keyPath, "--json"]
            if iteration % 3 == 1 { args += ["--jobs", "1"] }
            if iteration % 4 == 2 { args += ["--no-sync"] }
            let child = try CLI.spawn(args)
            usleep(UInt32.random(in: 1_000...window, using: &rng))
            kill(child.pid, SIGKILL)
            let status = child.wait()
            let result = child.result(status: status)
            if status == 0 {
                completedBeforeKill += 1
                window = max(50_000, window / 2)
            } else {
                XCTAssertEqual(status, 128 + SIGKILL, "iteration \(iteration): \(result.stderr)")
            }
            let info = try f.info()
            if !(info["rotationInProgress"] is NSNull) { interrupted += 1 }
            XCTAssertEqual(info["filesWithUnknownEpoch"] as? Int, 0, "iteration \(iteration)")
            // Readable throughout: a sample of files (all of them now and then) read back exactly.
            if iteration % 5 == 4 { try f.assertContentsIntact(); checks += 1 } else { try f.assertContentsIntact(sample: 25) }
            // Every epoch ever seen is retired in the end; remember its key.
            let (keys, _) = try f.capture()
            for (e, k) in keys where allKeys[e] == nil { allKeys[e] = k }
        }
        let final = try f.rotate()
        XCTAssertEqual(final.status, 0, final.stderr)
        XCTAssertEqual(final.json["complete"] as? Bool, true)
        let kept = UInt32(final.json["epoch"] as! Int)
        XCTAssertEqual(try f.verify().status, 0)
        let retire = try f.rotate(["--retire"])
        XCTAssertEqual(retire.status, 0, retire.stderr)
        let info = try f.info()
        XCTAssertEqual((info["epochs"] as! [[String: Any]]).map { $0["id"] as? Int }, [Int(kept)])
        try f.assertExportMatches()
        XCTAssertEqual(try f.verify().status, 0)
        allKeys[kept] = nil
        try assertRetiredKeysOpenNothing(f, retired: allKeys, formerIDs: firstIDs.mapValues { [$0] }, kept: kept)
        firstIDs = [:]
        print("rotation kills: \(kills), left a rotation unfinished: \(interrupted), completed before the kill: \(completedBeforeKill), "
              + "full content checks: \(checks), epochs seen: \(allKeys.count + 1)")
        XCTAssertGreaterThanOrEqual(interrupted, kills / 3, "too few kills landed inside a rotation to prove anything")
    }

    /// Small batches, a tiny memory budget and files larger than a batch (moved alone, one at a
    /// time under the budget), on two workers, with and without syncs.
    func testBatchBoundariesAndMemoryBudget() throws {
        for syncs in [true, false] {
            let f = try StoreFixture.make("batches", files: 300, seed: 41, maxLarge: 1 << 20)
            let (keys, ids) = try f.capture()
            var options = RotationOptions()
            options.jobs = 2
            options.syncs = syncs
            options.batchFiles = 7
            options.batchBytes = 64 << 10
            options.memoryBudget = 1 << 20
            let r = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            XCTAssertTrue(r.complete, "\(r.failures.map(\.message))")
            XCTAssertEqual(r.moved, Set(ids.values).count)
            XCTAssertEqual(try f.verify().status, 0)
            try f.assertContentsIntact()
            let retired = try EpochRetirement.retire(path: f.storePath, key: f.key)
            XCTAssertEqual(retired.retired, [1])
            try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 2)
        }
    }

    /// A crash right after each step of a move — the replacing move's (new file written, its
    /// sidecar, old file linked as `.unlink`, renamed) and the journaled move's (hard-linked
    /// files) — leaves every file reading as before or after; the next open of the store (here:
    /// `verify`) resolves the leftovers cleanly, and a rerun resumes the same rotation.
    func testCrashAfterEachMoveStep() throws {
        for step in [RotationStep.stagedFile, .stagedSidecar, .staged, .switched,
                     .journalWritten, .chunksApplied, .sidecarWritten, .headerWritten] {
            let f = try StoreFixture.make("step", files: 25, seed: 31)
            let (keys, ids) = try f.capture()
            let linked = Set(Dictionary(grouping: ids.values, by: { $0 }).filter { $0.value.count > 1 }.keys)
            XCTAssertFalse(linked.isEmpty, "the fixture must hold a hard-linked file")
            let journaledStep = [RotationStep.journalWritten, .chunksApplied, .sidecarWritten, .headerWritten].contains(step)
            var options = RotationOptions()
            options.inPlaceLimit = 0   // every file with one name takes the replacing move
            RotationTestHooks.crashAt = step
            defer { RotationTestHooks.crashAt = nil }
            let interrupted = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            RotationTestHooks.crashAt = nil
            let expected = journaledStep ? linked.count : Set(ids.values).count - linked.count
            XCTAssertEqual(interrupted.failures.count, expected, "\(step)")
            XCTAssertTrue(interrupted.failures.allSatisfy { $0.message.contains("simulated crash") }, "\(step)")
            if !journaledStep {
                // Nothing recovered yet: the intent records of the interrupted moves are on disk.
                let pending = try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/pending")
                XCTAssertEqual(pending.filter { $0.hasSuffix(".new") }.count, step == .switched ? 0 : expected, "\(step)")
                XCTAssertEqual(pending.filter { $0.hasSuffix(".unlink") }.count, [.staged, .switched].contains(step) ? expected : 0, "\(step)")
            }
            try f.assertContentsIntact()
            let v = try f.verify()
            XCTAssertEqual(v.status, 0, "\(step): \(v.stdout)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/pending"), [], "\(step)")
            let resumed = try StoreRotation.rotate(path: f.storePath, key: f.key)
            XCTAssertTrue(resumed.resumed && resumed.complete, "\(step): \(resumed.failures.map(\.message))")
            XCTAssertEqual(resumed.targetEpoch, 2)
            XCTAssertEqual(resumed.moved + resumed.alreadyCurrent, Set(ids.values).count)
            // Files switched (or journals committed) before the crash are done; staged ones move again.
            XCTAssertEqual(resumed.moved, journaledStep || step == .switched ? 0 : expected, "\(step)")
            _ = try EpochRetirement.retire(path: f.storePath, key: f.key)
            try f.assertContentsIntact()
            XCTAssertEqual(try f.verify().status, 0)
            try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 2)
        }
    }

    /// Small files take the journaled move in batches (`inPlaceLimit`): a crash after each of its
    /// steps, with and without syncs, leaves every file as before or after, and a rerun finishes.
    func testCrashInBatchedInPlaceMoves() throws {
        for (step, syncs) in [(RotationStep.journalWritten, true), (.chunksApplied, true), (.sidecarWritten, false), (.headerWritten, true)] {
            let f = try StoreFixture.make("inplace", files: 60, seed: 43)
            let (keys, ids) = try f.capture()
            var options = RotationOptions()
            options.syncs = syncs
            options.batchFiles = 9
            options.inPlaceLimit = 2048   // both kinds of move in most batches
            RotationTestHooks.crashAt = step
            defer { RotationTestHooks.crashAt = nil }
            let interrupted = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            RotationTestHooks.crashAt = nil
            XCTAssertGreaterThan(interrupted.failures.count, 0, "\(step)")
            XCTAssertTrue(interrupted.failures.allSatisfy { $0.message.contains("simulated crash") }, "\(step)")
            XCTAssertGreaterThan(interrupted.moved, 0, "\(step): large files take the replacing move")
            try f.assertContentsIntact()
            XCTAssertEqual(try f.verify().status, 0, "\(step)")
            let resumed = try StoreRotation.rotate(path: f.storePath, key: f.key)
            XCTAssertTrue(resumed.resumed && resumed.complete, "\(step): \(resumed.failures.map(\.message))")
            XCTAssertEqual(resumed.moved + resumed.alreadyCurrent, Set(ids.values).count)
            _ = try EpochRetirement.retire(path: f.storePath, key: f.key)
            try f.assertContentsIntact()
            try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 2)
        }
    }

    /// A store left half-rotated by the journaled move of earlier versions (every file moved
    /// through a journal; killed with journals committed but not applied) is finished by the
    /// current rotate: the journals are replayed when the files are opened.
    func testResumesRotationLeftByJournaledMoves() throws {
        for step in [RotationStep.journalWritten, .sidecarWritten] {
            let f = try StoreFixture.make("oldjournal", files: 40, seed: 37)
            let (keys, ids) = try f.capture()
            var options = RotationOptions()
            options.journaledOnly = true
            RotationTestHooks.crashAt = step
            defer { RotationTestHooks.crashAt = nil }
            let interrupted = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
            RotationTestHooks.crashAt = nil
            XCTAssertEqual(interrupted.failures.count, Set(ids.values).count, "\(step)")
            let journals = try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/journal")
            XCTAssertEqual(journals.count, Set(ids.values).count, "\(step): one committed journal per file")
            let resumed = try StoreRotation.rotate(path: f.storePath, key: f.key)
            XCTAssertTrue(resumed.resumed && resumed.complete, "\(step): \(resumed.failures.map(\.message))")
            XCTAssertEqual(resumed.alreadyCurrent, Set(ids.values).count, "\(step): replayed on open, nothing left to move")
            XCTAssertEqual(try f.verify().status, 0)
            _ = try EpochRetirement.retire(path: f.storePath, key: f.key)
            try f.assertContentsIntact()
            try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 2)
        }
    }
}
