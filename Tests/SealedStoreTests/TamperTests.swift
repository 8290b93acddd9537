import XCTest
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// Tamper matrix: every class of modification is detected by verify (exit 1, the right file and
/// chunk named) and by reads (an error, never wrong plaintext) — except the documented whole-file
/// replacement, which reads as the other file and is caught by verify's orphan/duplicate checks.
final class TamperTests: XCTestCase {
    static let c = 4096
    let contents: [String: [UInt8]] = [
        "a": Fixture.bytes(3 * c + 500, seed: 1),   // chunks 0..3, last partial
        "b": Fixture.bytes(3 * c, seed: 2),
        "dir/e": [],
    ]

    /// A pristine store built once per suite; each case works on a copy.
    private func template(_ suite: CipherSuite, _ dir: TempDir) throws -> String {
        let key = dir.sub("key")
        _ = try KeyMaterial.createKeyFile(path: key)
        let store = dir.sub("template")
        try SealedStore.initialize(at: store, key: try KeyMaterial.readKeyFile(path: key), suite: suite, chunkSize: Self.c)
        let s = try SealedStore.open(at: store, key: try KeyMaterial.readKeyFile(path: key))
        mkdirat(s.dataDirectory, "dir", 0o755)
        for (name, bytes) in contents.sorted(by: { $0.key < $1.key }) {
            let parts = name.split(separator: "/").map(String.init)
            let dirFD = try openBeneath(s.dataDirectory, Array(parts.dropLast()), flags: O_RDONLY | O_DIRECTORY)
            let f = try s.createFile(in: dirFD, name: parts.last!)
            try f.commitAll(bytes)
            f.close(); close(dirFD)
        }
        s.close()
        return store
    }

    private func copy(_ template: String, _ dir: TempDir, _ label: String) -> String {
        let dst = dir.sub("case-\(label)")
        try! FileManager.default.copyItem(atPath: template, toPath: dst)
        return dst
    }

    private func key(_ dir: TempDir) throws -> KeyMaterial { try KeyMaterial.readKeyFile(path: dir.sub("key")) }

    private func modify(_ path: String, _ body: (inout [UInt8]) -> Void) throws {
        var b = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        body(&b)
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// Modifies `path`, runs `body`, restores the original bytes (cheaper than a store copy per case).
    private func withModified(_ path: String, _ change: (inout [UInt8]) -> Void, _ body: () throws -> Void) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        try modify(path, change)
        defer { try? original.write(to: URL(fileURLWithPath: path)) }
        try body()
    }

    private func sidecarPath(_ store: String, _ name: String) throws -> String {
        let header = Array(try Data(contentsOf: URL(fileURLWithPath: store + "/data/" + name)).prefix(64))
        let id = encodeHex(Array(header[16..<32]))
        return store + "/meta/files/\(id.prefix(2))/\(id).sc"
    }

    struct Expect { var path: String; var kinds: Set<Damage.Kind>; var chunk: UInt64? = nil }

    /// Runs verify in-process and (when `cli`) through the binary, and reads every file.
    private func check(_ store: String, _ dir: TempDir, _ label: String, expect: [Expect], cli: Bool,
                       readsOK: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try SealedStore.open(at: store, key: try key(dir))
        let report = Verifier.run(store: s)
        XCTAssertFalse(report.isClean, "\(label): verify found nothing", file: file, line: line)
        for e in expect {
            XCTAssertTrue(report.damage.contains { d in d.path == e.path && e.kinds.contains(d.kind) && (e.chunk == nil || d.chunk == e.chunk) },
                          "\(label): expected \(e) in \(report.damage)", file: file, line: line)
        }
        // Reads: an error, never wrong plaintext.
        for (name, bytes) in contents {
            let fd = open(store + "/data/" + name, O_RDONLY | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            do {
                let f = try s.openFile(descriptor: fd)
                defer { f.close() }
                let got = try f.readAll()
                if !readsOK.contains(name) {
                    XCTAssertEqual(got, bytes, "\(label): \(name) read without error must be exact", file: file, line: line)
                }
            } catch SealedStoreError.damaged {
            } catch {
                XCTFail("\(label): \(name): unexpected \(error)", file: file, line: line)
            }
        }
        s.close()
        if cli {
            let v = try CLI.verify(store: store, keyFile: dir.sub("key"))
            XCTAssertEqual(v.status, 1, "\(label): \(v.stderr)", file: file, line: line)
            for e in expect {
                XCTAssertTrue(v.damage.contains { d in
                    d["path"] as? String == e.path && e.kinds.contains(Damage.Kind(rawValue: d["kind"] as! String)!)
                        && (e.chunk == nil || (d["chunk"] as? Int).map(UInt64.init) == e.chunk)
                }, "\(label): CLI: expected \(e) in \(v.damage)", file: file, line: line)
            }
        }
    }

    private func readFails(_ store: String, _ dir: TempDir, _ name: String) throws -> Bool {
        let s = try SealedStore.open(at: store, key: try key(dir))
        defer { s.close() }
        let fd = open(store + "/data/" + name, O_RDONLY)
        defer { close(fd) }
        do { let f = try s.openFile(descriptor: fd); _ = try f.readAll(); f.close(); return false } catch { return true }
    }

    func testTamperMatrix() throws {
        for suite in Fixture.suites {
            let dir = TempDir("tamper")
            let t = try template(suite, dir)
            let layout = ChunkLayout(chunkSize: Self.c, suite: suite)
            let n = suite.nonceLength
            var k = 0
            func next() -> String { k += 1; return "\(suite)-\(k)" }
            let header: Set<Damage.Kind> = [.header, .unknownEpoch]

            // Header: every byte (one working copy, restored after each case).
            let w = copy(t, dir, next())
            for i in 0..<64 {
                try withModified(w + "/data/a", { $0[i] ^= 0x04 }) {
                    try check(w, dir, "header byte \(i)", expect: [Expect(path: "a", kinds: header)], cli: i % 16 == 0)
                }
            }
            // Nonce, ciphertext, tag of each chunk, including the partial last one.
            for chunk: UInt64 in 0..<4 {
                let start = Int(layout.slotOffset(chunk))
                let len = layout.plaintextLength(index: chunk, size: 3 * UInt64(Self.c) + 500) + layout.overhead
                for (what, off) in [("nonce", 0), ("nonce-end", n - 1), ("ciphertext", n + 7), ("tag", len - 1), ("tag-start", len - 16)] {
                    try withModified(w + "/data/a", { $0[start + off] ^= 0x80 }) {
                        try check(w, dir, "\(what) of chunk \(chunk)", expect: [Expect(path: "a", kinds: [.chunk], chunk: chunk)], cli: what == "tag")
                    }
                }
            }
            // Sidecar: every byte.
            let aSidecar = try sidecarPath(w, "a")
            for i in 0..<128 {
                try withModified(aSidecar, { $0[i] ^= 0x01 }) {
                    try check(w, dir, "sidecar byte \(i)", expect: [Expect(path: "a", kinds: [.sidecar])], cli: i % 32 == 0)
                }
            }
            // Empty file's sidecar and header too.
            do {
                let s = copy(t, dir, next())
                try modify(try sidecarPath(s, "dir/e")) { $0[33] ^= 0x01 }   // committed size
                try check(s, dir, "empty file sidecar size", expect: [Expect(path: "dir/e", kinds: [.sidecar])], cli: true)
            }
            // Swap two chunks within a file.
            do {
                let s = copy(t, dir, next())
                try modify(s + "/data/b") { b in
                    let o0 = Int(layout.slotOffset(0)), o1 = Int(layout.slotOffset(1)), l = layout.slotSize
                    let c0 = Array(b[o0..<(o0 + l)]); b.replaceSubrange(o0..<(o0 + l), with: b[o1..<(o1 + l)]); b.replaceSubrange(o1..<(o1 + l), with: c0)
                }
                try check(s, dir, "swap chunks", expect: [Expect(path: "b", kinds: [.chunk], chunk: 0), Expect(path: "b", kinds: [.chunk], chunk: 1)], cli: true)
            }
            // Swap chunk 1 between files a and b (same index, same length).
            do {
                let s = copy(t, dir, next())
                let o = Int(layout.slotOffset(1)), l = layout.slotSize
                let a = Array(try Data(contentsOf: URL(fileURLWithPath: s + "/data/a"))), b = Array(try Data(contentsOf: URL(fileURLWithPath: s + "/data/b")))
                try modify(s + "/data/a") { $0.replaceSubrange(o..<(o + l), with: b[o..<(o + l)]) }
                try modify(s + "/data/b") { $0.replaceSubrange(o..<(o + l), with: a[o..<(o + l)]) }
                try check(s, dir, "swap between files", expect: [Expect(path: "a", kinds: [.chunk], chunk: 1), Expect(path: "b", kinds: [.chunk], chunk: 1)], cli: true)
            }
            // Truncate at a chunk boundary (and to the bare header).
            for (cut, chunk) in [(Int(layout.slotOffset(2)), UInt64(2)), (Int(layout.slotOffset(3)), UInt64(3)), (64, UInt64(0))] {
                let s = copy(t, dir, next())
                XCTAssertEqual(truncate(s + "/data/b", off_t(min(cut, Int(layout.fileLength(size: UInt64(3 * Self.c))) - 1))), 0)
                try check(s, dir, "truncate at \(cut)", expect: [Expect(path: "b", kinds: [.truncated], chunk: min(chunk, 2))], cli: true)
            }
            do {   // exactly at the boundary after chunk 1 of b: the sidecar's size exposes it
                let s = copy(t, dir, next())
                XCTAssertEqual(truncate(s + "/data/b", off_t(layout.slotOffset(2))), 0)
                try check(s, dir, "truncate at boundary 2", expect: [Expect(path: "b", kinds: [.truncated], chunk: 2)], cli: true)
                XCTAssertTrue(try readFails(s, dir, "b"))
            }
            // Keyring: every byte → open fails as damaged; CLI verify exit 1 naming the keyring.
            let ringLength = (try Data(contentsOf: URL(fileURLWithPath: t + "/keyring"))).count
            for i in 0..<ringLength {
                try withModified(w + "/keyring", { $0[i] ^= 0x10 }) {
                    XCTAssertThrowsError(try SealedStore.open(at: w, key: try key(dir)), "keyring byte \(i)") {
                        guard case .keyringDamaged = $0 as? SealedStoreError else { return XCTFail("keyring byte \(i): \($0)") }
                    }
                    if i % 40 == 0 {
                        let v = try CLI.verify(store: w, keyFile: dir.sub("key"))
                        XCTAssertEqual(v.status, 1, "keyring byte \(i)")
                        XCTAssertEqual(v.damage.first?["kind"] as? String, "keyring")
                    }
                }
            }
            // Config: a changed chunk size is caught through the keyring's config digest.
            do {
                let s = copy(t, dir, next())
                try modify(s + "/config") { b in b = Array(String(decoding: b, as: UTF8.self).replacingOccurrences(of: "chunk-size=4096", with: "chunk-size=8192").utf8) }
                XCTAssertThrowsError(try SealedStore.open(at: s, key: try key(dir))) {
                    guard case .configDamaged = $0 as? SealedStoreError else { return XCTFail("\($0)") }
                }
                XCTAssertEqual(try CLI.verify(store: s, keyFile: dir.sub("key")).status, 1)
            }
            // Journal: a pending commit whose journal is modified (every 97th byte).
            let journalStore = copy(t, dir, next())
            do {
                let s = try SealedStore.open(at: journalStore, key: try key(dir))
                let fd = open(journalStore + "/data/a", O_RDONLY)
                let f = try s.openFile(descriptor: fd); close(fd)
                TestHooks.crashAt = .journalWritten
                _ = try? f.commit([ChunkChange(index: 1, plaintext: Fixture.bytes(Self.c, seed: 77))], newSize: f.committedSize, durable: false)
                TestHooks.crashAt = nil
                s.close()
            }
            let journals = try FileManager.default.contentsOfDirectory(atPath: journalStore + "/meta/journal").filter { $0.hasSuffix(".j") }
            XCTAssertEqual(journals.count, 1)
            let jlen = (try Data(contentsOf: URL(fileURLWithPath: journalStore + "/meta/journal/" + journals[0]))).count
            for i in stride(from: 0, to: jlen, by: 97) {
                // A damaged journal is never replayed, so the working copy is not changed by the check.
                try withModified(journalStore + "/meta/journal/" + journals[0], { $0[i] ^= 0x02 }) {
                    try check(journalStore, dir, "journal byte \(i)", expect: [Expect(path: "a", kinds: [.journal])], cli: i == 0)
                }
            }
            do {   // the untouched pending journal is replayed: clean
                let v = try CLI.verify(store: journalStore, keyFile: dir.sub("key"))
                XCTAssertEqual(v.status, 0, "\(v.damage)")
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: journalStore + "/meta/journal").count, 0)
            }
            // Missing sidecar; stray journal; deleted data file (orphan sidecar).
            do {
                let s = copy(t, dir, next())
                try FileManager.default.removeItem(atPath: try sidecarPath(s, "a"))
                try check(s, dir, "missing sidecar", expect: [Expect(path: "a", kinds: [.missingSidecar])], cli: true)
            }
            do {
                let s = copy(t, dir, next())
                let bSidecar = try sidecarPath(s, "b")
                try FileManager.default.removeItem(atPath: s + "/data/b")
                try Data([1, 2, 3]).write(to: URL(fileURLWithPath: s + "/meta/journal/" + String(repeating: "ab", count: 16) + ".j"))
                try check(s, dir, "orphans", expect: [
                    Expect(path: String(bSidecar.dropFirst(s.count + 1)), kinds: [.orphanSidecar]),
                    Expect(path: "meta/journal/" + String(repeating: "ab", count: 16) + ".j", kinds: [.orphanJournal]),
                ], cli: true)
            }
            // Whole-file replacement (header included): documented as caught by verify only. The read
            // of "a" returns b's content (never a mix); verify names both files and a's orphaned sidecar.
            do {
                let s = copy(t, dir, next())
                let aSidecar = try sidecarPath(s, "a")
                try FileManager.default.removeItem(atPath: s + "/data/a")
                try FileManager.default.copyItem(atPath: s + "/data/b", toPath: s + "/data/a")
                try check(s, dir, "replace a by a copy of b", expect: [
                    Expect(path: "a", kinds: [.duplicateFileID]), Expect(path: "b", kinds: [.duplicateFileID]),
                    Expect(path: String(aSidecar.dropFirst(s.count + 1)), kinds: [.orphanSidecar]),
                ], cli: true, readsOK: ["a"])
                let st = try SealedStore.open(at: s, key: try key(dir))
                let fd = open(s + "/data/a", O_RDONLY)
                let f = try st.openFile(descriptor: fd); close(fd)
                XCTAssertEqual(try f.readAll(), contents["b"], "reads as the other whole file")
                f.close(); st.close()
            }
            // The pristine template is clean.
            XCTAssertEqual(try CLI.verify(store: t, keyFile: dir.sub("key")).status, 0)
        }
    }
}
