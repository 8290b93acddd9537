import Foundation
import XCTest
@testable import SealedStore

/// A fresh temporary directory, removed at deinit.
final class TempDir {
    let path: String
    init(_ label: String = "sealstore") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        path = base + "/\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

enum Fixture {
    static let vectorsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Keys/vectors")

    static func vector(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: vectorsDirectory.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static let key = KeyMaterial.keyFile(SecretBytes(copying: [UInt8](repeating: 7, count: 32)))

    /// A new store with a fixed key file (fast: no Argon2id).
    static func store(_ dir: TempDir, suite: CipherSuite = .xchacha20poly1305, chunkSize: Int = 4096,
                      options: SealedStore.Options = SealedStore.Options()) throws -> SealedStore {
        let path = dir.sub("store")
        try SealedStore.initialize(at: path, key: key, suite: suite, chunkSize: chunkSize)
        return try SealedStore.open(at: path, key: key, options: options)
    }

    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E3779B97F4A7C15 | 1
        return (0..<n).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
    }

    static var suites: [CipherSuite] { CipherSuite.allCases.filter(\.isAvailable) }
}

func hex(_ s: Any?) -> [UInt8] { decodeHex(s as! String)! }

extension SealedFile {
    /// Commits `content` as the whole new content, passing every chunk.
    func commitAll(_ content: [UInt8], durable: Bool = false) throws {
        let c = chunkSize
        let changes = stride(from: 0, to: content.count, by: c).map {
            ChunkChange(index: UInt64($0 / c), plaintext: Array(content[$0..<min($0 + c, content.count)]))
        }
        try commit(changes, newSize: UInt64(content.count), durable: durable)
    }
}

func assertDamage(_ kind: Damage.Kind? = nil, chunk: UInt64? = nil, file: StaticString = #filePath, line: UInt = #line,
                  _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected damage \(kind?.rawValue ?? "")", file: file, line: line)
    } catch SealedStoreError.damaged(let d) {
        if let kind { XCTAssertEqual(d.kind, kind, "\(d)", file: file, line: line) }
        if let chunk { XCTAssertEqual(d.chunk, chunk, "\(d)", file: file, line: line) }
    } catch {
        XCTFail("expected damage, got \(error)", file: file, line: line)
    }
}

/// The entries of a store's meta/pending, sorted (intent records, pooled creates).
func pendingEntries(_ store: SealedStore) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: store.path + "/meta/pending")) ?? []).sorted()
}

/// The sidecars under a store's meta/files (its two-level fan-out).
func sidecarCount(_ store: SealedStore) -> Int {
    let files = store.path + "/meta/files"
    return ((try? FileManager.default.contentsOfDirectory(atPath: files)) ?? []).reduce(0) {
        $0 + ((try? FileManager.default.contentsOfDirectory(atPath: files + "/" + $1)) ?? []).filter { $0.hasSuffix(".sc") }.count
    }
}

/// Closes `store` and opens it again (recovery runs), with `options`.
func reopen(_ store: SealedStore, options: SealedStore.Options = SealedStore.Options()) throws -> SealedStore {
    let path = store.path
    store.close()
    return try SealedStore.open(at: path, key: Fixture.key, options: options)
}

/// The store file `name` directly in data/, opened through a descriptor.
func openPath(_ store: SealedStore, _ name: String) throws -> SealedFile {
    let fd = openat(store.dataDirectory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    XCTAssertGreaterThanOrEqual(fd, 0)
    defer { close(fd) }
    return try store.openFile(descriptor: fd)
}
