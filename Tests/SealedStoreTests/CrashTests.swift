import XCTest
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// Real crash test: a child process (`sealgofer debug-commit-loop`) commits random changes in a loop
/// and is SIGKILLed at random instants. After each kill the file must read as exactly the state
/// before or after the commit in flight, and verify must be clean.
/// SEALGOFER_CRASH_KILLS sets the number of kills (default 100 for CI).
final class CrashTests: XCTestCase {
    func testSIGKILLDuringCommitLoop() throws {
        let kills = Int(ProcessInfo.processInfo.environment["SEALGOFER_CRASH_KILLS"] ?? "") ?? 100
        let dir = TempDir("crash")
        let keyPath = dir.sub("key"), store = dir.sub("store")
        let key = try KeyMaterial.createKeyFile(path: keyPath)
        let aes = CipherSuite.aes256gcm.isAvailable
        try SealedStore.initialize(at: store, key: key, suite: aes ? .aes256gcm : .xchacha20poly1305, chunkSize: 4096)
        var known = contentFingerprint([])
        var midCommit = 0, landedNew = 0, landedOld = 0, commitsSeen = 0, idChanges = 0
        var lastID: FileID? = nil
        var rng = SystemRandomNumberGenerator()
        for iteration in 0..<kills {
            var args = ["debug-commit-loop", "--store", store, "--key-file", keyPath, "--seed", "\(iteration + 1)", "--max-chunks", "6"]
            if aes { args += ["--rekey-threshold", "40"] }        // moves to fresh IDs happen under fire too
            if iteration % 2 == 1 { args += ["--no-ordering-syncs"] }
            let (pid, outPath) = try spawn(args, dir: dir)
            // Every fourth kill is timed from the spawn, so that some land in start-up and recovery.
            if iteration % 4 != 3 { waitForStartLine(outPath) }
            usleep(UInt32.random(in: 15_000...120_000, using: &rng))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let lines = (try? String(contentsOfFile: outPath, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
            unlink(outPath)
            // Replay the child's announcements: `known` is the last committed state.
            var pending: String? = nil
            for line in lines {
                let f = line.split(separator: " ").map(String.init)
                switch f.first {
                case "start": XCTAssertEqual(f[1], known, "iteration \(iteration): child started from another state")
                case "begin": pending = f[2]
                case "end": if let p = pending { known = p; pending = nil; commitsSeen += 1 }
                default: XCTFail("iteration \(iteration): unexpected line \(line)")
                }
            }
            let s = try SealedStore.open(at: store, key: key)
            let fd = openat(s.dataDirectory, "crash.bin", O_RDONLY | O_NOFOLLOW)
            if fd >= 0 {
                let f = try s.openFile(descriptor: fd); close(fd)
                let got = contentFingerprint(try f.readAll())
                if let p = pending {
                    midCommit += 1
                    XCTAssertTrue(got == known || got == p, "iteration \(iteration): file is neither the old nor the new state")
                    if got == p { landedNew += 1; known = p } else { landedOld += 1 }
                } else {
                    XCTAssertEqual(got, known, "iteration \(iteration): file is not the last committed state")
                }
                if lastID != nil && lastID != f.id { idChanges += 1 }
                lastID = f.id
                f.close()
            }
            let report = Verifier.run(store: s)
            XCTAssertTrue(report.isClean, "iteration \(iteration): \(report.damage)")
            s.close()
            if iteration % 25 == 24 {
                let v = try CLI.verify(store: store, keyFile: keyPath)
                XCTAssertEqual(v.status, 0, "iteration \(iteration): CLI verify: \(v.damage)")
            }
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        print("crash test: \(kills) kills, \(commitsSeen) completed commits, \(midCommit) kills inside a commit "
              + "(\(landedOld) rolled back, \(landedNew) rolled forward), \(idChanges) moves to a fresh file ID observed")
        XCTAssertGreaterThan(commitsSeen, kills, "the child made progress")
        XCTAssertGreaterThan(midCommit, kills / 5, "a good share of kills hit a commit in flight")
    }

    /// The namespace variant: a child (`sealgofer debug-namespace-loop`) creates, commits, hard-links,
    /// renames (over existing files too) and unlinks files, some while open (committing to them after
    /// their last name is gone, moving them to fresh IDs), and is SIGKILLed at random instants. After
    /// each kill and reopen (which runs recovery): the whole namespace — every name and its content —
    /// is exactly the state before or after the operation in flight, meta/pending is empty, verify
    /// (in-process, and the CLI's exit status every 25 kills) is clean.
    func testSIGKILLDuringNamespaceLoop() throws {
        let kills = Int(ProcessInfo.processInfo.environment["SEALGOFER_CRASH_KILLS"] ?? "") ?? 100
        let dir = TempDir("nscrash")
        let keyPath = dir.sub("key"), store = dir.sub("store")
        let key = try KeyMaterial.createKeyFile(path: keyPath)
        let aes = CipherSuite.aes256gcm.isAvailable
        try SealedStore.initialize(at: store, key: key, suite: aes ? .aes256gcm : .xchacha20poly1305, chunkSize: 4096)
        let empty = contentFingerprint([])
        var known = NamespaceModel()
        var opsSeen = 0, insideOp = 0, landedNew = 0, recovered = 0
        var kinds: [String: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        for iteration in 0..<kills {
            var args = ["debug-namespace-loop", "--store", store, "--key-file", keyPath, "--seed", "\(iteration + 1)"]
            if aes { args += ["--rekey-threshold", "12"] }
            if iteration % 2 == 1 { args += ["--no-ordering-syncs"] }
            // Every third run creates from a creation pool: its background thread is killed
            // mid-refill too, and its entries must go with the rest of meta/pending.
            if iteration % 3 == 2 { args += ["--creation-pool", "8"] }
            let (pid, outPath) = try spawn(args, dir: dir)
            // Every fourth kill is timed from the spawn, so that some land in start-up and recovery.
            if iteration % 4 != 3 { waitForStartLine(outPath) }
            usleep(UInt32.random(in: 20_000...150_000, using: &rng))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let lines = (try? String(contentsOfFile: outPath, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
            unlink(outPath)
            var state = known
            var pending: NamespaceModel? = nil
            var pendingKind = ""
            for line in lines {
                let f = line.split(separator: " ").map(String.init)
                switch f.first {
                case "start":
                    let seen = Dictionary(uniqueKeysWithValues: f.dropFirst().map { p -> (String, String) in
                        let kv = p.split(separator: "=", maxSplits: 1).map(String.init); return (kv[0], kv[1])
                    })
                    XCTAssertEqual(seen, known.contents, "iteration \(iteration): child started from another state")
                case "begin":
                    var next = state
                    pendingKind = f[1]
                    switch f[1] {
                    case "create": next.create(f[2], empty)
                    case "commit": next.commit(f[2], f[3])
                    case "link": next.link(f[2], f[3])
                    case "rename": next.rename(f[2], f[3])
                    case "unlink": next.unlink(f[2])
                    default: XCTFail("iteration \(iteration): unexpected line \(line)")
                    }
                    pending = next
                case "end":
                    if let p = pending { state = p; pending = nil; opsSeen += 1 }
                case "note": break
                default: XCTFail("iteration \(iteration): unexpected line \(line)")
                }
            }
            let s = try SealedStore.open(at: store, key: key)
            recovered += s.recoveredOperations
            let observed = try NamespaceModel.read(s)
            if let p = pending {
                insideOp += 1
                kinds[pendingKind, default: 0] += 1
                XCTAssertTrue(observed.contents == state.contents || observed.contents == p.contents,
                              "iteration \(iteration): namespace is neither the state before nor after \(pendingKind): "
                              + "\(observed.contents) vs \(state.contents) / \(p.contents)")
                if observed.contents == p.contents && p.contents != state.contents { landedNew += 1 }
            } else {
                XCTAssertEqual(observed.contents, state.contents, "iteration \(iteration): namespace is not the last state")
            }
            known = observed
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: store + "/meta/pending")) ?? ["?"], [],
                           "iteration \(iteration): recovery left intents")
            let report = Verifier.run(store: s)
            XCTAssertTrue(report.isClean, "iteration \(iteration): \(report.damage)")
            s.close()
            if iteration % 25 == 24 {
                let v = try CLI.verify(store: store, keyFile: keyPath)
                XCTAssertEqual(v.status, 0, "iteration \(iteration): CLI verify: \(v.damage)")
            }
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        print("namespace crash test: \(kills) kills, \(opsSeen) completed operations, \(insideOp) kills inside an operation "
              + "(\(kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \(landedNew) rolled forward), "
              + "\(recovered) interrupted creates/removals finished by recovery")
        XCTAssertGreaterThan(opsSeen, kills, "the child made progress")
        XCTAssertGreaterThan(insideOp, kills / 5, "a good share of kills hit an operation in flight")
        XCTAssertGreaterThan(recovered, 0, "recovery had work to do")
    }

    /// `sealgofer import` SIGKILLed at random instants, each run into its own destination: every
    /// file that appears is complete (content and mode), verify is clean, meta/pending is empty.
    func testSIGKILLDuringImport() throws {
        let kills = max(5, (Int(ProcessInfo.processInfo.environment["SEALGOFER_CRASH_KILLS"] ?? "") ?? 100) / 5)
        let dir = TempDir("impcrash")
        let keyPath = dir.sub("key"), store = dir.sub("store"), source = dir.sub("src")
        let key = try KeyMaterial.createKeyFile(path: keyPath)
        try SealedStore.initialize(at: store, key: key, suite: .xchacha20poly1305, chunkSize: 4096)
        var files: [String: [UInt8]] = [:]
        for d in 0..<6 {
            try FileManager.default.createDirectory(atPath: source + "/d\(d)", withIntermediateDirectories: true)
            for f in 0..<40 {
                let name = "d\(d)/f\(f)"
                files[name] = Fixture.bytes((d * 40 + f) * 397 % 30_000, seed: UInt64(d * 100 + f))
                FileManager.default.createFile(atPath: source + "/" + name, contents: Data(files[name]!))
                chmod(source + "/" + name, 0o640)
            }
        }
        var rng = SystemRandomNumberGenerator()
        var partial = 0, seen = 0
        for iteration in 0..<kills {
            let (pid, outPath) = try spawn(["import", "--store", store, "--key-file", keyPath, source, "/run\(iteration)"], dir: dir)
            usleep(UInt32.random(in: 10_000...250_000, using: &rng))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            unlink(outPath)
            let s = try SealedStore.open(at: store, key: key)
            var present = 0
            for (name, bytes) in files {
                let fd = openat(s.dataDirectory, "run\(iteration)/\(name)", O_RDONLY | O_NOFOLLOW)
                guard fd >= 0 else { continue }
                present += 1
                var st = stat()
                fstat(fd, &st)
                XCTAssertEqual(st.st_mode & 0o777, 0o640, "iteration \(iteration): \(name)")
                let f = try s.openFile(descriptor: fd)
                close(fd)
                XCTAssertEqual(try f.readAll(), bytes, "iteration \(iteration): \(name) is incomplete")
                f.close()
            }
            seen += present
            if present < files.count { partial += 1 }
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: store + "/meta/pending")) ?? ["?"], [], "iteration \(iteration)")
            let report = Verifier.run(store: s)
            XCTAssertTrue(report.isClean, "iteration \(iteration): \(report.damage)")
            s.close()
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        print("import crash test: \(kills) kills, \(partial) imports cut short, \(seen) complete files found")
        XCTAssertGreaterThan(partial, 0, "some kills landed inside an import")
    }

    /// Waits (up to 10 s) until a loop child has announced its starting state, so that the random
    /// delay before the kill is spent inside the loop and not on process start-up, which under load
    /// can take longer than the whole delay (kills before the first commit prove nothing).
    private func waitForStartLine(_ outPath: String) {
        for _ in 0..<2000 {
            if let text = try? String(contentsOfFile: outPath, encoding: .utf8), text.contains("\n") { return }
            usleep(5_000)
        }
    }

    private func spawn(_ args: [String], dir: TempDir) throws -> (pid_t, String) {
        let outPath = dir.sub("child-\(UInt32.random(in: 0...UInt32.max)).out")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([CLI.binary] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, CLI.binary, &actions, nil, argv, environ)
        guard rc == 0 else { throw NSError(domain: "spawn", code: Int(rc)) }
        return (pid, outPath)
    }
}

/// The namespace the namespace-loop child works on: names (in data/ and data/d/) → file, file → content.
struct NamespaceModel {
    /// name → file (an inode number once read from disk, a fresh negative tag for files created since).
    var files: [String: Int] = [:]
    /// file → content fingerprint.
    var content: [Int: String] = [:]
    private var nextTag = -1

    var contents: [String: String] { files.mapValues { content[$0]! } }

    mutating func create(_ name: String, _ fingerprint: String) {
        files[name] = nextTag; content[nextTag] = fingerprint; nextTag -= 1
    }
    mutating func commit(_ name: String, _ fingerprint: String) { if let t = files[name] { content[t] = fingerprint } }
    mutating func link(_ from: String, _ to: String) { files[to] = files[from] }
    mutating func rename(_ from: String, _ to: String) {
        // rename(2) between two names of one file does nothing.
        guard let t = files[from], files[to] != t else { return }
        files[to] = t; files[from] = nil
    }
    mutating func unlink(_ name: String) { files[name] = nil }

    static func read(_ s: SealedStore) throws -> NamespaceModel {
        var m = NamespaceModel()
        let sub = openat(s.dataDirectory, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        defer { if sub >= 0 { close(sub) } }
        for name in ["a0", "a1", "a2", "a3", "d/b0", "d/b1", "d/b2"] {
            let (dir, leaf) = name.hasPrefix("d/") ? (sub, String(name.dropFirst(2))) : (s.dataDirectory, name)
            guard dir >= 0 else { continue }
            let fd = openat(dir, leaf, O_RDONLY | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var st = stat()
            fstat(fd, &st)
            let f = try s.openFile(descriptor: fd)
            defer { f.close() }
            let tag = Int(st.st_ino)
            m.files[name] = tag
            m.content[tag] = contentFingerprint(try f.readAll())
        }
        return m
    }
}
