#if canImport(Glibc)
import Glibc
#endif
import CSodium
import Foundation

/// Moves one ciphertext file to a fresh file ID under the rotation's target epoch: every chunk
/// decrypted with the old file key and sealed under the new one with a fresh nonce. This is the
/// format's "move to a fresh ID" commit (Keys/README.md §5.3, §7), written straight from the
/// ciphertext into one journal buffer instead of going through `SealedFile.commit`:
///
/// * the journal is byte for byte what `SealedFile`'s own move writes, so crash recovery is the
///   store's ordinary `FileState.recover` (replayed by any later open, by `verify`, by a rerun);
/// * the chunks are decrypted and sealed in one pass on up to `parallelism` threads, and the
///   journal's slots are written in place with `pwritev` straight out of the journal buffer.
///
/// Memory: the file's ciphertext plus its journal (≈ 2 × the file). A file whose journal would
/// exceed what recovery reads back (2 GiB) is refused rather than written unrecoverably.
struct FileMover {
    let store: SealedStore
    let targetEpoch: UInt32
    let targetMaster: SecretBytes
    /// Per-file power-loss safety: fsync the journal (and its directory) before overwriting any
    /// chunk in place, the data before the sidecar, the sidecar before the header. Without it
    /// a move is atomic against process death only and the caller syncs the filesystem at the end.
    let syncs: Bool
    let parallelism: Int

    /// `FileState.recover` reads a journal with `readFileAt(limit: 1 << 31)`.
    static let maxJournalLength: UInt64 = 1 << 31

    enum Outcome {
        /// Moved; plaintext bytes re-encrypted.
        case moved(UInt64)
        /// Already under the target epoch (moved by an earlier, interrupted run). Bytes: 0 when
        /// decided from the header alone.
        case alreadyCurrent(UInt64)
    }

    /// `fd`: the data file, opened read-write. Recovers an interrupted commit first (as every open).
    /// `buffers`: one per worker thread, reused from file to file.
    func move(fd: Int32, buffers: MoveBuffers = MoveBuffers()) throws -> Outcome {
        // Fast path for a rerun: a header already naming the target epoch was written by an earlier
        // run's move (its last step but the cleanup, which the next authenticated open does), so
        // the file is skipped without deriving keys or authenticating. Without this a rerun would
        // spend its time re-opening every file already moved, and frequent kills could starve it.
        // (A forged epoch field only makes a damaged file look done; verify and --retire open
        // every file authenticated.)
        let first = try readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")
        if let header = FileHeader.parseFields(first), header.epoch == targetEpoch { return .alreadyCurrent(0) }
        let state = try FileState.load(store: store, fd: fd)
        let size = state.sidecar.committedSize
        if state.header.epoch == targetEpoch { return .alreadyCurrent(size) }

        let layout = state.layout
        let n = layout.chunkCount(size: size)
        let fullEntry = UInt64(12 + layout.slotSize)
        let lastSlot = n == 0 ? 0 : UInt64(layout.overhead + layout.plaintextLength(index: n - 1, size: size))
        let (entriesLength, overflow) = n == 0 ? (0, false) : (n - 1).multipliedReportingOverflow(by: fullEntry)
        let journalLength64 = UInt64(Journal.fixedLength) + entriesLength + (n == 0 ? 0 : 12 + lastSlot) + 32
        guard !overflow, journalLength64 <= FileMover.maxJournalLength else {
            throw SealedStoreError.invalidArgument("file of \(size) bytes is too large to move atomically "
                                                   + "(its journal would exceed \(FileMover.maxJournalLength) bytes)")
        }
        let journalLength = Int(journalLength64)
        let chunks = Int(n)
        let dataLength = Int(layout.fileLength(size: size)) - FileHeader.length

        // The committed ciphertext (an uncommitted tail beyond it is ignored, as readers do).
        let data = buffers.ciphertext(dataLength)
        let got = try readUpTo(fd: fd, UnsafeMutableRawBufferPointer(rebasing: data[0..<dataLength]),
                               offset: UInt64(FileHeader.length), what: "read chunks")
        guard got == dataLength else {
            throw SealedStoreError.damaged(Damage(.truncated, fileID: state.header.fileID, detail: "file shrank while being read"))
        }

        let oldID = state.header.fileID
        let newID = FileID.random()
        let newKeys = FileKeys(master: targetMaster, epoch: targetEpoch, fileID: newID)
        let newHeader = FileHeader(suite: state.header.suite, chunkSize: state.header.chunkSize, epoch: targetEpoch, fileID: newID)
        let newSidecar = Sidecar(suite: state.header.suite, chunkSize: state.header.chunkSize, epoch: targetEpoch, fileID: newID,
                                 committedSize: size, generation: state.sidecar.generation + 1, encryptions: n,
                                 previousFileID: oldID)
        let newHeaderBytes = newHeader.serialize(keys: newKeys)
        let newSidecarBytes = newSidecar.serialize(keys: newKeys)

        let journal = buffers.journal(journalLength)
        defer { buffers.release() }
        var fixed = ByteWriter(capacity: Journal.fixedLength)
        fixed.raw(Journal.magic); fixed.u16(1); fixed.u16(1)   // flags bit 0: move to a fresh ID
        fixed.raw(oldID.bytes); fixed.raw(newSidecarBytes); fixed.raw(newHeaderBytes)
        fixed.u32(UInt32(chunks))
        fixed.bytes.withUnsafeBytes { journal.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: Journal.fixedLength) }

        let oldCodec = ChunkCodec(layout: layout, keys: state.keys, headerFields: state.header.fields)
        let newCodec = ChunkCodec(layout: layout, keys: newKeys, headerFields: newHeader.fields)
        if let bad = resealAndMAC(chunks: chunks, size: size, layout: layout, data: UnsafeRawBufferPointer(data),
                                  journal: journal, from: oldCodec, to: newCodec, macKey: state.keys.journal) {
            throw SealedStoreError.damaged(Damage(.chunk, fileID: oldID, chunk: UInt64(bad), detail: "chunk authentication failed"))
        }

        // §7 step 3: the commit point.
        try writeJournal(UnsafeRawBufferPointer(journal), id: oldID)
        try RotationTestHooks.step(.journalWritten)
        // Steps 4–6, in the order of FileState.applyJournal.
        try writeSlots(fd: fd, journal: UnsafeRawBufferPointer(journal), chunks: chunks, size: size, layout: layout)
        if syncs { try dataSyncFD(fd, what: "data file") }
        try RotationTestHooks.step(.chunksApplied)
        try store.layout.writeSidecar(newID, newSidecarBytes, sync: syncs, syncDirectory: syncs)
        try RotationTestHooks.step(.sidecarWritten)
        try writeAll(fd: fd, newHeaderBytes, offset: 0, what: "write header")
        if syncs { try dataSyncFD(fd, what: "data file") }
        try RotationTestHooks.step(.headerWritten)
        // The journal and the old sidecar (their `.tmp` siblings cannot exist here: the journal's was
        // renamed by this move; the store's removeJournal/removeSidecar would unlink them too).
        try unlinkIfPresent(store.layout.journalFD, StoreLayout.journalName(oldID))
        try unlinkIfPresent(try store.layout.sidecarDirectory(oldID), StoreLayout.sidecarName(oldID))
        try FileState.trim(fd: fd, to: layout.fileLength(size: size))
        return .moved(size)
    }

    /// Decrypts every chunk slot of `data` and seals it into its journal entry
    /// (`u64 index ‖ u32 length ‖ slot`), then MACs the journal with `macKey` into its last 32 bytes.
    /// Returns the first chunk that failed authentication (nothing is MACed then).
    ///
    /// Chunks go in batches of `batchChunks`: while batch b+1 is being re-encrypted on up to
    /// `parallelism` threads, batch b is fed to the (sequential) BLAKE2b MAC on another thread, so
    /// the MAC — as costly per byte as the two AEAD passes together — overlaps them.
    private func resealAndMAC(chunks: Int, size: UInt64, layout: ChunkLayout, data: UnsafeRawBufferPointer,
                              journal: UnsafeMutableRawBufferPointer, from old: ChunkCodec, to new: ChunkCodec,
                              macKey: SecretBytes) -> Int? {
        let entryLength = 12 + layout.slotSize
        func entryStart(_ k: Int) -> Int { k == chunks ? journal.count - 32 : Journal.fixedLength + k * entryLength }
        let mac = JournalMAC(key: macKey)
        mac.update(UnsafeRawBufferPointer(rebasing: journal[0..<Journal.fixedLength]))
        let hashing = DispatchQueue(label: "sealgofer.rotate.journal-mac")
        let pending = DispatchGroup()
        let workers = chunks >= 8 ? max(1, min(parallelism, chunks / 4)) : 1
        let firstBad = UnsafeMutableBufferPointer<Int>.allocate(capacity: workers)
        defer { firstBad.deallocate() }
        var batch = 0
        while batch < chunks {
            let end = min(chunks, batch + FileMover.batchChunks)
            let lower = batch
            firstBad.initialize(repeating: Int.max)
            let work = { (w: Int) in
                // Plaintext exists only in this buffer, wiped before it is freed.
                let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: layout.chunkSize, alignment: 16)
                defer { wipeBytes(plain); plain.deallocate() }
                var k = lower + w
                while k < end {
                    let length = layout.plaintextLength(index: UInt64(k), size: size)
                    let slotLength = length + layout.overhead
                    let source = UnsafeRawBufferPointer(rebasing: data[(k * layout.slotSize)..<(k * layout.slotSize + slotLength)])
                    let out = UnsafeMutableRawBufferPointer(rebasing: plain[0..<length])
                    guard old.open(index: UInt64(k), slot: source, into: out) else { firstBad[w] = min(firstBad[w], k); return }
                    let entry = entryStart(k)
                    journal.storeBytes(of: UInt64(k).littleEndian, toByteOffset: entry, as: UInt64.self)
                    journal.storeBytes(of: UInt32(slotLength).littleEndian, toByteOffset: entry + 8, as: UInt32.self)
                    new.seal(index: UInt64(k), plaintext: UnsafeRawBufferPointer(out),
                             into: UnsafeMutableRawBufferPointer(rebasing: journal[(entry + 12)..<(entry + 12 + slotLength)]))
                    k += workers
                }
            }
            let threads = min(workers, end - lower)
            if threads > 1 { DispatchQueue.concurrentPerform(iterations: threads, execute: work) } else { work(0) }
            if let bad = firstBad.prefix(threads).min(), bad != Int.max {
                pending.wait()
                return bad
            }
            let piece = SendableBytes(UnsafeRawBufferPointer(rebasing: journal[entryStart(lower)..<entryStart(end)]))
            if end == chunks {
                pending.wait()
                mac.update(piece.bytes)   // the last (for most files the only) batch: no thread hand-off
            } else {
                hashing.async(group: pending) { mac.update(piece.bytes) }
            }
            batch = end
        }
        pending.wait()
        mac.finish(into: UnsafeMutableRawBufferPointer(rebasing: journal[(journal.count - 32)...]))
        return nil
    }

    /// Chunks per pipeline batch (2 MiB at the default chunk size).
    static let batchChunks = 32

    private func unlinkIfPresent(_ dir: Int32, _ name: String) throws {
        if unlinkat(dir, name, 0) != 0 && errno != ENOENT { throw SealedStoreError.io("remove \(name)", errno) }
    }

    /// `<old id>.j.tmp`, (fdatasync), rename to `<old id>.j`, (fsync meta/journal).
    private func writeJournal(_ bytes: UnsafeRawBufferPointer, id: FileID) throws {
        let dir = store.layout.journalFD
        let name = StoreLayout.journalName(id), tmp = name + ".tmp"
        let fd = openAt(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw SealedStoreError.io("create \(tmp)", errno) }
        do {
            try writeAll(fd: fd, bytes, offset: 0, what: "write \(tmp)")
            if syncs { try dataSyncFD(fd, what: tmp) }
        } catch {
            close(fd); unlinkat(dir, tmp, 0); throw error
        }
        close(fd)
        guard renameat(dir, tmp, dir, name) == 0 else {
            let e = errno; unlinkat(dir, tmp, 0); throw SealedStoreError.io("rename \(tmp)", e)
        }
        if syncs { try syncFD(dir, what: "meta/journal") }
    }

    /// Writes every journal slot at its place in the data file: `pwritev` over runs of slots
    /// (the 12-byte entry headers between them are skipped), falling back to `pwrite` per slot.
    private func writeSlots(fd: Int32, journal: UnsafeRawBufferPointer, chunks: Int, size: UInt64, layout: ChunkLayout) throws {
        let batch = 512
        var first = 0
        var vectors = [iovec](repeating: iovec(), count: batch)
        while first < chunks {
            let end = min(chunks, first + batch)
            var total = 0
            for k in first..<end {
                let slotLength = layout.plaintextLength(index: UInt64(k), size: size) + layout.overhead
                let entry = Journal.fixedLength + k * (12 + layout.slotSize)
                vectors[k - first] = iovec(iov_base: UnsafeMutableRawPointer(mutating: journal.baseAddress! + entry + 12), iov_len: slotLength)
                total += slotLength
            }
            let offset = layout.slotOffset(UInt64(first))
            let written = vectors.withUnsafeBufferPointer { pwritev(fd, $0.baseAddress!, Int32(end - first), off_t(offset)) }
            if written != total {
                if written < 0 && errno != EINTR { throw SealedStoreError.io("write chunks", errno) }
                for k in first..<end {   // short or interrupted: rewrite this run slot by slot (idempotent)
                    let v = vectors[k - first]
                    try writeAll(fd: fd, UnsafeRawBufferPointer(start: v.iov_base, count: v.iov_len),
                                 offset: layout.slotOffset(UInt64(k)), what: "write chunk \(k)")
                }
            }
            first = end
        }
    }
}

/// The two large buffers of a move (the file's ciphertext, its journal), kept by one worker from
/// file to file: a fresh multi-megabyte allocation per file costs page faults and page clearing
/// comparable to the encryption itself. Buffers above `keepLimit` are freed after each file.
final class MoveBuffers {
    static let keepLimit = 64 << 20
    private var kept: [UnsafeMutableRawBufferPointer] = [UnsafeMutableRawBufferPointer(start: nil, count: 0),
                                                         UnsafeMutableRawBufferPointer(start: nil, count: 0)]

    /// At least `count` bytes (valid until `release`).
    func ciphertext(_ count: Int) -> UnsafeMutableRawBufferPointer { buffer(0, count) }
    func journal(_ count: Int) -> UnsafeMutableRawBufferPointer { buffer(1, count) }

    private func buffer(_ slot: Int, _ count: Int) -> UnsafeMutableRawBufferPointer {
        if kept[slot].count < count {
            kept[slot].baseAddress.map { $0.deallocate() }
            kept[slot] = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 4096), alignment: 64)
        }
        return UnsafeMutableRawBufferPointer(rebasing: kept[slot][0..<count])
    }

    /// Frees oversized buffers (a rare huge file must not pin its memory for the whole run).
    func release() {
        for slot in 0..<kept.count where kept[slot].count > MoveBuffers.keepLimit {
            kept[slot].baseAddress!.deallocate()
            kept[slot] = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        }
    }

    deinit { for b in kept { b.baseAddress.map { $0.deallocate() } } }
}

/// Incremental keyed BLAKE2b-256 (`H(key, msg)` of Keys/README.md, fed in pieces): the journal MAC.
final class JournalMAC: @unchecked Sendable {
    private let state: UnsafeMutableRawPointer

    init(key: SecretBytes) {
        state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        key.withBytes { k in
            _ = crypto_generichash_init(OpaquePointer(state), k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count, 32)
        }
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        _ = crypto_generichash_update(OpaquePointer(state), bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    func finish(into out: UnsafeMutableRawBufferPointer) {
        _ = crypto_generichash_final(OpaquePointer(state), out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32)
    }

    deinit {
        sodium_memzero(state, crypto_generichash_statebytes())
        state.deallocate()
    }
}

/// A borrowed byte range handed to the MAC thread; the caller keeps it alive until `pending.wait()`.
struct SendableBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}
