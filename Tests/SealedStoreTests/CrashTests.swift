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
