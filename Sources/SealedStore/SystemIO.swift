#if canImport(Glibc)
import Glibc
#endif
import CLinux

// Small fd-based I/O helpers. Everything the store touches is reached through directory FDs with
// O_NOFOLLOW, never through re-resolved paths, so a symlink planted under meta/ or data/ cannot
// redirect a write.

func writeAll(fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: UInt64, what: String) throws {
    var done = 0
    while done < buffer.count {
        let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        if n < 0 { if errno == EINTR { continue }; throw SealedStoreError.io(what, errno) }
        if n == 0 { throw SealedStoreError.io(what, EIO) }
        done += n
    }
}

func writeAll(fd: Int32, _ bytes: [UInt8], offset: UInt64, what: String) throws {
    try bytes.withUnsafeBytes { try writeAll(fd: fd, $0, offset: offset, what: what) }
}

/// Reads up to buffer.count bytes at offset; returns the count read (short only at end of file).
func readUpTo(fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: UInt64, what: String) throws -> Int {
    var done = 0
    while done < buffer.count {
        let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        if n < 0 { if errno == EINTR { continue }; throw SealedStoreError.io(what, errno) }
        if n == 0 { break }
        done += n
    }
    return done
}

func readBytes(fd: Int32, count: Int, offset: UInt64, what: String) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    let n = try out.withUnsafeMutableBytes { try readUpTo(fd: fd, $0, offset: offset, what: what) }
    if n < count { out.removeLast(count - n) }
    return out
}

func readWhole(fd: Int32, limit: Int, what: String) throws -> [UInt8] {
    var out = [UInt8]()
    var offset: UInt64 = 0
    // Small files (sidecars: 128 bytes) are read with a buffer just past their limit, not 64 KiB.
    let step = min(65536, limit + 1)
    while true {
        let chunk = try readBytes(fd: fd, count: step, offset: offset, what: what)
        out += chunk
        if out.count > limit { throw SealedStoreError.invalidArgument("\(what): larger than \(limit) bytes") }
        if chunk.count < step { return out }
        offset += UInt64(chunk.count)
    }
}

func syncFD(_ fd: Int32, what: String) throws {
    while fsync(fd) != 0 {
        if errno == EINTR { continue }
        throw SealedStoreError.io("fsync \(what)", errno)
    }
}

func dataSyncFD(_ fd: Int32, what: String) throws {
    while fdatasync(fd) != 0 {
        if errno == EINTR { continue }
        throw SealedStoreError.io("fdatasync \(what)", errno)
    }
}

func fileSize(fd: Int32) throws -> UInt64 {
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw SealedStoreError.io("fstat", errno) }
    return UInt64(st.st_size)
}

func openAt(_ dirFD: Int32, _ name: String, _ flags: Int32, _ mode: UInt32 = 0) -> Int32 {
    clinux_openat(dirFD, name, flags | O_CLOEXEC | O_NOFOLLOW, mode)
}

func openDirectory(_ dirFD: Int32, _ name: String) throws -> Int32 {
    let fd = openAt(dirFD, name, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { throw SealedStoreError.io("open directory \(name)", errno) }
    return fd
}

/// mkdirat that tolerates an existing directory.
func ensureDirectory(_ dirFD: Int32, _ name: String, mode: mode_t = 0o700) throws {
    if mkdirat(dirFD, name, mode) != 0 && errno != EEXIST {
        throw SealedStoreError.io("mkdir \(name)", errno)
    }
}

/// Reads a whole small file below dirFD; nil when it does not exist.
func readFileAt(_ dirFD: Int32, _ name: String, limit: Int) throws -> [UInt8]? {
    let fd = openAt(dirFD, name, O_RDONLY)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw SealedStoreError.io("open \(name)", errno)
    }
    defer { close(fd) }
    return try readWhole(fd: fd, limit: limit, what: "read \(name)")
}

/// Atomically replaces dirFD/name with bytes: write name.tmp, (fsync), rename, (fsync dir).
func replaceFileAt(_ dirFD: Int32, _ name: String, _ bytes: [UInt8], syncFile: Bool, syncDirectory: Bool) throws {
    let tmp = name + ".tmp"
    let fd = openAt(dirFD, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { throw SealedStoreError.io("create \(tmp)", errno) }
    do {
        try writeAll(fd: fd, bytes, offset: 0, what: "write \(tmp)")
        if syncFile { try dataSyncFD(fd, what: tmp) }
    } catch {
        close(fd); unlinkat(dirFD, tmp, 0); throw error
    }
    close(fd)
    guard renameat(dirFD, tmp, dirFD, name) == 0 else {
        let e = errno; unlinkat(dirFD, tmp, 0); throw SealedStoreError.io("rename \(tmp)", e)
    }
    if syncDirectory { try syncFD(dirFD, what: "directory of \(name)") }
}

/// Creates dirFD/name exclusively with bytes (no replacement), optionally synced. On failure
/// (ENOSPC, EIO) nothing is left: a partial file is removed again.
func createFileAt(_ dirFD: Int32, _ name: String, _ bytes: [UInt8], mode: UInt32 = 0o600, sync: Bool) throws {
    let fd = openAt(dirFD, name, O_WRONLY | O_CREAT | O_EXCL, mode)
    guard fd >= 0 else { throw SealedStoreError.io("create \(name)", errno) }
    defer { close(fd) }
    do {
        try writeAll(fd: fd, bytes, offset: 0, what: "write \(name)")
        if sync { try syncFD(fd, what: name) }
    } catch {
        unlinkat(dirFD, name, 0)
        throw error
    }
}

/// Lists a directory's entry names (without . and ..).
func listDirectory(_ dirFD: Int32) throws -> [(name: String, type: UInt8)] {
    let dup = fcntl(dirFD, F_DUPFD_CLOEXEC, 0)
    guard dup >= 0 else { throw SealedStoreError.io("dup", errno) }
    guard let dir = fdopendir(dup) else { let e = errno; close(dup); throw SealedStoreError.io("fdopendir", e) }
    defer { closedir(dir) }
    rewinddir(dir)
    var out: [(String, UInt8)] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name == "." || name == ".." { continue }
        out.append((name, entry.pointee.d_type))
    }
    return out
}

/// Splits a store-relative path ("a/b/c", leading "/" allowed) into components, rejecting "..".
func pathComponents(_ path: String) throws -> [String] {
    let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
    guard !parts.contains("..") else { throw SealedStoreError.invalidArgument("path may not contain ..: \(path)") }
    return parts
}

/// Opens `components` below `dirFD` without following any symlink on the way (every component
/// O_NOFOLLOW). Directories in between are opened O_DIRECTORY.
func openBeneath(_ dirFD: Int32, _ components: [String], flags: Int32, mode: UInt32 = 0) throws -> Int32 {
    if components.isEmpty {
        let fd = fcntl(dirFD, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw SealedStoreError.io("dup", errno) }
        return fd
    }
    var current = dirFD
    var owned = false
    defer { if owned { close(current) } }
    for c in components.dropLast() {
        let next = openAt(current, c, O_RDONLY | O_DIRECTORY)
        guard next >= 0 else { throw SealedStoreError.io("open \(c)", errno) }
        if owned { close(current) }
        current = next; owned = true
    }
    let fd = openAt(current, components.last!, flags, mode)
    guard fd >= 0 else { throw SealedStoreError.io("open \(components.joined(separator: "/"))", errno) }
    return fd
}

func statAt(_ dirFD: Int32, _ name: String) throws -> stat {
    var st = stat()
    guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw SealedStoreError.io("stat \(name)", errno) }
    return st
}

func readLinkAt(_ dirFD: Int32, _ name: String) throws -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: 4097)
    let n = buf.withUnsafeMutableBufferPointer { readlinkat(dirFD, name, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 4097) }
    guard n >= 0 else { throw SealedStoreError.io("readlink \(name)", errno) }
    guard n <= 4096 else { throw SealedStoreError.invalidArgument("symlink target too long: \(name)") }
    return Array(buf[0..<n])
}

/// atime/mtime of a stat as a timespec pair for futimens/utimensat.
func times(of st: stat) -> [timespec] { [st.st_atim, st.st_mtim] }
