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
        XCTAssertNoThrow(try KeyringHeader.parse(bytes), "the forged keyring must pass the checksum")
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
}
