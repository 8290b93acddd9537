#if canImport(Glibc)
import Glibc
#endif

/// `sealgofer export`: decrypts one file, or a subtree, out of the store.
public enum TreeExporter {
    /// Writes the plaintext of the regular file at store path `path` to `out` (sequential writes,
    /// so pipes work). Returns the byte count.
    @discardableResult
    public static func exportFile(store: SealedStore, path: String, to out: Int32) throws -> UInt64 {
        let fd = try openBeneath(store.dataDirectory, try pathComponents(path), flags: O_RDONLY)
        defer { close(fd) }
        return try copyOut(store: store, fd: fd, to: out, name: path)
    }

    /// Recreates the subtree at store path `path` below the new directory `outDirectory`.
    public static func exportTree(store: SealedStore, path: String, to outDirectory: String) throws -> TreeReport {
        let comps = try pathComponents(path)
        let src = try openBeneath(store.dataDirectory, comps, flags: O_RDONLY | O_DIRECTORY)
        defer { close(src) }
        if mkdir(outDirectory, 0o700) != 0 && errno != EEXIST { throw SealedStoreError.io("mkdir \(outDirectory)", errno) }
        let dst = open(outDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard dst >= 0 else { throw SealedStoreError.io("open \(outDirectory)", errno) }
        defer { close(dst) }
        var report = TreeReport()
        var linkPaths: [String: String] = [:]
        try exportDirectory(store: store, src: src, dst: dst, outRoot: outDirectory, relative: [], report: &report, linkPaths: &linkPaths)
        var st = stat()
        if fstat(src, &st) == 0 { _ = fchmod(dst, st.st_mode & 0o7777); var t = times(of: st); _ = futimens(dst, &t) }
        return report
    }

    private static func exportDirectory(store: SealedStore, src: Int32, dst: Int32, outRoot: String, relative: [String],
                                        report: inout TreeReport, linkPaths: inout [String: String]) throws {
        for (name, _) in try listDirectory(src).sorted(by: { $0.name < $1.name }) {
            let st = try statAt(src, name)
            let rel = (relative + [name]).joined(separator: "/")
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if mkdirat(dst, name, 0o700) != 0 && errno != EEXIST { throw SealedStoreError.io("mkdir \(rel)", errno) }
                let s = try openDirectory(src, name)
                defer { close(s) }
                let d = try openDirectory(dst, name)
                defer { close(d) }
                try exportDirectory(store: store, src: s, dst: d, outRoot: outRoot, relative: relative + [name], report: &report, linkPaths: &linkPaths)
                _ = fchmod(d, st.st_mode & 0o7777)
                var t = times(of: st); _ = futimens(d, &t)
                report.directories += 1
            case S_IFREG:
                let key = "\(st.st_dev):\(st.st_ino)"
                if st.st_nlink > 1, let first = linkPaths[key] {
                    // Hard links inside the exported tree stay hard links.
                    if linkat(AT_FDCWD, first, dst, name, 0) == 0 { report.hardLinks += 1; continue }
                }
                let inFD = openAt(src, name, O_RDONLY)
                guard inFD >= 0 else { throw SealedStoreError.io("open \(rel)", errno) }
                defer { close(inFD) }
                let out = openAt(dst, name, O_WRONLY | O_CREAT | O_EXCL, 0o600)
                guard out >= 0 else { throw SealedStoreError.io("create \(rel)", errno) }
                defer { close(out) }
                report.bytes += try copyOut(store: store, fd: inFD, to: out, name: rel)
                _ = fchmod(out, st.st_mode & 0o7777)
                var t = times(of: st); _ = futimens(out, &t)
                if st.st_nlink > 1 { linkPaths[key] = outRoot + "/" + rel }
                report.files += 1
            case S_IFLNK:
                let target = try readLinkAt(src, name)
                let rc = (target + [0]).withUnsafeBufferPointer {
                    symlinkat(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), dst, name)
                }
                guard rc == 0 else { throw SealedStoreError.io("symlink \(rel)", errno) }
                var t = times(of: st); _ = utimensat(dst, name, &t, AT_SYMLINK_NOFOLLOW)
                report.symlinks += 1
            default:
                report.skipped.append(rel + ": not a file, directory or symlink")
            }
        }
    }

    private static func copyOut(store: SealedStore, fd: Int32, to out: Int32, name: String) throws -> UInt64 {
        let file = try store.openFile(descriptor: fd)
        defer { file.close() }
        var total: UInt64 = 0
        try file.readChunks(0..<file.chunkCount) { _, plain in
            try writeStream(out, plain, what: "write \(name)")
            total += UInt64(plain.count)
        }
        return total
    }
}

/// write(2) until done (stdout may be a pipe: no pwrite).
func writeStream(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, what: String) throws {
    var done = 0
    while done < buffer.count {
        let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
        if n < 0 { if errno == EINTR { continue }; throw SealedStoreError.io(what, errno) }
        done += n
    }
}
