/// `meta/rotation`: the epoch a rotation in progress moves files to (Keys/README.md §10).
///
/// Written (atomically, synced) *before* the epoch is added to the keyring and removed only when
/// every file has been moved, so a rerun after a crash at any instant resumes with the same target
/// instead of adding yet another epoch. Not secret and not authenticated: a forged marker can only
/// make `rotate` move files to an epoch that is already the newest, never expose a key.
struct RotationMarker: Equatable {
    static let name = "rotation"
    var targetEpoch: UInt32

    func serialize() -> [UInt8] { Array("sealgofer-rotation\nepoch=\(targetEpoch)\n".utf8) }

    static func parse(_ bytes: [UInt8]) -> RotationMarker? {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.count == 2, lines[0] == "sealgofer-rotation", lines[1].hasPrefix("epoch="),
              let e = UInt32(lines[1].dropFirst(6)), e >= 1 else { return nil }
        return RotationMarker(targetEpoch: e)
    }

    static func read(metaFD: Int32) throws -> RotationMarker? {
        guard let bytes = try readFileAt(metaFD, name, limit: 256) else { return nil }
        return parse(bytes)
    }

    func write(metaFD: Int32) throws {
        try replaceFileAt(metaFD, RotationMarker.name, serialize(), syncFile: true, syncDirectory: true)
    }

    static func remove(metaFD: Int32) throws {
        if unlinkat(metaFD, name, 0) != 0 && errno != ENOENT { throw SealedStoreError.io("remove meta/\(name)", errno) }
        unlinkat(metaFD, name + ".tmp", 0)
        try syncFD(metaFD, what: "meta")
    }
}

#if canImport(Glibc)
import Glibc
#endif
