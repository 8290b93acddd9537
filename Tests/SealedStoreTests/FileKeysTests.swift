import Foundation
import XCTest
@testable import SealedStore

/// Per-file keys are derived on first use (a stat needs two of five), come out
/// equal to an eager derivation, and are zeroed when the handle goes.
final class FileKeysTests: XCTestCase {
    private let master = SecretBytes(copying: (0..<32).map { UInt8($0 &* 7 &+ 1) })
    private let id = FileID(bytes: [UInt8](repeating: 0x42, count: 16))!

    func testSubkeysAreDerivedOnFirstUseAndEqualAnEagerDerivation() {
        let keys = FileKeys(master: master, epoch: 1, fileID: id)
        XCTAssertEqual(keys.derivedCount, 0, "nothing but the file key is derived up front")
        let header = keys.header
        XCTAssertEqual(keys.derivedCount, 1)
        XCTAssertTrue(keys.header === header, "a subkey is derived once and kept")
        XCTAssertEqual(keys.derivedCount, 1)

        let fileKey = Sodium.deriveKey(key: master, message: Array("sealgofer-v1 file key".utf8) + id.bytes)
        let expected = (1...5).map { Sodium.kdf(key: fileKey, id: UInt64($0)).exposedCopy() }
        XCTAssertEqual([keys.data, keys.header, keys.sidecar, keys.journal, keys.digest].map { $0.exposedCopy() }, expected)
        XCTAssertEqual(keys.derivedCount, 5)
    }

    func testConcurrentFirstUseYieldsOneKey() {
        let keys = FileKeys(master: master, epoch: 1, fileID: id)
        var seen = [ObjectIdentifier?](repeating: nil, count: 8)
        seen.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: 8) { i in base[i] = ObjectIdentifier(keys.journal) }
        }
        XCTAssertEqual(Set(seen.compactMap { $0 }).count, 1)
        XCTAssertEqual(keys.derivedCount, 1)
    }

    func testReleasedFileKeysAreZeroed() throws {
        var addresses: [UnsafeRawPointer] = []
        do {
            let keys = FileKeys(master: master, epoch: 1, fileID: id)
            for key in [keys.data, keys.sidecar] {
                XCTAssertFalse(key.withBytes { $0.allSatisfy { $0 == 0 } })
                addresses.append(key.withBytes { UnsafeRawPointer($0.baseAddress!) })
            }
        }
        // Arena slots stay mapped after release; the key bytes read as zeros.
        for address in addresses {
            XCTAssertTrue(UnsafeRawBufferPointer(start: address, count: 32).allSatisfy { $0 == 0 }, "a released subkey was not zeroed")
        }
    }

    /// Reading a file's committed size (the provider's cold stat) derives only the header and
    /// sidecar keys.
    func testCommittedStateDerivesOnlyHeaderAndSidecarKeys() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        defer { store.close() }
        let data = store.dataDirectory
        let file = try store.createFile(in: data, name: "f")
        try file.commitAll(Fixture.bytes(10_000, seed: 1))
        file.close()
        let fd = openat(data, "f", O_RDONLY)
        defer { close(fd) }
        let (header, keys) = try FileState.readHeader(store: store, fd: fd)
        let sidecar = try FileState.readSidecar(store: store, header: header, keys: keys)
        XCTAssertEqual(sidecar.committedSize, 10_000)
        XCTAssertEqual(keys.derivedCount, 2)
        XCTAssertEqual(try store.committedState(descriptor: fd, readable: fd).size, 10_000)
        XCTAssertEqual(try store.committedState(descriptor: fd).size, 10_000)
    }
}
