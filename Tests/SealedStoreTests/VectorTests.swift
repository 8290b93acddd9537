import XCTest
@testable import SealedStore

/// Known-answer vectors from Keys/vectors (produced by an independent Python implementation of the spec).
final class VectorTests: XCTestCase {
    func testKeyringKeyFileVector() throws { try checkKeyring("keyring-keyfile.json") }
    func testKeyringPassphraseVector() throws { try checkKeyring("keyring-passphrase.json") }

    private func checkKeyring(_ name: String) throws {
        let v = try Fixture.vector(name)
        let key: KeyMaterial
        let cost: PassphraseCost
        if let kf = v["key_file"] { key = .keyFile(SecretBytes(copying: hex(kf))); cost = .moderate }
        else { key = .passphrase(SecretBytes(copying: Array((v["passphrase"] as! String).utf8))); cost = .minimal }
        let config = Array((v["config"] as! String).utf8)
        XCTAssertNoThrow(try StoreConfig.parse(config))
        let ring = try Keyring.create(key: key, storeID: hex(v["store_id"]), configDigest: Sodium.hash(config), cost: cost,
                                      salt: hex(v["salt"]), masterKey: SecretBytes(copying: hex((v["master_keys"] as! [String])[0])),
                                      created: UInt64(v["created"] as! Int))
        let bytes = ring.serialize(nonce: hex(v["nonce"]))
        XCTAssertEqual(encodeHex(bytes), v["keyring"] as! String)
        // And the reverse: the vector's bytes open with the key and yield the master key.
        let opened = try Keyring.open(hex(v["keyring"]), key: key)
        XCTAssertEqual(opened.masterKey(epoch: 1)?.exposedCopy(), hex((v["master_keys"] as! [String])[0]))
        XCTAssertEqual(opened.epochs, [EpochInfo(id: 1, state: 1, created: UInt64(v["created"] as! Int))])
    }

    func testFileVectors() throws {
        for suite in Fixture.suites {
            let v = try Fixture.vector("file-\(suite.name).json")
            let id = FileID(bytes: hex(v["file_id"]))!
            let epoch = UInt32(v["epoch"] as! Int)
            let keys = FileKeys(master: SecretBytes(copying: hex(v["master_key"])), epoch: epoch, fileID: id)
            let sub = v["subkeys"] as! [String: String]
            XCTAssertEqual(keys.data.exposedCopy(), hex(sub["data"]), "\(suite)")
            XCTAssertEqual(keys.header.exposedCopy(), hex(sub["header"]))
            XCTAssertEqual(keys.sidecar.exposedCopy(), hex(sub["sidecar"]))
            XCTAssertEqual(keys.journal.exposedCopy(), hex(sub["journal"]))
            XCTAssertEqual(keys.digest.exposedCopy(), hex(sub["digest"]))
            let chunk = v["chunk_size"] as! Int
            let header = FileHeader(suite: suite, chunkSize: chunk, epoch: epoch, fileID: id)
            let headerBytes = header.serialize(keys: keys)
            XCTAssertEqual(encodeHex(headerBytes), v["header"] as! String)
            let codec = ChunkCodec(layout: ChunkLayout(chunkSize: chunk, suite: suite), keys: keys, headerFields: header.fields)
            let plaintext = hex(v["plaintext"])
            var file = headerBytes
            for c in v["chunks"] as! [[String: Any]] {
                let i = c["index"] as! Int
                let p = Array(plaintext[(i * chunk)..<min((i + 1) * chunk, plaintext.count)])
                let slot = codec.seal(index: UInt64(i), plaintext: p, nonce: hex(c["nonce"]))
                XCTAssertEqual(encodeHex(slot), c["slot"] as! String, "\(suite) chunk \(i)")
                XCTAssertEqual(codec.open(index: UInt64(i), slot: slot), p)
                XCTAssertNil(codec.open(index: UInt64(i + 1), slot: slot), "index is bound")
                file += slot
            }
            XCTAssertEqual(encodeHex(file), v["file"] as! String)
            XCTAssertEqual(ChunkLayout(chunkSize: chunk, suite: suite).fileLength(size: UInt64(plaintext.count)), UInt64(file.count))
            let s = v["sidecar"] as! [String: Any]
            let sc = Sidecar(suite: suite, chunkSize: chunk, epoch: epoch, fileID: id, committedSize: UInt64(s["committed_size"] as! Int),
                             generation: UInt64(s["generation"] as! Int), encryptions: UInt64(s["encryptions"] as! Int), previousFileID: .zero)
            XCTAssertEqual(encodeHex(sc.serialize(keys: keys)), s["bytes"] as! String)
            XCTAssertEqual(Sidecar.parseFields(hex(s["bytes"])), sc)
            let j = v["journal"] as! [String: Any]
            var newSC = sc
            newSC.generation = UInt64(j["new_generation"] as! Int); newSC.encryptions = UInt64(j["new_encryptions"] as! Int)
            let ji = UInt64(j["chunk_index"] as! Int)
            let jslot = codec.seal(index: ji, plaintext: hex(j["plaintext"]), nonce: hex(j["nonce"]))
            let journal = Journal(movesToFreshID: false, fileID: id, newSidecar: newSC.serialize(keys: keys), newHeader: headerBytes,
                                  entries: [(ji, jslot)])
            XCTAssertEqual(encodeHex(journal.serialize(keys: keys)), j["bytes"] as! String)
            XCTAssertNotNil(Journal.parse(hex(j["bytes"]), keys: keys, maxSlot: 1 << 20))
            let digest = Array(plaintext[0..<chunk]).withUnsafeBytes { Sodium.keyedHash(key: keys.digest, $0, outputLength: 16) }
            XCTAssertEqual(encodeHex(digest), v["digest_of_chunk0"] as! String)
        }
    }
}
