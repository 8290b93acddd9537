#if canImport(Glibc)
import Glibc
#endif

/// Result of an offline check of a whole store (`sealgofer verify`).
public struct VerifyReport: Sendable {
    public var files = 0
    public var directories = 0
    public var symlinks = 0
    public var otherNodes = 0
    public var chunks: UInt64 = 0
    public var plaintextBytes: UInt64 = 0
    public var sidecars = 0
    /// Interrupted commits replayed while opening files (as any open does).
    public var recoveredJournals = 0
    /// Interrupted creates and removals completed or undone when the store was opened (§7.1).
    public var recoveredOperations = 0
    public var damage: [Damage] = []
    /// Harmless findings (leftover temporary files).
    public var notes: [String] = []
    public var isClean: Bool { damage.isEmpty }
}

/// Checks every sidecar MAC, header, chunk and size under data/, and looks for orphans
/// (sidecars without files, journals without files, file IDs shared by distinct inodes).
/// Files are opened like the provider opens them, so interrupted commits are replayed first.
public enum Verifier {
    /// Per-file limit on reported damaged chunks (the rest are counted in the detail).
    static let maxChunksReported = 64

    public static func run(store: SealedStore, progress: ((_ doneBytes: UInt64, _ totalBytes: UInt64) -> Void)? = nil) -> VerifyReport {
        var report = VerifyReport()
        report.recoveredOperations = store.recoveredOperations
        var entries: [(path: [[UInt8]], size: UInt64)] = []
        walk(store.dataDirectory, [], &entries, &report)
        let total = entries.reduce(0) { $0 + $1.size }
        var done: UInt64 = 0
        var owners: [FileID: [(dev: UInt64, ino: UInt64, path: String)]] = [:]
        for entry in entries {
            let path = entry.path.map(displayName).joined(separator: "/")
            checkFile(store: store, path: path, components: entry.path, owners: &owners, report: &report)
            done += entry.size
            progress?(done, total)
        }
        for (id, list) in owners {
            let inodes = Set(list.map { "\($0.dev):\($0.ino)" })
            if inodes.count > 1 {
                for o in list {
                    report.damage.append(Damage(.duplicateFileID, fileID: id, path: o.path,
                                                detail: "file ID shared by \(inodes.count) distinct files: \(list.map(\.path).sorted().joined(separator: ", "))"))
                }
            }
        }
        checkOrphans(store: store, seen: Set(owners.keys), report: &report)
        return report
    }

    /// Names are walked as bytes: the sandbox's names need not be UTF-8.
    private static func walk(_ dirFD: Int32, _ prefix: [[UInt8]], _ out: inout [(path: [[UInt8]], size: UInt64)], _ report: inout VerifyReport) {
        guard let names = try? listDirectoryNames(dirFD) else {
            report.damage.append(Damage(.unreadable, path: prefix.map(displayName).joined(separator: "/"), detail: "cannot list directory")); return
        }
        for name in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let st = statAt(dirFD, rawName: name) else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                report.directories += 1
                let sub = openAt(dirFD, rawName: name, O_RDONLY | O_DIRECTORY)
                guard sub >= 0 else {
                    report.damage.append(Damage(.unreadable, path: (prefix + [name]).map(displayName).joined(separator: "/"), detail: "cannot open directory")); continue
                }
                walk(sub, prefix + [name], &out, &report)
                close(sub)
            case S_IFREG: out.append((prefix + [name], UInt64(st.st_size)))
            case S_IFLNK: report.symlinks += 1
            default: report.otherNodes += 1
            }
        }
    }

    private static func checkFile(store: SealedStore, path: String, components: [[UInt8]],
                                  owners: inout [FileID: [(dev: UInt64, ino: UInt64, path: String)]], report: inout VerifyReport) {
        report.files += 1
        let fd: Int32
        do { fd = try openBeneath(store.dataDirectory, rawComponents: components, flags: O_RDWR) } catch {
            report.damage.append(Damage(.unreadable, path: path, detail: "\(error)")); return
        }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let hadJournal: Bool = {
            guard let h = FileHeader.parseFields((try? readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "")) ?? []) else { return false }
            var js = stat()
            return fstatat(store.layout.journalFD, StoreLayout.journalName(h.fileID), &js, AT_SYMLINK_NOFOLLOW) == 0
        }()
        let state: FileState
        do {
            state = try FileState.load(store: store, fd: fd)
        } catch SealedStoreError.damaged(var d) {
            d.path = path
            report.damage.append(d)
            // Still claim the ID so its sidecar is not reported as an orphan as well.
            if let h = FileHeader.parseFields((try? readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "")) ?? []) {
                owners[h.fileID, default: []].append((UInt64(st.st_dev), UInt64(st.st_ino), path))
            }
            return
        } catch {
            report.damage.append(Damage(.unreadable, path: path, detail: "\(error)")); return
        }
        if hadJournal { report.recoveredJournals += 1 }
        let id = state.header.fileID
        owners[id, default: []].append((UInt64(st.st_dev), UInt64(st.st_ino), path))
        let codec = ChunkCodec(layout: state.layout, keys: state.keys, headerFields: state.header.fields)
        let layout = state.layout
        let size = state.sidecar.committedSize
        let n = layout.chunkCount(size: size)
        report.plaintextBytes += size
        var bad: [UInt64] = []
        var slot = [UInt8](repeating: 0, count: layout.slotSize)
        var plain = [UInt8](repeating: 0, count: layout.chunkSize)
        var index: UInt64 = 0
        while index < n {
            let len = layout.plaintextLength(index: index, size: size) + layout.overhead
            let ok: Bool = slot.withUnsafeMutableBytes { s in
                guard let got = try? readUpTo(fd: fd, UnsafeMutableRawBufferPointer(rebasing: s[0..<len]), offset: layout.slotOffset(index), what: ""),
                      got == len else { return false }
                return plain.withUnsafeMutableBytes { codec.open(index: index, slot: UnsafeRawBufferPointer(rebasing: s[0..<len]), into: $0) }
            }
            if !ok { bad.append(index) }
            index += 1
        }
        wipe(&plain)
        report.chunks += n
        for b in bad.prefix(maxChunksReported) {
            report.damage.append(Damage(.chunk, fileID: id, path: path, chunk: b,
                                        detail: bad.count > maxChunksReported ? "chunk authentication failed (\(bad.count) chunks in all)" : "chunk authentication failed"))
        }
    }

    private static func checkOrphans(store: SealedStore, seen: Set<FileID>, report: inout VerifyReport) {
        // Open resolved every intent record it understood; what is left is unexplained.
        for (name, _) in (try? listDirectory(store.layout.pendingFD)) ?? [] {
            if let (id, _) = PendingKind.parse(name) {
                report.damage.append(Damage(.pendingOperation, fileID: id, path: "meta/pending/\(name)",
                                            detail: "interrupted create or removal that recovery could not finish"))
            } else {
                report.notes.append("unexpected entry meta/pending/\(name)")
            }
        }
        let filesFD = store.layout.filesFD
        for (dir, _) in (try? listDirectory(filesFD)) ?? [] {
            guard let sub = try? openDirectory(filesFD, dir) else { continue }
            defer { close(sub) }
            for (name, _) in (try? listDirectory(sub)) ?? [] {
                if name.hasSuffix(".sc.tmp") { report.notes.append("leftover temporary sidecar meta/files/\(dir)/\(name)"); continue }
                guard name.hasSuffix(".sc"), let id = FileID(hex: String(name.dropLast(3))) else {
                    report.notes.append("unexpected entry meta/files/\(dir)/\(name)"); continue
                }
                report.sidecars += 1
                if !seen.contains(id) {
                    report.damage.append(Damage(.orphanSidecar, fileID: id, path: "meta/files/\(dir)/\(name)",
                                                detail: "sidecar without a data file (file deleted or replaced outside the store)"))
                }
            }
        }
        for (name, _) in (try? listDirectory(store.layout.journalFD)) ?? [] {
            if name.hasSuffix(".j.tmp") { report.notes.append("leftover temporary journal meta/journal/\(name)"); continue }
            guard name.hasSuffix(".j"), let id = FileID(hex: String(name.dropLast(2))) else {
                report.notes.append("unexpected entry meta/journal/\(name)"); continue
            }
            // Journals of files that were opened were replayed or reported already; others are stale.
            var js = stat()
            guard fstatat(store.layout.journalFD, name, &js, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if !seen.contains(id) {
                report.damage.append(Damage(.orphanJournal, fileID: id, path: "meta/journal/\(name)", detail: "journal without a data file"))
            } else if !report.damage.contains(where: { $0.fileID == id && $0.kind == .journal }) {
                report.damage.append(Damage(.journal, fileID: id, path: "meta/journal/\(name)", detail: "journal left after its file was opened"))
            }
        }
    }
}
