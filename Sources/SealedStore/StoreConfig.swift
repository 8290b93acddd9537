/// `config` (Keys/README.md §2): store parameters, readable without a key.
public struct StoreConfig: Equatable, Sendable {
    public var formatVersion: Int = 1
    public var storeID: [UInt8]
    public var suite: CipherSuite
    public var chunkSize: Int
    public var names: String = "plaintext"

    public static let minChunkSize = 4096
    public static let maxChunkSize = 1 << 20
    public static let defaultChunkSize = 65536

    public init(storeID: [UInt8], suite: CipherSuite, chunkSize: Int) {
        self.storeID = storeID; self.suite = suite; self.chunkSize = chunkSize
    }

    public static func isValidChunkSize(_ c: Int) -> Bool {
        c >= minChunkSize && c <= maxChunkSize && c & (c - 1) == 0
    }

    public func serialize() -> [UInt8] {
        let text = "format-version=\(formatVersion)\nstore-id=\(encodeHex(storeID))\nsuite=\(suite.name)\n"
            + "chunk-size=\(chunkSize)\nnames=\(names)\n"
        return Array(text.utf8)
    }

    public static func parse(_ bytes: [UInt8]) throws -> StoreConfig {
        func bad(_ why: String) -> SealedStoreError { .configDamaged(why) }
        guard bytes.count < 4096, let text = String(bytes: bytes, encoding: .utf8), text.hasSuffix("\n") else {
            throw bad("not a config file")
        }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let keys = ["format-version", "store-id", "suite", "chunk-size", "names"]
        guard lines.count == keys.count else { throw bad("expected \(keys.count) lines") }
        var values: [String] = []
        for (line, key) in zip(lines, keys) {
            guard line.hasPrefix(key + "=") else { throw bad("expected \(key)= in line \"\(line)\"") }
            values.append(String(line.dropFirst(key.count + 1)))
        }
        guard values[0] == "1" else { throw bad("unsupported format version \(values[0])") }
        guard let id = decodeHex(values[1]), id.count == 16 else { throw bad("bad store-id") }
        guard let suite = CipherSuite(name: values[2]) else { throw bad("unknown suite \(values[2])") }
        guard let chunk = Int(values[3]), isValidChunkSize(chunk) else { throw bad("bad chunk-size \(values[3])") }
        guard values[4] == "plaintext" else { throw bad("unsupported names=\(values[4])") }
        return StoreConfig(storeID: id, suite: suite, chunkSize: chunk)
    }
}

import Foundation
