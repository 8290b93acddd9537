#if canImport(Glibc)
import Glibc
#endif

/// What unlocks a keyring: a 32-byte key file or a passphrase (Keys/README.md §3).
public enum KeyMaterial {
    case keyFile(SecretBytes)
    case passphrase(SecretBytes)

    public static let keyFileLength = 32

    /// Reads a key file; it must hold exactly 32 bytes.
    public static func readKeyFile(path: String) throws -> KeyMaterial {
        var bytes = try readSmallFile(path: path, limit: 4096)
        defer { wipe(&bytes) }
        guard bytes.count == keyFileLength else {
            throw SealedStoreError.invalidArgument("key file \(path) must hold exactly \(keyFileLength) bytes, it holds \(bytes.count)")
        }
        return .keyFile(SecretBytes(copying: bytes))
    }

    /// Creates a key file with 32 fresh random bytes, mode 0600, refusing to overwrite.
    public static func createKeyFile(path: String) throws -> KeyMaterial {
        let key = SecretBytes.random(count: keyFileLength)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SealedStoreError.io("create key file \(path)", errno) }
        defer { close(fd) }
        try key.withBytes { try writeAll(fd: fd, $0, offset: 0, what: "write key file") }
        guard fsync(fd) == 0 else { throw SealedStoreError.io("fsync key file", errno) }
        return .keyFile(key)
    }

    /// Reads a passphrase file; one trailing newline is dropped.
    public static func readPassphraseFile(path: String) throws -> KeyMaterial {
        var bytes = try readSmallFile(path: path, limit: 65536)
        defer { wipe(&bytes) }
        if bytes.last == 10 { bytes.removeLast(); if bytes.last == 13 { bytes.removeLast() } }
        guard !bytes.isEmpty else { throw SealedStoreError.invalidArgument("passphrase file \(path) is empty") }
        return .passphrase(SecretBytes(copying: bytes))
    }

    var kdfID: UInt8 {
        if case .keyFile = self { return 1 }
        return 2
    }
}

/// Argon2id cost presets; the chosen limits are recorded in the keyring.
public enum PassphraseCost: String, CaseIterable, Sendable {
    case minimal, interactive, moderate, sensitive
    public var opsLimit: UInt64 {
        switch self {
        case .minimal: return 1
        case .interactive: return 2
        case .moderate: return 3
        case .sensitive: return 4
        }
    }
    public var memLimit: UInt64 {
        switch self {
        case .minimal: return 8 * 1024
        case .interactive: return 64 * 1024 * 1024
        case .moderate: return 256 * 1024 * 1024
        case .sensitive: return 1024 * 1024 * 1024
        }
    }
}

func readSmallFile(path: String, limit: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SealedStoreError.invalidArgument("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    defer { wipe(&buf) }
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw SealedStoreError.io("read \(path)", errno) }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
        if out.count > limit { wipe(&out); throw SealedStoreError.invalidArgument("\(path) is too large") }
    }
    return out
}
