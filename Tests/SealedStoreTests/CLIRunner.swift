import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `sealgofer` executable.
enum CLI {
    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("sealgofer").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let fallback = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/sealgofer").path
        return fallback
    }()

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// posix_spawn with stdout/stderr captured in temporary files (Foundation's Process polls and
    /// costs ~200 ms a run, which adds up over the tamper matrix).
    @discardableResult
    static func run(_ args: [String]) throws -> Result {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/sgcli-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let outPath = base + ".out", errPath = base + ".err"
        defer { unlink(outPath); unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([binary] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, binary, &actions, nil, argv, environ)
        guard rc == 0 else { throw NSError(domain: "spawn", code: Int(rc)) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let o = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let e = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
        return Result(status: exit, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// `verify --json`, parsed.
    static func verify(store: String, keyFile: String) throws -> (status: Int32, damage: [[String: Any]], stderr: String) {
        let r = try run(["verify", "--store", store, "--key-file", keyFile, "--json"])
        let obj = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        return (r.status, (obj?["damage"] as? [[String: Any]]) ?? [], r.stderr)
    }
}
