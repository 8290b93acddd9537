import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// `rotate` and `rotate --retire` end to end through the CLI.
final class RotateRetireTests: XCTestCase {
    /// Thousands of mixed-size files (hard links, symlinks, empty files, exact chunk multiples):
    /// afterwards every file exports identically, verify is clean, info shows one epoch after
    /// --retire, and the retired master key opens nothing left on disk.
    func testRotateAndRetireManyFiles() throws {
        let count = longMode ? 10_000 : 2_000
        let f = try StoreFixture.make("many", files: count, seed: 11, maxLarge: longMode ? 4 << 20 : 1 << 20)
        let (keys, ids) = try f.capture()
        XCTAssertEqual(Array(keys.keys), [1])
        let inodes = Set(ids.values).count

        let before = try f.info()
        let e1 = (before["epochs"] as! [[String: Any]])[0]
        XCTAssertEqual(e1["files"] as? Int, inodes)

        let r = try f.rotate()
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = r.json
        XCTAssertEqual(j["epoch"] as? Int, 2)
        XCTAssertEqual(j["resumed"] as? Bool, false)
        XCTAssertEqual(j["complete"] as? Bool, true)
        XCTAssertEqual(j["moved"] as? Int, inodes)
        XCTAssertEqual(j["files"] as? Int, inodes)

        let mid = try f.info()
        let epochs = mid["epochs"] as! [[String: Any]]
        XCTAssertEqual(epochs.map { $0["id"] as? Int }, [1, 2])
        XCTAssertEqual(epochs.map { $0["files"] as? Int }, [0, inodes])
        XCTAssertTrue(mid["rotationInProgress"] is NSNull, "\(String(describing: mid["rotationInProgress"]))")
        XCTAssertEqual(try f.verify().status, 0)

        let retire = try f.rotate(["--retire"])
        XCTAssertEqual(retire.status, 0, retire.stderr)
        XCTAssertEqual(retire.json["retired"] as? [Int], [1])
        let after = try f.info()
        XCTAssertEqual((after["epochs"] as! [[String: Any]]).map { $0["id"] as? Int }, [2])
        XCTAssertEqual((after["epochs"] as! [[String: Any]])[0]["files"] as? Int, inodes)

        let v = try f.verify()
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)
        try f.assertExportMatches()
        let (_, newIDs) = try f.capture()
        for (p, id) in ids { XCTAssertNotEqual(newIDs[p], id, "\(p) kept its file ID") }
        try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 2)

        // Nothing left to retire; a second retire says so and succeeds.
        let again = try f.rotate(["--retire"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.json["retired"] as? [Int], [])
    }

    /// A replacing move gives the file a new inode with the old one's mode (set-ID bits too),
    /// owner and times, and puts the directory's times back; a hard-linked file is moved in place
    /// through a journal, so its names keep sharing one inode. Nothing is left in meta/pending or
    /// meta/journal.
    func testMovesKeepModesOwnersTimesAndHardLinks() throws {
        let f = try StoreFixture.make("attrs", files: 120, seed: 17)
        let (_, ids) = try f.capture()
        let data = f.storePath + "/data/"
        let linked = Set(Dictionary(grouping: ids.values, by: { $0 }).filter { $0.value.count > 1 }.keys)
        XCTAssertFalse(linked.isEmpty)
        let plain = f.paths.filter { !linked.contains(ids[$0]!) }
        // Distinctive attributes on some files and on a directory.
        for (k, p) in plain.prefix(12).enumerated() {
            XCTAssertEqual(chmod(data + p, mode_t([0o4751, 0o2640, 0o600, 0o444][k % 4])), 0)
            if geteuid() == 0 && k % 3 == 0 { XCTAssertEqual(chown(data + p, uid_t(1234 + k), gid_t(5678 + k)), 0) }
        }
        for p in f.paths {
            var t = [timespec(tv_sec: 1_000_000_000 + Int(p.utf8.count), tv_nsec: 123_456_789),
                     timespec(tv_sec: 999_000_000, tv_nsec: 987_654_321)]
            XCTAssertEqual(utimensat(AT_FDCWD, data + p, &t, 0), 0)
        }
        let dir = (plain[0] as NSString).deletingLastPathComponent
        var dt = [timespec(tv_sec: 900_000_000, tv_nsec: 0), timespec(tv_sec: 910_000_000, tv_nsec: 5)]
        XCTAssertEqual(utimensat(AT_FDCWD, data + dir, &dt, 0), 0)
        func stats(_ p: String) -> stat { var st = stat(); XCTAssertEqual(lstat(data + p, &st), 0, p); return st }
        let before = Dictionary(uniqueKeysWithValues: f.paths.map { ($0, stats($0)) })
        let dirBefore = stats(dir)

        var options = RotationOptions()
        options.jobs = 2
        options.batchFiles = 16
        options.inPlaceLimit = 2048   // small files are rewritten in place through journals
        let r = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
        XCTAssertTrue(r.complete, "\(r.failures.map(\.message))")
        XCTAssertEqual(r.moved, Set(ids.values).count)
        let sizes = Dictionary(f.paths.map { (ids[$0]!, before[$0]!.st_size) }, uniquingKeysWith: { a, _ in a })
        let inPlace = Set(ids.values.filter { linked.contains($0) || layoutPlaintext(sizes[$0]!) <= 2048 })
        XCTAssertEqual(r.journaledMoves, inPlace.count)

        for p in f.paths {
            let a = before[p]!, b = stats(p)
            XCTAssertEqual(b.st_mode, a.st_mode, p)
            XCTAssertEqual(b.st_uid, a.st_uid, p)
            XCTAssertEqual(b.st_gid, a.st_gid, p)
            XCTAssertEqual(b.st_nlink, a.st_nlink, p)
            XCTAssertEqual(b.st_mtim.tv_sec, a.st_mtim.tv_sec, p)
            XCTAssertEqual(b.st_mtim.tv_nsec, a.st_mtim.tv_nsec, p)
            XCTAssertEqual(b.st_atim.tv_sec, a.st_atim.tv_sec, p)
            if inPlace.contains(ids[p]!) {
                XCTAssertEqual(b.st_ino, a.st_ino, "\(p): a hard-linked or small file is moved in place")
            } else {
                XCTAssertNotEqual(b.st_ino, a.st_ino, "\(p): replaced by a new inode")
            }
        }
        let dirAfter = stats(dir)
        XCTAssertEqual(dirAfter.st_mtim.tv_sec, dirBefore.st_mtim.tv_sec)
        XCTAssertEqual(dirAfter.st_mtim.tv_nsec, dirBefore.st_mtim.tv_nsec)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/pending"), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/journal"), [])
        let v = try f.verify()
        XCTAssertEqual(v.status, 0, v.stdout)
        try f.assertContentsIntact()
    }

    /// A directory the rename may not change (immutable: EPERM, as a read-only directory gives a
    /// non-root rotate EACCES): its files are moved in place through a journal instead.
    func testUnwritableDirectoryFallsBackToJournaledMove() throws {
        let f = try StoreFixture.make("immutable", files: 30, seed: 23)
        let (keys, ids) = try f.capture()
        let dir = "d3"
        let inside = f.paths.filter { $0.hasPrefix(dir + "/") }
        XCTAssertFalse(inside.isEmpty)
        func sh(_ command: String) -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command + " 2>/dev/null"]
            guard (try? p.run()) != nil else { return -1 }
            p.waitUntilExit()
            return p.terminationStatus
        }
        let root = "'" + f.storePath + "/data/" + dir + "'"
        // Only the directories: the files themselves stay writable.
        guard sh("find \(root) -type d -exec chattr +i {} +") == 0 else { throw XCTSkip("chattr +i is not supported here") }
        defer { _ = sh("chattr -R -i \(root)") }

        var options = RotationOptions()
        options.inPlaceLimit = 0
        let r = try StoreRotation.rotate(path: f.storePath, key: f.key, options: options)
        XCTAssertTrue(r.complete, "\(r.failures.map(\.message))")
        XCTAssertEqual(r.moved, Set(ids.values).count)
        let linked = Set(Dictionary(grouping: ids.values, by: { $0 }).filter { $0.value.count > 1 }.keys)
        let insideIDs = Set(inside.map { ids[$0]! })
        XCTAssertEqual(r.journaledMoves, insideIDs.union(linked).count)
        XCTAssertEqual(sh("chattr -R -i \(root)"), 0)
        XCTAssertEqual(try f.verify().status, 0)
        _ = try EpochRetirement.retire(path: f.storePath, key: f.key)
        try f.assertContentsIntact()
        try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 2)
    }

    /// Files on an old epoch: --retire refuses (exit 4), names them, and changes nothing. With
    /// several old epochs, a rotation followed by --retire removes them all.
    func testRetireRefusesWhileFilesUseOldEpochs() throws {
        let f = try StoreFixture.make("refuse", files: 40, seed: 3)
        do {   // a second epoch that no file uses yet (as an application of addEpoch would leave it)
            let s = try SealedStore.open(at: f.storePath, key: f.key)
            try s.addEpoch()
            s.close()
        }
        let keyring = try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/keyring"))
        let r = try CLI.run(["rotate", "--store", f.storePath, "--key-file", f.keyPath, "--retire"])
        XCTAssertEqual(r.status, 4, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot retire old epochs"), r.stderr)
        XCTAssertTrue(r.stderr.contains("d0/e0/f0: epoch 1"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/keyring")), keyring, "keyring changed by a refused retire")

        let (keys, ids) = try f.capture()
        let rot = try f.rotate()
        XCTAssertEqual(rot.status, 0, rot.stderr)
        XCTAssertEqual(rot.json["epoch"] as? Int, 3)
        let ret = try f.rotate(["--retire"])
        XCTAssertEqual(ret.status, 0, ret.stderr)
        XCTAssertEqual(ret.json["retired"] as? [Int], [1, 2])
        XCTAssertEqual(try f.verify().status, 0)
        try f.assertContentsIntact()
        try assertRetiredKeysOpenNothing(f, retired: keys, formerIDs: ids.mapValues { [$0] }, kept: 3)
    }

    /// A damaged file cannot be moved: rotate finishes the others, names it, exits 1 and leaves the
    /// rotation unfinished (info says so); --retire refuses, naming it. Once repaired, a rerun
    /// resumes the same rotation and moves only that file.
    func testDamagedFileBlocksCompletionUntilRepaired() throws {
        let f = try StoreFixture.make("damaged", files: 60, seed: 5)
        // A file with at least two chunks: flip one ciphertext byte of chunk 1.
        let victim = f.paths.first { (try? FileManager.default.attributesOfItem(atPath: f.sourcePath + "/" + $0)[.size] as? Int) ?? 0 > 10_000 }!
        let path = f.storePath + "/data/" + victim
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let original = bytes
        let layout = ChunkLayout(chunkSize: 4096, suite: FileHeader.parseFields(bytes)!.suite)
        bytes[Int(layout.slotOffset(1)) + layout.nonceLength + 5] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let r = try f.rotate()
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.json["complete"] as? Bool, false)
        let failures = r.json["failures"] as? [[String: Any]] ?? []
        XCTAssertEqual(failures.map { $0["path"] as? String }, [victim])
        XCTAssertTrue(r.stderr.contains("not moved: \(victim)"), r.stderr)
        XCTAssertEqual(try f.info()["rotationInProgress"] as? Int, 2)

        let ret = try CLI.run(["rotate", "--store", f.storePath, "--key-file", f.keyPath, "--retire"])
        XCTAssertEqual(ret.status, 4)
        XCTAssertTrue(ret.stderr.contains(victim), ret.stderr)
        XCTAssertTrue(ret.stderr.contains("rotation to epoch 2 is unfinished"), ret.stderr)

        try Data(original).write(to: URL(fileURLWithPath: path))
        let again = try f.rotate()
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.json["resumed"] as? Bool, true)
        XCTAssertEqual(again.json["epoch"] as? Int, 2)
        XCTAssertEqual(again.json["moved"] as? Int, 1)
        XCTAssertEqual(try f.rotate(["--retire"]).status, 0)
        try f.assertContentsIntact()
        XCTAssertEqual(try f.verify().status, 0)
    }

    /// Both suites, a larger chunk size, and a file bigger than one reseal batch (multi-threaded).
    func testSuitesAndChunkSizes() throws {
        for suite in CipherSuite.allCases where suite.isAvailable {
            let scratch = Scratch("suite")
            let src = scratch.sub("src"), store = scratch.sub("store"), key = scratch.sub("key")
            try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
            let big = TreeMaker.bytes(3 << 20 | 12345, seed: 9), small = TreeMaker.bytes(100, seed: 10)
            try Data(big).write(to: URL(fileURLWithPath: src + "/big"))
            try Data(small).write(to: URL(fileURLWithPath: src + "/small"))
            XCTAssertEqual(try CLI.run(["init", "--store", store, "--key-file", key, "--suite", suite.name, "--chunk-size", "65536"]).status, 0)
            XCTAssertEqual(try CLI.run(["import", "--store", store, "--key-file", key, src]).status, 0)
            for jobs in ["1", "2"] {
                let r = try CLI.run(["rotate", "--store", store, "--key-file", key, "--jobs", jobs, "--json"] + (jobs == "1" ? ["--no-sync"] : []))
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(r.json["moved"] as? Int, 2)
            }
            XCTAssertEqual(try CLI.run(["rotate", "--store", store, "--key-file", key, "--retire"]).status, 0)
            let s = try SealedStore.open(at: store, key: try KeyMaterial.readKeyFile(path: key))
            defer { s.close() }
            XCTAssertEqual(s.keyring.epochs.map(\.id), [3])
            for (name, content) in [("big", big), ("small", small)] {
                let fd = openat(s.dataDirectory, name, O_RDONLY)
                let file = try s.openFile(descriptor: fd); close(fd)
                XCTAssertEqual(file.suite, suite)
                XCTAssertEqual(file.epoch, 3)
                XCTAssertEqual(try file.readAll(), content, "\(suite.name) \(name)")
                file.close()
            }
        }
    }

    /// Wrong or mismatched keys: clear message, exit 2, nothing changed (no epoch, no marker).
    func testWrongKeyMessages() throws {
        let f = try StoreFixture.make("wrongkey", files: 5, seed: 2)
        let wrong = f.scratch.sub("wrong")
        _ = try KeyMaterial.createKeyFile(path: wrong)
        let pass = f.scratch.sub("pass")
        try "secret\n".write(toFile: pass, atomically: true, encoding: .utf8)
        let keyring = try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/keyring"))
        for args in [["rotate", "--key-file", wrong], ["rotate", "--retire", "--key-file", wrong],
                     ["rekey", "--key-file", wrong, "--new-key-file", f.scratch.sub("new1")]] {
            let r = try CLI.run(args + ["--store", f.storePath])
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, "sealgofer: wrong key or passphrase\n", "\(args)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.scratch.sub("new1")), "a wrong current key created the new key file")
        let p = try CLI.run(["rotate", "--store", f.storePath, "--passphrase-file", pass])
        XCTAssertEqual(p.status, 2)
        XCTAssertTrue(p.stderr.contains("unlocked with a key file, not a passphrase"), p.stderr)
        let missing = try CLI.run(["rekey", "--store", f.storePath, "--key-file", f.keyPath])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("--new-key-file or --new-passphrase-file"), missing.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/keyring")), keyring)
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.storePath + "/meta/rotation"))
    }
}

/// Plaintext size of a ciphertext file of `length` bytes (4 KiB chunks, AES-256-GCM: the fixtures').
func layoutPlaintext(_ length: off_t) -> UInt64 {
    let layout = ChunkLayout(chunkSize: 4096, suite: .aes256gcm)
    let body = max(0, Int(length) - FileHeader.length)
    let full = body / layout.slotSize, rest = body % layout.slotSize
    return UInt64(full * 4096 + max(0, rest - layout.overhead))
}
