#if canImport(Glibc)
import Glibc
#endif

/// Loading a file's committed state from its FD: header, keys, recovery of an interrupted commit,
/// sidecar, length check (Keys/README.md §5–§7). Shared by `openFile` and `verify`.
struct FileState {
    var header: FileHeader
    var keys: FileKeys
    var sidecar: Sidecar
    /// Actual ciphertext file length (may exceed the expected length: uncommitted tail).
    var fileLength: UInt64

    var layout: ChunkLayout { ChunkLayout(chunkSize: header.chunkSize, suite: header.suite) }

    static func load(store: SealedStore, fd: Int32) throws -> FileState {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SealedStoreError.io("fstat", errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw SealedStoreError.invalidArgument("not a regular file") }
        var (header, keys) = try readHeader(store: store, fd: fd)
        if let moved = try recover(store: store, fd: fd, header: header, keys: keys) { (header, keys) = moved }
        let sidecar = try readSidecar(store: store, header: header, keys: keys)
        if !sidecar.previousFileID.isZero {
            // Leftovers of a completed move to a fresh ID (§5.3); harmless if already gone.
            try store.removeMetadata(sidecar.previousFileID)
        }
        let length = try fileSize(fd: fd)
        let layout = ChunkLayout(chunkSize: header.chunkSize, suite: header.suite)
        let expected = layout.fileLength(size: sidecar.committedSize)
        if length < expected {
            let firstShort = length <= UInt64(FileHeader.length) ? 0 : (length - UInt64(FileHeader.length)) / UInt64(layout.slotSize)
            throw SealedStoreError.damaged(Damage(.truncated, fileID: header.fileID, chunk: firstShort,
                                                  detail: "file is \(length) bytes, committed size \(sidecar.committedSize) needs \(expected)"))
        }
        return FileState(header: header, keys: keys, sidecar: sidecar, fileLength: length)
    }

    static func readHeader(store: SealedStore, fd: Int32) throws -> (FileHeader, FileKeys) {
        let bytes = try readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")
        guard let header = FileHeader.parseFields(bytes) else {
            throw SealedStoreError.damaged(Damage(.header, detail: bytes.count < FileHeader.length ? "file shorter than a header" : "malformed header"))
        }
        guard let master = store.keyring.masterKey(epoch: header.epoch) else {
            throw SealedStoreError.damaged(Damage(.unknownEpoch, fileID: header.fileID, detail: "epoch \(header.epoch) is not in the keyring"))
        }
        let keys = FileKeys(master: master, epoch: header.epoch, fileID: header.fileID)
        guard FileHeader.verifyMAC(bytes, keys: keys) else {
            throw SealedStoreError.damaged(Damage(.header, fileID: header.fileID, detail: "header authentication failed"))
        }
        return (header, keys)
    }

    static func readSidecar(store: SealedStore, header: FileHeader, keys: FileKeys) throws -> Sidecar {
        let id = header.fileID
        guard let bytes = try store.layout.readSidecar(id) else {
            throw SealedStoreError.damaged(Damage(.missingSidecar, fileID: id, detail: "no sidecar for this file"))
        }
        guard let sc = Sidecar.parseFields(bytes), Sidecar.verifyMAC(bytes, keys: keys) else {
            throw SealedStoreError.damaged(Damage(.sidecar, fileID: id, detail: "sidecar authentication failed"))
        }
        guard sc.matches(header) else {
            throw SealedStoreError.damaged(Damage(.sidecarMismatch, fileID: id, detail: "sidecar does not match the header"))
        }
        return sc
    }

    /// Replays a complete journal of `header.fileID` (idempotent) or discards a partial one.
    /// Returns the new header and keys when the replayed commit moved the file to a fresh ID.
    static func recover(store: SealedStore, fd: Int32, header: FileHeader, keys: FileKeys) throws -> (FileHeader, FileKeys)? {
        let jdir = store.layout.journalFD
        let name = StoreLayout.journalName(header.fileID)
        unlinkat(jdir, name + ".tmp", 0)   // never reached its commit point
        guard let bytes = try readFileAt(jdir, name, limit: 1 << 31) else { return nil }
        let maxSlot = ChunkLayout(chunkSize: header.chunkSize, suite: .xchacha20poly1305).slotSize
        guard let journal = Journal.parse(bytes, keys: keys, maxSlot: maxSlot),
              let newSC = Sidecar.parseFields(journal.newSidecar) else {
            throw SealedStoreError.damaged(Damage(.journal, fileID: header.fileID, detail: "journal authentication failed"))
        }
        var newHeader = header, newKeys = keys
        if journal.movesToFreshID {
            guard let h = FileHeader.parseFields(journal.newHeader), h.fileID == newSC.fileID,
                  let master = store.keyring.masterKey(epoch: h.epoch) else {
                throw SealedStoreError.damaged(Damage(.journal, fileID: header.fileID, detail: "journal's new header is invalid"))
            }
            newHeader = h
            newKeys = FileKeys(master: master, epoch: h.epoch, fileID: h.fileID)
            guard FileHeader.verifyMAC(journal.newHeader, keys: newKeys) else {
                throw SealedStoreError.damaged(Damage(.journal, fileID: header.fileID, detail: "journal's new header is invalid"))
            }
        } else if newSC.fileID != header.fileID {
            throw SealedStoreError.damaged(Damage(.journal, fileID: header.fileID, detail: "journal names another file"))
        }
        guard Sidecar.verifyMAC(journal.newSidecar, keys: newKeys), newSC.matches(newHeader) else {
            throw SealedStoreError.damaged(Damage(.journal, fileID: header.fileID, detail: "journal's sidecar is invalid"))
        }
        let layout = ChunkLayout(chunkSize: newHeader.chunkSize, suite: newHeader.suite)
        let n = layout.chunkCount(size: newSC.committedSize)
        for e in journal.entries {
            guard e.index < n, e.slot.count == layout.overhead + layout.plaintextLength(index: e.index, size: newSC.committedSize) else {
                throw SealedStoreError.damaged(Damage(.journal, fileID: header.fileID, detail: "journal entry does not fit"))
            }
        }
        if !journal.movesToFreshID, let current = try? readSidecar(store: store, header: header, keys: keys),
           current.generation >= newSC.generation {
            try store.layout.removeJournal(header.fileID)   // already applied
            return nil
        }
        try applyJournal(store: store, fd: fd, journal: journal, layout: layout, newSC: newSC, sync: true, syncDirectory: true)
        return journal.movesToFreshID ? (newHeader, newKeys) : nil
    }

    /// Steps 4–6 of a commit (Keys/README.md §7). Shared by commit and recovery.
    static func applyJournal(store: SealedStore, fd: Int32, journal: Journal, layout: ChunkLayout, newSC: Sidecar,
                             sync: Bool, syncDirectory: Bool) throws {
        for e in journal.entries {
            try writeAll(fd: fd, e.slot, offset: layout.slotOffset(e.index), what: "write chunk \(e.index)")
        }
        if sync { try dataSyncFD(fd, what: "data file") }
        try TestHooks.step(.chunksApplied)
        try store.layout.writeSidecar(newSC.fileID, journal.newSidecar, sync: sync, syncDirectory: syncDirectory)
        try TestHooks.step(.sidecarWritten)
        if journal.movesToFreshID {
            try writeAll(fd: fd, journal.newHeader, offset: 0, what: "write header")
            if sync { try dataSyncFD(fd, what: "data file") }
            try TestHooks.step(.headerWritten)
        }
        try store.layout.removeJournal(journal.fileID)
        if journal.movesToFreshID { try store.layout.removeSidecar(journal.fileID) }
        try trim(fd: fd, to: layout.fileLength(size: newSC.committedSize))
    }

    static func trim(fd: Int32, to length: UInt64) throws {
        if try fileSize(fd: fd) > length {
            guard ftruncate(fd, off_t(length)) == 0 else { throw SealedStoreError.io("ftruncate", errno) }
        }
    }
}
