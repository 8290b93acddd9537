import XCTest
@testable import SealedStore

/// The Argon2id cost fields of a passphrase keyring come from the disk, and
/// the keyring's checksum is an unkeyed hash anyone can recompute: a forged
/// cost must be refused as damage, never trap. (Regression: a memLimit of
/// 2^63 or more trapped in `Int(memLimit)` when the store was opened.)
final class KeyringCostTests: XCTestCase {
    static let passphrase = KeyMaterial.passphrase(SecretBytes(copying: Array("open sesame".utf8)))

    /// A passphrase keyring with its ops/mem fields replaced and the checksum redone.
    static func forged(ops: UInt64? = nil, mem: UInt64? = nil) throws -> [UInt8] {
        var bytes = try Keyring.create(key: passphrase, storeID: Sodium.randomBytes(16),
                                       configDigest: Sodium.hash([1]), cost: .minimal).serialize()
        // magic 4, version 2, kdf 1, reserved 1, store ID 16, salt 16 → ops at 40, mem at 48.
        func put(_ value: UInt64, at offset: Int) {
            for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        if let ops { put(ops, at: 40) }
        if let mem { put(mem, at: 48) }
        let body = Array(bytes[0..<(bytes.count - 32)])
        bytes.replaceSubrange((bytes.count - 32)..., with: Sodium.hash(body))
        // The forgery must pass the checksum (a cost beyond the caps may then
        // still be refused by the range check).
        do {
            _ = try KeyringHeader.parse(bytes)
        } catch SealedStoreError.keyringDamaged(let why) {
            XCTAssertNotEqual(why, "checksum mismatch")
        }
        return bytes
    }

    func testHugeMemoryCostIsDamageNotATrap() throws {
        for mem: UInt64 in [1 << 63, .max, (1 << 63) + 1] {
            XCTAssertThrowsError(try Keyring.open(try Self.forged(mem: mem), key: Self.passphrase)) { error in
                guard case .keyringDamaged = error as? SealedStoreError else { return XCTFail("mem \(mem): \(error)") }
            }
        }
    }

    func testOutOfRangeOpsCostIsDamage() throws {
        for ops: UInt64 in [0, 1 << 32, .max] {
            XCTAssertThrowsError(try Keyring.open(try Self.forged(ops: ops), key: Self.passphrase)) { error in
                guard case .keyringDamaged = error as? SealedStoreError else { return XCTFail("ops \(ops): \(error)") }
            }
        }
    }

    /// Costs beyond the caps (Keys/README.md §3) are damage, found before
    /// Argon2id runs: a forged cost cannot make opening slow. Without the cap,
    /// 2^24 passes take minutes and 2 GiB + 1 allocates that much.
    func testForgedExpensiveCostIsDamageAndRefusedAtOnce() throws {
        let forgeries: [(ops: UInt64, mem: UInt64)] = [(9, 8192), (1 << 24, 8192), (1, (2 << 30) + 1), (4, 1 << 40)]
        for forgery in forgeries {
            let bytes = try Self.forged(ops: forgery.ops, mem: forgery.mem)
            let started = Date()
            XCTAssertThrowsError(try Keyring.open(bytes, key: Self.passphrase)) { error in
                guard case .keyringDamaged(let why) = error as? SealedStoreError else { return XCTFail("\(forgery): \(error)") }
                XCTAssertTrue(why.contains("beyond the accepted range"), why)
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 2, "\(forgery) must be refused before Argon2id runs")
            XCTAssertThrowsError(try KeyringHeader.parse(bytes), "the header alone is already damaged")
        }
    }

    /// The caps' edges still reach Argon2id: a changed cost is then simply the
    /// wrong key (the KEK differs), not damage.
    func testCostsWithinTheCapsAreAccepted() throws {
        for (ops, mem): (UInt64, UInt64) in [(8, 8192), (2, 16384), (1, 65536)] {
            XCTAssertThrowsError(try Keyring.open(try Self.forged(ops: ops, mem: mem), key: Self.passphrase)) { error in
                XCTAssertEqual(error as? SealedStoreError, .wrongKey, "ops \(ops) mem \(mem)")
            }
        }
    }
}
