#if canImport(Glibc)
import Glibc
#endif

/// What an import or export did.
public struct TreeReport: Sendable {
    public var files = 0
    public var directories = 0
    public var symlinks = 0
    public var hardLinks = 0
    public var bytes: UInt64 = 0
    /// Entries not copied (sockets, devices, FIFOs), with the reason.
    public var skipped: [String] = []
}

/// `sealgofer import`: encrypts a plaintext directory tree into the store (regular files,
/// directories, symlinks, hard links, permission bits, access and modification times).
public enum TreeImporter {
    /// Chunks per commit while streaming a large file in.
    static let batchChunks = 256

    public static func run(store: SealedStore, source: String, destination: String,
                           progress: ((_ bytes: UInt64) -> Void)? = nil) throws -> TreeReport {
        let src = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard src >= 0 else { throw SealedStoreError.invalidArgument("cannot open source directory \(source): \(String(cString: strerror(errno)))") }
        defer { close(src) }
        var dst = try openBeneath(store.dataDirectory, [], flags: O_RDONLY | O_DIRECTORY)
        for c in try pathComponents(destination) {
            try ensureDirectory(dst, c, mode: 0o755)
            let next = openAt(dst, c, O_RDONLY | O_DIRECTORY)
            let e = errno
            close(dst)
            guard next >= 0 else { throw SealedStoreError.io("open destination \(destination)", e) }
            dst = next
        }
        defer { close(dst) }
        var state = State(store: store, progress: progress)
        state.destinationPrefix = try pathComponents(destination)
        try state.importDirectory(src: src, dst: dst, relative: [])
        var st = stat()
        if fstat(src, &st) == 0 { _ = fchmod(dst, st.st_mode & 0o7777); var t = times(of: st); _ = futimens(dst, &t) }
        if !store.options.orderingSyncs { try store.syncAll() }
        return state.report
    }

    private struct State {
        let store: SealedStore
        let progress: ((UInt64) -> Void)?
        var destinationPrefix: [String] = []
        var report = TreeReport()
        /// (dev, ino) of multiply-linked source files → their path in the store.
        var linked: [String: [String]] = [:]
        /// One read buffer for the whole import (allocating and zeroing it per file dominated small files).
        var buffer: [UInt8] = []

        init(store: SealedStore, progress: ((UInt64) -> Void)?) { self.store = store; self.progress = progress }

        mutating func importDirectory(src: Int32, dst: Int32, relative: [String]) throws {
            for (name, _) in try listDirectory(src).sorted(by: { $0.name < $1.name }) {
                let st = try statAt(src, name)
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    if mkdirat(dst, name, 0o700) != 0 && errno != EEXIST { throw SealedStoreError.io("mkdir \(name)", errno) }
                    let s = try openDirectory(src, name)
                    defer { close(s) }
                    let d = try openDirectory(dst, name)
                    defer { close(d) }
                    try importDirectory(src: s, dst: d, relative: relative + [name])
                    _ = fchmod(d, st.st_mode & 0o7777)
                    var t = times(of: st); _ = futimens(d, &t)
                    report.directories += 1
                case S_IFREG:
                    let key = "\(st.st_dev):\(st.st_ino)"
                    if st.st_nlink > 1, let first = linked[key] {
                        guard linkat(store.dataDirectory, first.joined(separator: "/"), dst, name, 0) == 0 else {
                            throw SealedStoreError.io("link \(name)", errno)
                        }
                        report.hardLinks += 1
                        continue
                    }
                    try importFile(src: src, name: name, st: st, dst: dst)
                    if st.st_nlink > 1 { linked[key] = destinationPrefix + relative + [name] }
                case S_IFLNK:
                    let target = try readLinkAt(src, name)
                    let rc = (target + [0]).withUnsafeBufferPointer {
                        symlinkat(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), dst, name)
                    }
                    guard rc == 0 else { throw SealedStoreError.io("symlink \(name)", errno) }
                    var t = times(of: st); _ = utimensat(dst, name, &t, AT_SYMLINK_NOFOLLOW)
                    report.symlinks += 1
                default:
                    report.skipped.append((relative + [name]).joined(separator: "/") + ": not a file, directory or symlink")
                }
            }
        }

        mutating func importFile(src: Int32, name: String, st: stat, dst: Int32) throws {
            let inFD = openAt(src, name, O_RDONLY)
            guard inFD >= 0 else { throw SealedStoreError.io("open \(name)", errno) }
            defer { close(inFD) }
            // Written in meta/pending and linked here only once complete, attributes included: an
            // import killed half-way leaves whole files or none (Keys/README.md §7.1).
            let file = try store.createPendingFile(mode: 0o600)
            defer { file.close() }
            let c = file.chunkSize
            let want = min(c * TreeImporter.batchChunks, max(c, (Int(st.st_size) + c - 1) / c * c))
            if buffer.count < want { buffer = [UInt8](repeating: 0, count: want) }
            var used = 0
            defer { buffer.withUnsafeMutableBytes { if used > 0 { wipeBytes(UnsafeMutableRawBufferPointer(rebasing: $0[0..<used])) } } }
            var size: UInt64 = 0
            while true {
                let got = try buffer.withUnsafeMutableBytes { try readUpTo(fd: inFD, UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), offset: size, what: "read \(name)") }
                used = max(used, got)
                if got == 0 { break }
                var changes: [ChunkChange] = []
                changes.reserveCapacity((got + c - 1) / c)
                var o = 0
                while o < got {
                    changes.append(ChunkChange(index: (size + UInt64(o)) / UInt64(c), plaintext: Array(buffer[o..<min(o + c, got)])))
                    o += c
                }
                size += UInt64(got)
                try file.appendBulk(changes, newSize: size)
                report.bytes += UInt64(got)
                progress?(report.bytes)
                if got < want { break }
            }
            try file.finishBulk(in: dst, name: name) { fd in
                _ = fchmod(fd, st.st_mode & 0o7777)
                var t = times(of: st); _ = futimens(fd, &t)
            }
            report.files += 1
        }
    }
}
