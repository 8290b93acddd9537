import FuzzDriver
@testable import SealedStore

// The sealed store's parsers of on-disk bytes (Keys/README.md §3, §5.1, §6,
// §7, config): what someone with the disk controls. The first input byte
// picks the parser, the rest is the file:
//
//   0 file header      FileHeader.parseFields (+ MAC check)
//   1 sidecar          Sidecar.parseFields (+ MAC check)
//   2 keyring          the harness appends the BLAKE2b checksum, then
//                      KeyringHeader.parse and Keyring.open with the vector key file
//                      (passphrase keyrings: only with cheap or invalid costs)
//   3 journal          the harness puts the vector file's ID at bytes 8..<24 and
//                      appends the journal MAC under the vector file's keys, so the
//                      structure behind the MAC is reached; then Journal.parse and
//                      the parses recovery makes of its sidecar and header
//   4 config           StoreConfig.parse
//
// Checked: no trap, no out-of-bounds access, no allocation over 64 MiB (a
// length or count field from the file never sizes an allocation), and parsed
// values re-serialise to the bytes they came from (header and sidecar fields,
// config through a parse round trip).

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var chars = Array(hex.utf8).makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let a = chars.next(), let b = chars.next() { out.append(nibble(a) << 4 | nibble(b)) }
    return out
}

// Keys/vectors/file-aes256gcm.json and keyring-keyfile.json.
let vectorFileID = FileID(bytes: bytes(hex: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"))!
let vectorKeys = FileKeys(master: SecretBytes(copying: bytes(hex: "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f")),
                          epoch: 3, fileID: vectorFileID)
let vectorKeyFile = KeyMaterial.keyFile(SecretBytes(copying: bytes(hex: "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf")))

func fuzzHeader(_ body: [UInt8]) {
    guard let header = FileHeader.parseFields(body) else { return }
    guard header.fields == Array(body[0..<32]) else { fatalError("header \(header) re-serialises differently") }
    _ = FileHeader.verifyMAC(body, keys: vectorKeys)
}

func fuzzSidecar(_ body: [UInt8]) {
    guard let sidecar = Sidecar.parseFields(body) else { return }
    guard Array(sidecar.serialize(keys: vectorKeys)[0..<96]) == Array(body[0..<96]) else {
        fatalError("sidecar \(sidecar) re-serialises differently")
    }
    _ = Sidecar.verifyMAC(body, keys: vectorKeys)
}

// Held untagged: LeakSanitizer does not see a class reference inside a
// multi-payload enum (its tag lives in the pointer's spare bits) and would
// report the global as leaked at exit.
let vectorPassphraseBytes = SecretBytes(copying: Array("correct horse battery staple".utf8))
var vectorPassphrase: KeyMaterial { .passphrase(vectorPassphraseBytes) }

func fuzzKeyring(_ body: [UInt8]) {
    let file = body + Sodium.hash(body)
    guard let header = try? KeyringHeader.parse(file) else { return }
    if header.kdf == 1 {
        _ = try? Keyring.open(file, key: vectorKeyFile)
    } else if header.memLimit > UInt64(Int.max) || header.opsLimit > UInt64(UInt32.max) || header.opsLimit == 0
                || (header.opsLimit <= 2 && header.memLimit <= 64 * 1024) {
        // Argon2id with the file's costs: only where they are cheap, or invalid
        // (which must fail fast: a memLimit past Int.max used to trap).
        _ = try? Keyring.open(file, key: vectorPassphrase)
    }
}

func fuzzJournal(_ body: [UInt8]) {
    var body = body
    if body.count >= 24 { body.replaceSubrange(8..<24, with: vectorFileID.bytes) }
    let file = body + Sodium.keyedHash(key: vectorKeys.journal, body)
    let maxSlot = ChunkLayout(chunkSize: 4096, suite: .xchacha20poly1305).slotSize
    guard let journal = Journal.parse(file, keys: vectorKeys, maxSlot: maxSlot) else { return }
    guard journal.fileID == vectorFileID, journal.entries.allSatisfy({ $0.slot.count <= maxSlot }) else {
        fatalError("journal accepted with a foreign ID or an oversized slot")
    }
    guard journal.serialize(keys: vectorKeys) == file else { fatalError("journal re-serialises differently") }
    if let sidecar = Sidecar.parseFields(journal.newSidecar), let header = FileHeader.parseFields(journal.newHeader) {
        _ = sidecar.matches(header)
        _ = Sidecar.verifyMAC(journal.newSidecar, keys: vectorKeys)
        _ = FileHeader.verifyMAC(journal.newHeader, keys: vectorKeys)
    }
}

func fuzzConfig(_ body: [UInt8]) {
    guard let config = try? StoreConfig.parse(body) else { return }
    guard let again = try? StoreConfig.parse(config.serialize()), again.storeID == config.storeID,
          again.suite == config.suite, again.chunkSize == config.chunkSize else {
        fatalError("config \(config) does not survive a round trip")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStoreParsers(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 1 else { return 0 }
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 5 {
    case 0: fuzzHeader(body)
    case 1: fuzzSidecar(body)
    case 2: fuzzKeyring(body)
    case 3: fuzzJournal(body)
    default: fuzzConfig(body)
    }
    return 0
}

@_cdecl("FuzzStoreParsers_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    try? Sodium.ensureReady()
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzStoreParsers(data, size) }
}
