#if canImport(Glibc)
import Glibc
#endif

/// Moves one ciphertext file to a fresh file ID by writing the new file beside it and renaming
/// it over the old name (Keys/README.md §10.2). The new ciphertext is written once, straight into
/// the new inode; no journal holds it and nothing is MACed beyond what the format already
/// authenticates (header, chunks, sidecar). Crash safety comes from the intent records of §7.1,
/// which every open of the store resolves:
///
/// * **stage** — `pending/<new>.new` (header and every re-encrypted chunk, then owner, mode and
///   times of the old file), the new sidecar (created exclusively, previous ID zero), and a hard
///   link `pending/<old>.unlink` to the old file. Killed here, recovery drops the new file and
///   its sidecar (`.new`, link count 1) and the `.unlink` entry (link count 2): as before.
/// * **switch** — `renameat(pending/<new>.new → dir/name)`, the commit point. From here the name
///   reads as the new file; killed here, recovery sees the old file only in `.unlink` (link count
///   1) and removes its metadata: as after.
/// * **finish** — the old sidecar, then the `.unlink` entry (what recovery would do), or the
///   entry is kept as a spare (`SpareInodes`) whose pages a later stage overwrites.
///
/// A caller makes each stage durable for a whole batch with one `syncfs` (`RotationRun`): every
/// staged file before any switch, every switch before any finish. A file with several names
/// (hard links) cannot be replaced by a rename; `stage` returns nil for it and for a file whose
/// owner this process cannot reproduce, `switchName` fails with EACCES/EPERM in a directory it
/// may not write to, and the caller moves such files with `JournaledMover` instead.
struct ReplacingMover {
    let store: SealedStore
    let targetEpoch: UInt32
    let targetMaster: SecretBytes
    /// Owner and group a file created in meta/pending gets: `fchown` only when the old file differs.
    let stagedOwner: uid_t
    let stagedGroup: gid_t

    init(store: SealedStore, targetEpoch: UInt32, targetMaster: SecretBytes) {
        self.store = store; self.targetEpoch = targetEpoch; self.targetMaster = targetMaster
        var st = stat()
        let setgid = fstat(store.layout.pendingFD, &st) == 0 && st.st_mode & S_ISGID != 0
        stagedOwner = geteuid()
        stagedGroup = setgid ? st.st_gid : getegid()
    }

    /// Writes the replacement of the file open as `fd` (state loaded, `st` its fstat) and links the
    /// old file as `.unlink`. Nil: the file needs the journaled move (nothing is left behind).
    /// The caller keeps `fd`; `directory`/`name` must stay valid until `switchName`. The new file
    /// is a spare inode from `spares` when there is one (its pages exist; on tmpfs overwritten
    /// through a mapping), else a fresh file written with pwrite.
    func stage(fd: Int32, state: FileState, stat st: stat, directory: Int32, name: String,
               buffers: ResealBuffers, spares: SpareInodes? = nil) throws -> StagedMove? {
        let size = state.sidecar.committedSize
        let layout = state.layout
        let n = Int(layout.chunkCount(size: size))
        let oldID = state.header.fileID
        let newID = FileID.random()
        let newKeys = FileKeys(master: targetMaster, epoch: targetEpoch, fileID: newID)
        let newHeader = FileHeader(suite: state.header.suite, chunkSize: state.header.chunkSize, epoch: targetEpoch, fileID: newID)
        let newSidecar = Sidecar(suite: state.header.suite, chunkSize: state.header.chunkSize, epoch: targetEpoch, fileID: newID,
                                 committedSize: size, generation: state.sidecar.generation + 1, encryptions: UInt64(n),
                                 // Zero, not the old ID: recovery of a `.new` entry removes the metadata of
                                 // every ID its sidecar names, and the old file must keep its sidecar.
                                 previousFileID: .zero)
        let move = StagedMove(oldID: oldID, newID: newID, directory: directory, name: name, size: size,
                              oldLength: state.fileLength, oldOwner: st.st_uid, oldGroup: st.st_gid)
        let pending = store.layout.pendingFD
        let newLength = layout.fileLength(size: size)
        let out: Int32
        var reused = false
        var target: MappedWindow? = nil
        var carried: InodeMapping? = nil   // the spare's pages, mapped when it was read as an old file
        if let spare = try spares?.take(as: move.stagedName, length: newLength) {
            out = spare.fd
            reused = true
            if spare.mappable && newLength >= UInt64(MappedWindow.minimumBytes) {
                carried = spare.mapping
                if carried == nil { target = MappedWindow(fd: out, fileLength: newLength, writable: true) }
            }
        } else {
            // Not mapped: the first write through a mapping would allocate and zero each fresh
            // page before the chunks are sealed into it; pwrite's copy into new pages costs less.
            out = openAt(pending, move.stagedName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard out >= 0 else { throw SealedStoreError.io("create meta/pending/\(move.stagedName)", errno) }
        }
        var outOpen = true
        var progress = StagedMove.Progress.created
        do {
            if reused { try RotationTestHooks.step(.reusedSpare) }
            defer { buffers.wipePlaintext() }
            let oldCodec = ChunkCodec(layout: layout, keys: state.keys, headerFields: state.header.fields)
            let newCodec = ChunkCodec(layout: layout, keys: newKeys, headerFields: newHeader.fields)
            newHeader.serialize(keys: newKeys).withUnsafeBytes {
                buffers.output.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: FileHeader.length)
            }
            let source = MappedWindow(fd: fd, fileLength: state.fileLength)
            // On tmpfs a whole old file is mapped once, writable, so that its pages can be written
            // through the same mapping when it has become a spare (never while it is a data file).
            if spares?.carriesMappings == true && state.fileLength >= UInt64(MappedWindow.minimumBytes) {
                move.oldMapping = InodeMapping(fd: fd, length: state.fileLength)
            }
            var first = 0
            repeat {
                let count = min(buffers.segmentChunks, n - first)
                let bytes = count == 0 ? 0
                    : (count - 1) * layout.slotSize + layout.overhead + layout.plaintextLength(index: UInt64(first + count - 1), size: size)
                // The first segment carries the header: written from offset 0.
                let headerRoom = first == 0 ? FileHeader.length : 0
                let offset = layout.slotOffset(UInt64(first))
                let mapped = carried?.bytes(offset: offset - UInt64(headerRoom), count: headerRoom + bytes)
                    ?? target?.writableWindow(offset: offset - UInt64(headerRoom), count: headerRoom + bytes)
                if first == 0, let mapped {
                    mapped.baseAddress!.copyMemory(from: buffers.output.baseAddress!, byteCount: FileHeader.length)
                }
                if bytes > 0 {
                    let input: UnsafeRawBufferPointer
                    if let whole = move.oldMapping {
                        input = UnsafeRawBufferPointer(whole.bytes(offset: offset, count: bytes))
                    } else if bytes >= MappedWindow.minimumBytes, let window = source.window(offset: offset, count: bytes) {
                        input = window
                    } else {
                        let got = try readUpTo(fd: fd, UnsafeMutableRawBufferPointer(rebasing: buffers.input[0..<bytes]),
                                               offset: offset, what: "read chunks")
                        guard got == bytes else {
                            throw SealedStoreError.damaged(Damage(.truncated, fileID: oldID, detail: "file shrank while being read"))
                        }
                        input = UnsafeRawBufferPointer(rebasing: buffers.input[0..<bytes])
                    }
                    let output = mapped.map { UnsafeMutableRawBufferPointer(rebasing: $0[headerRoom...]) }
                        ?? UnsafeMutableRawBufferPointer(rebasing: buffers.output[FileHeader.length...])
                    if let bad = ChunkResealer.reseal(first: first, count: count, size: size, layout: layout, input: input,
                                                      output: output, buffers: buffers, from: oldCodec, to: newCodec) {
                        throw SealedStoreError.damaged(Damage(.chunk, fileID: oldID, chunk: UInt64(bad), detail: "chunk authentication failed"))
                    }
                }
                if mapped == nil {
                    try writeAll(fd: out, UnsafeRawBufferPointer(rebasing: buffers.output[(FileHeader.length - headerRoom)..<(FileHeader.length + bytes)]),
                                 offset: offset - UInt64(headerRoom), what: "write new file")
                }
                first += count
            } while first < n
            target = nil   // unmapped: every page written is dirty in the page cache, as after pwrite
            carried = nil
            if st.st_uid != stagedOwner || st.st_gid != stagedGroup {
                guard fchown(out, st.st_uid, st.st_gid) == 0 else {
                    if errno == EPERM { close(out); outOpen = false; abandon(move, progress); return nil }
                    throw SealedStoreError.io("fchown new file", errno)
                }
            }
            // After fchown, which clears set-ID bits.
            guard fchmod(out, st.st_mode & 0o7777) == 0 else { throw SealedStoreError.io("fchmod new file", errno) }
            var t = times(of: st)
            guard futimens(out, &t) == 0 else { throw SealedStoreError.io("set times of new file", errno) }
            close(out); outOpen = false
            try RotationTestHooks.step(.stagedFile)
            try createFileAt(try store.layout.sidecarDirectory(newID), StoreLayout.sidecarName(newID),
                             newSidecar.serialize(keys: newKeys), sync: false)
            progress = .sidecar
            try RotationTestHooks.step(.stagedSidecar)
            guard linkat(directory, name, pending, move.unlinkName, 0) == 0 else {
                let e = errno
                if e == EPERM || e == EMLINK { abandon(move, progress); return nil }
                throw SealedStoreError.io("link \(name) as meta/pending/\(move.unlinkName)", e)
            }
            progress = .linked
            try RotationTestHooks.step(.staged)
        } catch {
            if outOpen { close(out) }
            if !(error is SimulatedRotationCrash) { abandon(move, progress) }
            throw error
        }
        move.progress = progress
        return move
    }

    /// The commit point: the new file takes the old one's name.
    func switchName(_ m: StagedMove) throws {
        guard renameat(store.layout.pendingFD, m.stagedName, m.directory, m.name) == 0 else {
            throw SealedStoreError.io("rename the new file over \(m.name)", errno)
        }
        m.progress = .switched
        try RotationTestHooks.step(.switched)
    }

    /// After the switch is durable: the old file's metadata, then its `.unlink` entry (which keeps
    /// the old inode alive until here) — or, given `spares` that take it, the entry is kept as a
    /// spare for a later move. Failures leave work the next open of the store finishes.
    func finish(_ m: StagedMove, spares: SpareInodes? = nil) {
        defer { m.oldMapping = nil }   // a spare that keeps it holds its own reference
        if let dir = try? store.layout.sidecarDirectory(m.oldID) {
            // The old inode may be reused only once its metadata is gone (§10.2).
            if unlinkat(dir, StoreLayout.sidecarName(m.oldID), 0) == 0 || errno == ENOENT,
               let spares, spares.keep(m.unlinkName, length: m.oldLength, uid: m.oldOwner, gid: m.oldGroup, mapping: m.oldMapping) {
                return
            }
        }
        unlinkat(store.layout.pendingFD, m.unlinkName, 0)
    }

    /// Undoes a stage that will not be switched (the old file is untouched).
    func abandon(_ m: StagedMove) { abandon(m, m.progress) }

    private func abandon(_ m: StagedMove, _ progress: StagedMove.Progress) {
        let pending = store.layout.pendingFD
        if progress >= .linked { unlinkat(pending, m.unlinkName, 0) }
        if progress >= .sidecar, let dir = try? store.layout.sidecarDirectory(m.newID) { unlinkat(dir, StoreLayout.sidecarName(m.newID), 0) }
        unlinkat(pending, m.stagedName, 0)
    }
}

/// One file between `ReplacingMover.stage` and `finish`.
final class StagedMove {
    enum Progress: Int, Comparable {
        case created, sidecar, linked, switched
        static func < (a: Progress, b: Progress) -> Bool { a.rawValue < b.rawValue }
    }

    let oldID: FileID
    let newID: FileID
    /// Borrowed from the worker's `BatchDirectories`, open until the batch has switched.
    let directory: Int32
    let name: String
    let size: UInt64
    /// The old file's length and owner (whether it may become a spare, `SpareInodes`).
    let oldLength: UInt64
    let oldOwner: uid_t
    let oldGroup: gid_t
    var progress = Progress.created
    /// The old file mapped whole for reading, handed to the spare it may become (`InodeMapping`).
    var oldMapping: InodeMapping?

    init(oldID: FileID, newID: FileID, directory: Int32, name: String, size: UInt64,
         oldLength: UInt64, oldOwner: uid_t, oldGroup: gid_t) {
        self.oldID = oldID; self.newID = newID; self.directory = directory; self.name = name; self.size = size
        self.oldLength = oldLength; self.oldOwner = oldOwner; self.oldGroup = oldGroup
    }

    var stagedName: String { PendingKind.new.name(newID) }
    var unlinkName: String { PendingKind.unlink.name(oldID) }
}
