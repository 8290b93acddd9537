import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// Long mode (thousands of files, more kills): SEALGOFER_LONG_TESTS=1.
let longMode = ProcessInfo.processInfo.environment["SEALGOFER_LONG_TESTS"] == "1"

/// A fresh temporary directory, removed at deinit.
final class Scratch {
    let path: String
    init(_ label: String, under directory: String? = nil) {
        let base = directory ?? ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        path = base + "/rot-\(label)-\(getpid())-\(UUID().uuidString.prefix(6))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// The built `sealgofer` executable, run with posix_spawn (stdout/stderr captured in files).
enum CLI {
    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["SEALGOFER_BINARY"], !b.isEmpty { return b }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("sealgofer").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/sealgofer").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]) ?? [:] }
    }

    /// A child with stdout/stderr going to files; only the test that started it signals or reaps it.
    struct Child {
        let pid: pid_t
        let outPath: String
        let errPath: String

        /// Waits; returns the exit status (128 + signal when killed).
        func wait() -> Int32 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }

        func result(status: Int32) -> Result {
            defer { unlink(outPath); unlink(errPath) }
            let o = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
            let e = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
            return Result(status: status, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
        }
    }

    static func spawn(_ args: [String], extraFD: Int32? = nil) throws -> Child {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/rotcli-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let outPath = base + ".out", errPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let extraFD { posix_spawn_file_actions_adddup2(&actions, extraFD, 3) }
        let argv = ([binary] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, binary, &actions, nil, argv, environ)
        guard rc == 0 else { throw NSError(domain: "spawn \(binary)", code: Int(rc)) }
        return Child(pid: pid, outPath: outPath, errPath: errPath)
    }

    @discardableResult
    static func run(_ args: [String]) throws -> Result {
        let child = try spawn(args)
        return child.result(status: child.wait())
    }
}

/// A plaintext tree of mixed-size files (deterministic for a seed): many small ones, some
/// multi-chunk, a few large; empty files, exact chunk multiples, hard links, symlinks, nesting.
enum TreeMaker {
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E3779B97F4A7C15 | 1
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in 0..<words.count { x ^= x << 13; x ^= x >> 7; x ^= x << 17; words[i] = x }
            for i in (words.count * 8)..<n { x ^= x << 13; x ^= x >> 7; x ^= x << 17; raw[i] = UInt8(truncatingIfNeeded: x) }
        }
        return out
    }

    /// Writes `count` files under `root`; returns their relative paths (hard-link names included).
    @discardableResult
    static func make(root: String, count: Int, seed: UInt64, chunkSize: Int, maxLarge: Int = 1 << 20) throws -> [String] {
        var rng = SeededRandom(seed)
        var paths: [String] = []
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for i in 0..<count {
            let dir = "d\(i % 23)/e\(i % 5)"
            try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
            let roll = rng.next() % 1000
            let size: Int
            switch roll {
            case 0..<40: size = 0
            case 40..<80: size = chunkSize * Int(1 + rng.next() % 4)              // exact chunk multiples
            case 80..<700: size = Int(rng.next() % 3000)
            case 700..<950: size = Int(rng.next() % UInt64(chunkSize * 6))
            case 950..<995: size = Int(rng.next() % 200_000)
            default: size = maxLarge / 2 + Int(rng.next() % UInt64(maxLarge / 2))
            }
            let path = "\(dir)/f\(i)"
            try Data(bytes(size, seed: seed &+ UInt64(i))).write(to: URL(fileURLWithPath: root + "/" + path))
            paths.append(path)
            if i % 97 == 5 {   // a hard link in another directory
                let link = "d\((i + 1) % 23)/link\(i)"
                try FileManager.default.createDirectory(atPath: root + "/d\((i + 1) % 23)", withIntermediateDirectories: true)
                guard Glibc.link(root + "/" + path, root + "/" + link) == 0 else { throw NSError(domain: "link", code: Int(errno)) }
                paths.append(link)
            }
            if i % 131 == 7 { _ = Glibc.symlink("f\(i)", root + "/\(dir)/sym\(i)") }
        }
        return paths
    }
}

struct SeededRandom {
    var x: UInt64
    init(_ seed: UInt64) { x = seed &* 0x9E3779B97F4A7C15 | 1 }
    mutating func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
}

/// A store imported from a generated tree, with its key file.
struct StoreFixture {
    let scratch: Scratch
    var storePath: String { scratch.sub("store") }
    var keyPath: String { scratch.sub("key") }
    var sourcePath: String { scratch.sub("src") }
    let paths: [String]

    static func make(_ label: String, files: Int, seed: UInt64 = 1, chunkSize: Int = 4096, maxLarge: Int = 1 << 20) throws -> StoreFixture {
        let scratch = Scratch(label)
        let paths = try TreeMaker.make(root: scratch.sub("src"), count: files, seed: seed, chunkSize: chunkSize, maxLarge: maxLarge)
        let f = StoreFixture(scratch: scratch, paths: paths)
        let r = try CLI.run(["init", "--store", f.storePath, "--key-file", f.keyPath, "--chunk-size", "\(chunkSize)"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let i = try CLI.run(["import", "--store", f.storePath, "--key-file", f.keyPath, f.sourcePath])
        XCTAssertEqual(i.status, 0, i.stderr)
        return f
    }

    var key: KeyMaterial { try! KeyMaterial.readKeyFile(path: keyPath) }

    /// Master keys of every epoch and the file ID of every path, read in-process.
    func capture() throws -> (keys: [UInt32: SecretBytes], ids: [String: FileID]) {
        let store = try SealedStore.open(at: storePath, key: key)
        defer { store.close() }
        var keys: [UInt32: SecretBytes] = [:]
        for e in store.keyring.epochs { keys[e.id] = SecretBytes(copying: store.keyring.masterKey(epoch: e.id)!.exposedCopy()) }
        var ids: [String: FileID] = [:]
        for p in paths {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: storePath + "/data/" + p)).prefix(64)
            ids[p] = FileHeader.parseFields(Array(bytes))!.fileID
        }
        return (keys, ids)
    }

    /// Every file of the source tree exports byte for byte (in-process, through the store's reader).
    func assertContentsIntact(sample: Int? = nil, key other: KeyMaterial? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let store = try SealedStore.open(at: storePath, key: other ?? key)
        defer { store.close() }
        var chosen = paths
        if let sample, sample < paths.count { chosen.shuffle(); chosen = Array(chosen.prefix(sample)) }
        for p in chosen {
            let fd = try openBeneath(store.dataDirectory, try pathComponents(p), flags: O_RDONLY)
            defer { close(fd) }
            let f = try store.openFile(descriptor: fd)
            defer { f.close() }
            let expected = try Data(contentsOf: URL(fileURLWithPath: sourcePath + "/" + p))
            let got = try f.readAll()
            if got != Array(expected) { XCTFail("\(p): content differs (\(got.count) vs \(expected.count) bytes)", file: file, line: line); return }
        }
    }

    /// `export -r` of the whole store compared with the source tree with diff -r.
    func assertExportMatches(file: StaticString = #filePath, line: UInt = #line) throws {
        let out = scratch.sub("export-\(UInt32.random(in: 0...UInt32.max))")
        let r = try CLI.run(["export", "--store", storePath, "--key-file", keyPath, "-r", "-o", out, "/"])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let diff = Process()
        diff.executableURL = URL(fileURLWithPath: "/usr/bin/diff")
        diff.arguments = ["-r", "--no-dereference", sourcePath, out]
        diff.standardOutput = FileHandle.nullDevice
        try diff.run(); diff.waitUntilExit()
        XCTAssertEqual(diff.terminationStatus, 0, "export differs from the source tree", file: file, line: line)
        try? FileManager.default.removeItem(atPath: out)
    }

    func verify() throws -> CLI.Result { try CLI.run(["verify", "--store", storePath, "--key-file", keyPath, "--json"]) }
    func info() throws -> [String: Any] { try CLI.run(["info", "--store", storePath, "--json"]).json }
    func rotate(_ extra: [String] = []) throws -> CLI.Result {
        try CLI.run(["rotate", "--store", storePath, "--key-file", keyPath, "--json"] + extra)
    }
}

/// Proves that retired master keys open nothing left on disk: no data file header, chunk or
/// sidecar authenticates under keys derived from them, for the file's current ID or for any
/// ID it had before rotation; no journal is left; the keyring holds only `kept`.
func assertRetiredKeysOpenNothing(_ f: StoreFixture, retired: [UInt32: SecretBytes], formerIDs: [String: Set<FileID>],
                                  kept: UInt32, file: StaticString = #filePath, line: UInt = #line) throws {
    let store = try SealedStore.open(at: f.storePath, key: f.key)
    defer { store.close() }
    XCTAssertEqual(store.keyring.epochs.map(\.id), [kept], "keyring still holds other epochs", file: file, line: line)
    for e in retired.keys { XCTAssertNil(store.keyring.masterKey(epoch: e), file: file, line: line) }
    var opened = 0, tried = 0
    for p in f.paths {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/data/" + p)))
        guard let header = FileHeader.parseFields(bytes) else { XCTFail("\(p): no header", file: file, line: line); continue }
        XCTAssertEqual(header.epoch, kept, "\(p) is not under the kept epoch", file: file, line: line)
        let layout = ChunkLayout(chunkSize: header.chunkSize, suite: header.suite)
        let ids = (formerIDs[p] ?? []).union([header.fileID])
        for (epoch, master) in retired {
            for id in ids {
                let keys = FileKeys(master: master, epoch: epoch, fileID: id)
                if FileHeader.verifyMAC(bytes, keys: keys) { opened += 1 }
                for fields in [header, FileHeader(suite: header.suite, chunkSize: header.chunkSize, epoch: epoch, fileID: id)] {
                    let codec = ChunkCodec(layout: layout, keys: keys, headerFields: fields.fields)
                    var index: UInt64 = 0
                    var offset = Int(layout.slotOffset(0))
                    while offset + layout.overhead <= bytes.count {
                        let end = min(bytes.count, offset + layout.slotSize)
                        tried += 1
                        if codec.open(index: index, slot: Array(bytes[offset..<end])) != nil { opened += 1 }
                        index += 1; offset += layout.slotSize
                    }
                }
            }
        }
    }
    // Sidecars: all under the kept epoch, none authenticates under a retired key.
    let files = f.storePath + "/meta/files"
    for dir in try FileManager.default.contentsOfDirectory(atPath: files) {
        for name in try FileManager.default.contentsOfDirectory(atPath: files + "/" + dir) {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: files + "/" + dir + "/" + name)))
            guard let sc = Sidecar.parseFields(bytes) else { XCTFail("unparsable sidecar \(name)", file: file, line: line); continue }
            XCTAssertEqual(sc.epoch, kept, "sidecar \(name) of epoch \(sc.epoch) left", file: file, line: line)
            for (epoch, master) in retired where Sidecar.verifyMAC(bytes, keys: FileKeys(master: master, epoch: epoch, fileID: sc.fileID)) {
                opened += 1
            }
        }
    }
    let journals = try FileManager.default.contentsOfDirectory(atPath: f.storePath + "/meta/journal")
    XCTAssertEqual(journals, [], "journals left after retirement", file: file, line: line)
    XCTAssertEqual(opened, 0, "a retired master key still opens \(opened) things on disk", file: file, line: line)
    XCTAssertGreaterThan(tried, 0, file: file, line: line)
}
