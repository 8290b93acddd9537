#if canImport(Glibc)
import Glibc
#endif

/// Intent records of namespace operations in flight, in meta/pending (Keys/README.md §7.1).
/// Each entry is named `<file ID hex>.<kind>`; the file ID names the metadata at stake.
///
/// * `.new`     a file being created: its inode, header (and, for import, chunks) complete, not yet
///              linked under data/ (or linked, and this entry not yet removed). Link count 1 means
///              it never reached data/.
/// * `.unlink`  an extra hard link to a file one of whose names is being removed: it keeps the inode
///              reachable, so its link count tells afterwards whether any name under data/ is left.
/// * `.gone`    an empty file: the file's last name is gone but it is still open; its metadata goes
///              when it is closed (or at the next open of the store, after a crash).
/// * `.unlinking`  an empty file: like `.unlink` where no hard link could be made (EPERM on a
///              set-ID file without CAP_FOWNER, EMLINK); recovery must look for the ID under data/.
enum PendingKind: String, CaseIterable {
    case new, unlink, gone, unlinking

    static func parse(_ name: String) -> (FileID, PendingKind)? {
        guard let dot = name.firstIndex(of: "."), let id = FileID(hex: String(name[..<dot])),
              let kind = PendingKind(rawValue: String(name[name.index(after: dot)...])) else { return nil }
        return (id, kind)
    }

    func name(_ id: FileID) -> String { id.hex + "." + rawValue }
}

extension StoreLayout {
    /// Creates an empty record `<id>.<kind>` (idempotent).
    func createRecord(_ id: FileID, _ kind: PendingKind) throws {
        let fd = openAt(pendingFD, kind.name(id), O_WRONLY | O_CREAT, 0o600)
        guard fd >= 0 else { throw SealedStoreError.io("create meta/pending/\(kind.name(id))", errno) }
        close(fd)
    }

    func removeRecord(_ id: FileID, _ kind: PendingKind) throws {
        if unlinkat(pendingFD, kind.name(id), 0) != 0 && errno != ENOENT {
            throw SealedStoreError.io("remove meta/pending/\(kind.name(id))", errno)
        }
    }

    /// Link count of a pending entry (nil if it is absent or not a regular file).
    func pendingLinkCount(_ name: String) -> UInt64? {
        var st = stat()
        guard fstatat(pendingFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return UInt64(st.st_nlink)
    }

    /// Every file ID whose metadata belongs to the file that had ID `id`: the ID itself, the target
    /// of an interrupted move to a fresh ID (from its journal) and the ID it moved from (its
    /// sidecar's previous ID, whose leftovers a completed move removes lazily). Unauthenticated on
    /// purpose: it only widens what a removal deletes, and only to IDs this file's own records name.
    func relatedIDs(_ id: FileID) -> [FileID] {
        var out = [id]
        var i = 0
        while i < out.count && out.count < 8 {
            let current = out[i]
            i += 1
            if let j = try? readPrefix(journalFD, StoreLayout.journalName(current), count: Journal.fixedLength),
               let target = Journal.peekMoveTarget(j), !out.contains(target) {
                out.append(target)
            }
            if let dir = try? sidecarDirectory(current),
               let s = try? readPrefix(dir, StoreLayout.sidecarName(current), count: Sidecar.length),
               let sc = Sidecar.parseFields(s), !sc.previousFileID.isZero, !out.contains(sc.previousFileID) {
                out.append(sc.previousFileID)
            }
        }
        return out
    }

    /// Removes the journal and sidecar of `id` and of every related ID (a file whose last name is gone).
    func removeAllMetadata(_ id: FileID) throws {
        for r in relatedIDs(id) {
            try removeJournal(r)
            try removeSidecar(r)
        }
    }

    private func readPrefix(_ dir: Int32, _ name: String, count: Int) throws -> [UInt8]? {
        let fd = openAt(dir, name, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return try readBytes(fd: fd, count: count, offset: 0, what: "read \(name)")
    }
}

extension Journal {
    /// The new file ID of a move to a fresh ID, from the journal's fixed part, unauthenticated.
    static func peekMoveTarget(_ bytes: [UInt8]) -> FileID? {
        guard bytes.count >= fixedLength, Array(bytes[0..<4]) == magic, bytes[6] & 1 == 1 else { return nil }
        let sc = 24
        return FileID(bytes: Array(bytes[(sc + 16)..<(sc + 32)]))
    }
}

/// What `SealedStore.open` does with meta/pending before anything else (Keys/README.md §7.1):
/// every entry is resolved and removed, so the store is in the state of each operation either
/// not begun or complete. O(entries): data/ is scanned only for `.unlinking` records.
enum PendingRecovery {
    struct Result { var resolved = 0; var unresolved: [String] = [] }

    static func run(layout: StoreLayout) -> Result {
        var result = Result()
        var searched: [FileID] = []
        for (name, _) in ((try? listDirectory(layout.pendingFD)) ?? []).sorted(by: { $0.name < $1.name }) {
            guard let (id, kind) = PendingKind.parse(name) else { result.unresolved.append(name); continue }
            do {
                switch kind {
                case .new:
                    // Never linked under data/: the create did not happen; drop its sidecar.
                    if let n = layout.pendingLinkCount(name), n <= 1 { try layout.removeAllMetadata(id) }
                case .unlink:
                    if let n = layout.pendingLinkCount(name), n <= 1 {
                        // The inode survives only through this entry: the file lost its last name.
                        // Its header may name a newer ID if a move ran during the removal.
                        try layout.removeAllMetadata(id)
                        if let h = headerID(layout.pendingFD, name), h != id { try layout.removeAllMetadata(h) }
                    }
                case .gone:
                    try layout.removeAllMetadata(id)
                case .unlinking:
                    searched.append(id)
                    continue
                }
                guard unlinkat(layout.pendingFD, name, 0) == 0 || errno == ENOENT else {
                    throw SealedStoreError.io("remove meta/pending/\(name)", errno)
                }
                result.resolved += 1
            } catch {
                result.unresolved.append(name)
            }
        }
        if !searched.isEmpty {
            let live = liveIDs(layout: layout)
            for id in searched {
                do {
                    if !live.contains(id) { try layout.removeAllMetadata(id) }
                    try layout.removeRecord(id, .unlinking)
                    result.resolved += 1
                } catch {
                    result.unresolved.append(PendingKind.unlinking.name(id))
                }
            }
        }
        return result
    }

    /// The (unauthenticated) header file ID of `dir/name`.
    static func headerID(_ dir: Int32, _ name: String) -> FileID? { headerID(dir, Array(name.utf8)) }

    static func headerID(_ dir: Int32, _ name: [UInt8]) -> FileID? {
        let fd = openAt(dir, rawName: name, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return (try? readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")).flatMap(FileHeader.parseFields)?.fileID
    }

    /// Every file ID some data file under data/ still owns (header IDs and their related IDs).
    /// The one full scan recovery may need, and only for `.unlinking` records.
    static func liveIDs(layout: StoreLayout) -> Set<FileID> {
        var out = Set<FileID>()
        func walk(_ dir: Int32) {
            for name in (try? listDirectoryNames(dir)) ?? [] {   // bytes: names need not be UTF-8
                guard let st = statAt(dir, rawName: name) else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    let sub = openAt(dir, rawName: name, O_RDONLY | O_DIRECTORY)
                    if sub >= 0 { walk(sub); close(sub) }
                case S_IFREG:
                    if let id = headerID(dir, name) { out.formUnion(layout.relatedIDs(id)) }
                default: break
                }
            }
        }
        walk(layout.dataFD)
        return out
    }
}
