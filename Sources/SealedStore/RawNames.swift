#if canImport(Glibc)
import Glibc
#endif
import CLinux

// Names under data/ are the sandbox's: bytes, not necessarily UTF-8. Everything that walks data/
// (verify, recovery's search) uses them as bytes; a String round trip would lose such files.

/// Entry names of a directory as raw bytes (without . and ..).
func listDirectoryNames(_ dirFD: Int32) throws -> [[UInt8]] {
    let dup = fcntl(dirFD, F_DUPFD_CLOEXEC, 0)
    guard dup >= 0 else { throw SealedStoreError.io("dup", errno) }
    guard let dir = fdopendir(dup) else { let e = errno; close(dup); throw SealedStoreError.io("fdopendir", e) }
    defer { closedir(dir) }
    rewinddir(dir)
    var out: [[UInt8]] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [UInt8] in Array(raw.prefix { $0 != 0 }) }
        if name == [0x2e] || name == [0x2e, 0x2e] { continue }
        out.append(name)
    }
    return out
}

func withCName<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    try (name + [0]).withUnsafeBufferPointer { b in try b.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) } }
}

/// openat(…, O_CLOEXEC | O_NOFOLLOW) of a raw name.
func openAt(_ dirFD: Int32, rawName: [UInt8], _ flags: Int32) -> Int32 {
    withCName(rawName) { clinux_openat(dirFD, $0, flags | O_CLOEXEC | O_NOFOLLOW, 0) }
}

func statAt(_ dirFD: Int32, rawName: [UInt8]) -> stat? {
    var st = stat()
    return withCName(rawName) { fstatat(dirFD, $0, &st, AT_SYMLINK_NOFOLLOW) } == 0 ? st : nil
}

/// `openBeneath` for raw components: no symlink followed on the way.
func openBeneath(_ dirFD: Int32, rawComponents: [[UInt8]], flags: Int32) throws -> Int32 {
    guard let last = rawComponents.last else { throw SealedStoreError.invalidArgument("empty path") }
    var current = dirFD
    var owned = false
    defer { if owned { close(current) } }
    for c in rawComponents.dropLast() {
        let next = openAt(current, rawName: c, O_RDONLY | O_DIRECTORY)
        guard next >= 0 else { throw SealedStoreError.io("open \(displayName(c))", errno) }
        if owned { close(current) }
        current = next; owned = true
    }
    let fd = openAt(current, rawName: last, flags)
    guard fd >= 0 else { throw SealedStoreError.io("open \(rawComponents.map(displayName).joined(separator: "/"))", errno) }
    return fd
}

/// A name for messages (invalid UTF-8 shown as U+FFFD).
func displayName(_ name: [UInt8]) -> String { String(decoding: name, as: UTF8.self) }
