import XCTest
@testable import SealedStore

final class KeyringTests: XCTestCase {
    private func makeRing(_ key: KeyMaterial) throws -> [UInt8] {
        try Keyring.create(key: key, storeID: Sodium.randomBytes(16), configDigest: Sodium.hash([1, 2, 3]), cost: .minimal).serialize()
    }

    func testWrapUnwrapKeyFile() throws {
        let bytes = try makeRing(Fixture.key)
        let ring = try Keyring.open(bytes, key: Fixture.key)
        XCTAssertEqual(ring.currentEpoch, 1)
        XCTAssertNotNil(ring.masterKey(epoch: 1))
        XCTAssertNil(ring.masterKey(epoch: 2))
    }

    func testWrongKeyIsReportedAsWrongKey() throws {
        let bytes = try makeRing(Fixture.key)
        let other = KeyMaterial.keyFile(SecretBytes(copying: [UInt8](repeating: 8, count: 32)))
        XCTAssertThrowsError(try Keyring.open(bytes, key: other)) { XCTAssertEqual($0 as? SealedStoreError, .wrongKey) }
    }

    func testWrongPassphraseIsReportedAsWrongKey() throws {
        let good = KeyMaterial.passphrase(SecretBytes(copying: Array("open sesame".utf8)))
        let bad = KeyMaterial.passphrase(SecretBytes(copying: Array("open sesamE".utf8)))
        let bytes = try makeRing(good)
        XCTAssertNoThrow(try Keyring.open(bytes, key: good))
        XCTAssertThrowsError(try Keyring.open(bytes, key: bad)) { XCTAssertEqual($0 as? SealedStoreError, .wrongKey) }
        XCTAssertThrowsError(try Keyring.open(bytes, key: Fixture.key)) {
            guard case .invalidArgument = $0 as? SealedStoreError else { return XCTFail("\($0)") }
        }
    }

    /// Flipping any single byte is reported as damage, never as a wrong key and never accepted.
    func testEveryByteFlipIsDamageNotWrongKey() throws {
        let bytes = try makeRing(Fixture.key)
        for i in 0..<bytes.count {
            var t = bytes; t[i] ^= 0x01
            XCTAssertThrowsError(try Keyring.open(t, key: Fixture.key), "byte \(i)") {
                guard case .keyringDamaged = $0 as? SealedStoreError else { return XCTFail("byte \(i): \($0)") }
            }
        }
        for n in [0, 10, bytes.count - 1] {
            XCTAssertThrowsError(try Keyring.open(Array(bytes[0..<n]), key: Fixture.key)) {
                guard case .keyringDamaged = $0 as? SealedStoreError else { return XCTFail("\($0)") }
            }
        }
    }

    /// A forgery that recomputes the checksum still fails (AEAD over the whole keyring).
    func testForgedChecksumStillFailsAuthentication() throws {
        var bytes = try makeRing(Fixture.key)
        let body = bytes.count - 32
        bytes[body - 5] ^= 0x80   // inside the wrapped keys
        let sum = Sodium.hash(Array(bytes[0..<body]))
        bytes.replaceSubrange(body..<bytes.count, with: sum)
        XCTAssertThrowsError(try Keyring.open(bytes, key: Fixture.key)) {
            guard case .keyringDamaged(let why) = $0 as? SealedStoreError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("authentication"), why)
        }
    }

    func testEpochsRoundTrip() throws {
        let ring = try Keyring.create(key: Fixture.key, storeID: Sodium.randomBytes(16), configDigest: Sodium.hash([]), cost: .minimal)
        XCTAssertEqual(ring.addEpoch(created: 5), 2)
        let reopened = try Keyring.open(ring.serialize(), key: Fixture.key)
        XCTAssertEqual(reopened.epochs.map(\.id), [1, 2])
        XCTAssertEqual(reopened.currentEpoch, 2)
        XCTAssertEqual(reopened.masterKey(epoch: 1)?.exposedCopy(), ring.masterKey(epoch: 1)?.exposedCopy())
        XCTAssertNotEqual(reopened.masterKey(epoch: 1)?.exposedCopy(), reopened.masterKey(epoch: 2)?.exposedCopy())
    }

    func testKeyFileCreationIsPrivateAndExclusive() throws {
        let dir = TempDir()
        let path = dir.sub("k")
        let created = try KeyMaterial.createKeyFile(path: path)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attrs[.posixPermissions] as! NSNumber).intValue, 0o600)
        XCTAssertEqual((attrs[.size] as! NSNumber).intValue, 32)
        XCTAssertThrowsError(try KeyMaterial.createKeyFile(path: path))
        guard case .keyFile(let a) = created, case .keyFile(let b) = try KeyMaterial.readKeyFile(path: path) else { return XCTFail() }
        XCTAssertEqual(a.exposedCopy(), b.exposedCopy())
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir.sub("short")))
        XCTAssertThrowsError(try KeyMaterial.readKeyFile(path: dir.sub("short")))
    }

    func testSecretBytesAreLockedWhenPermitted() {
        let s = SecretBytes.random(count: 32)
        // root on this machine: mlock is permitted; elsewhere it may fail and is tolerated.
        if getuid() == 0 { XCTAssertTrue(s.isLocked) }
        XCTAssertEqual(s.count, 32)
    }
}

import Foundation
