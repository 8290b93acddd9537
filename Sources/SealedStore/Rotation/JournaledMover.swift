#if canImport(Glibc)
import Glibc
#endif
import CSodium
import Foundation

/// Moves one ciphertext file to a fresh file ID under the rotation's target epoch *in place*:
/// every chunk decrypted with the old file key and sealed under the new one with a fresh nonce.
/// Rotation uses it for small files (cheaper than a new inode) and for files a rename cannot
/// replace (hard links, an owner this process cannot set, an unwritable directory); every other
/// file takes `ReplacingMover`, which writes the ciphertext once instead of twice and needs no
/// MAC pass. This is the format's "move to a fresh ID" commit (Keys/README.md §5.3, §7),
/// written straight from the ciphertext into one journal buffer instead of going through
/// `SealedFile.commit`:
///
/// * the journal is byte for byte what `SealedFile`'s own move writes, so crash recovery is the
///   store's ordinary `FileState.recover` (replayed by any later open, by `verify`, by a rerun);
/// * the chunks are decrypted and sealed in one pass on up to `parallelism` threads, and the
///   journal's slots are written in place with `pwritev` straight out of the journal buffer.
///
/// A move is `prepare` (in memory), then the four steps of §7 as separate calls —
/// `commitJournal`, `applyChunksAndSidecar`, `switchHeader`, `cleanup` — so that a caller can run
/// each step for a whole batch of files and make the batch durable with one `syncfs` between
/// steps instead of several fsyncs per file (`RotationRun`). The mover itself never syncs.
///
/// Memory: the file's ciphertext plus its journal (≈ 2 × the file). A file whose journal would
/// exceed what recovery reads back (2 GiB) is refused rather than written unrecoverably.
struct JournaledMover {
    let store: SealedStore
    let targetEpoch: UInt32
    let targetMaster: SecretBytes
    let parallelism: Int

    /// `FileState.recover` reads a journal with `readFileAt(limit: 1 << 31)`.
    static let maxJournalLength: UInt64 = 1 << 31

    enum Prepared {
        case move(PreparedMove)
        /// Already under the target epoch (moved by an earlier, interrupted run). Bytes: 0 when
        /// decided from the header alone.
        case alreadyCurrent(UInt64)
    }

    /// Loads the file behind `fd` (opened read-write; recovering an interrupted commit first, as
    /// every open does) and builds its journal in `buffers`' journal `slot`. Takes ownership of
    /// `fd` when it returns `.move`; otherwise the caller still owns it.
    func prepare(fd: Int32, buffers: MoveBuffers, slot: Int) throws -> Prepared {
        // Fast path for a rerun: a header already naming the target epoch was written by an earlier
        // run's move (its last step but the cleanup, which the next authenticated open does), so
        // the file is skipped without deriving keys or authenticating. Without this a rerun would
        // spend its time re-opening every file already moved, and frequent kills could starve it.
        // (A forged epoch field only makes a damaged file look done; verify and --retire open
        // every file authenticated.)
        let first = try readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")
        if let header = FileHeader.parseFields(first), header.epoch == targetEpoch { return .alreadyCurrent(0) }
        return try prepare(fd: fd, state: try FileState.load(store: store, fd: fd), buffers: buffers, slot: slot)
    }

    /// `prepare` for a file whose state the caller loaded already (one load per file: keys,
    /// sidecar and recovery are the dearest part of a small file's move).
    func prepare(fd: Int32, state: FileState, buffers: MoveBuffers, slot: Int) throws -> Prepared {
        let size = state.sidecar.committedSize
        if state.header.epoch == targetEpoch { return .alreadyCurrent(size) }

        let layout = state.layout
        let n = layout.chunkCount(size: size)
        let fullEntry = UInt64(12 + layout.slotSize)
        let lastSlot = n == 0 ? 0 : UInt64(layout.overhead + layout.plaintextLength(index: n - 1, size: size))
        let (entriesLength, overflow) = n == 0 ? (0, false) : (n - 1).multipliedReportingOverflow(by: fullEntry)
        let journalLength64 = UInt64(Journal.fixedLength) + entriesLength + (n == 0 ? 0 : 12 + lastSlot) + 32
        guard !overflow, journalLength64 <= JournaledMover.maxJournalLength else {
            throw SealedStoreError.invalidArgument("file of \(size) bytes is too large to move atomically "
                                                   + "(its journal would exceed \(JournaledMover.maxJournalLength) bytes)")
        }
        let journalLength = Int(journalLength64)
        let chunks = Int(n)
        let dataLength = Int(layout.fileLength(size: size)) - FileHeader.length

        // The committed ciphertext (an uncommitted tail beyond it is ignored, as readers do).
        let data = buffers.ciphertext(dataLength)
        let got = try readUpTo(fd: fd, data, offset: UInt64(FileHeader.length), what: "read chunks")
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

        let journal = buffers.journal(slot: slot, journalLength)
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
        return .move(PreparedMove(fd: fd, oldID: oldID, newID: newID, layout: layout, size: size, chunks: chunks,
                                  journal: UnsafeRawBufferPointer(journal), newHeader: newHeaderBytes, newSidecar: newSidecarBytes))
    }

    /// §7 step 3, the commit point: `<old id>.j.tmp` written and renamed to `<old id>.j`. From
    /// here on the move completes even if the process dies (any later open replays it).
    func commitJournal(_ m: PreparedMove) throws {
        let dir = store.layout.journalFD
        let name = StoreLayout.journalName(m.oldID), tmp = name + ".tmp"
        let fd = openAt(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw SealedStoreError.io("create \(tmp)", errno) }
        do {
            try writeAll(fd: fd, m.journal, offset: 0, what: "write \(tmp)")
        } catch {
            close(fd); unlinkat(dir, tmp, 0); throw error
        }
        close(fd)
        guard renameat(dir, tmp, dir, name) == 0 else {
            let e = errno; unlinkat(dir, tmp, 0); throw SealedStoreError.io("rename \(tmp)", e)
        }
        try RotationTestHooks.step(.journalWritten)
    }

    /// §7 steps 4–5 (as FileState.applyJournal orders them): the chunks in place, then the new sidecar.
    func applyChunksAndSidecar(_ m: PreparedMove) throws {
        try writeSlots(fd: m.fd, journal: m.journal, chunks: m.chunks, size: m.size, layout: m.layout)
        try RotationTestHooks.step(.chunksApplied)
        try store.layout.writeSidecar(m.newID, m.newSidecar, sync: false, syncDirectory: false)
        try RotationTestHooks.step(.sidecarWritten)
    }

    /// The new header, last (§5.3): from here on the file reads under its new ID.
    func switchHeader(_ m: PreparedMove) throws {
        try writeAll(fd: m.fd, m.newHeader, offset: 0, what: "write header")
        try RotationTestHooks.step(.headerWritten)
    }

    /// §7 step 6: the journal and the old sidecar go, the file is trimmed. Their `.tmp` siblings
    /// cannot exist here (the journal's was renamed by this move), so only the names themselves
    /// are unlinked. Leftovers after a crash are removed by the next open (previous ID, §5.3).
    func cleanup(_ m: PreparedMove) throws {
        try unlinkIfPresent(store.layout.journalFD, StoreLayout.journalName(m.oldID))
        try unlinkIfPresent(try store.layout.sidecarDirectory(m.oldID), StoreLayout.sidecarName(m.oldID))
        try FileState.trim(fd: m.fd, to: m.layout.fileLength(size: m.size))
    }

    private func unlinkIfPresent(_ dir: Int32, _ name: String) throws {
        if unlinkat(dir, name, 0) != 0 && errno != ENOENT { throw SealedStoreError.io("remove \(name)", errno) }
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
            let end = min(chunks, batch + JournaledMover.batchChunks)
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
    private var data = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// One journal buffer per position in a batch.
    private var journals: [UnsafeMutableRawBufferPointer] = []

    /// At least `count` bytes for a file's ciphertext (valid until the next call).
    func ciphertext(_ count: Int) -> UnsafeMutableRawBufferPointer { MoveBuffers.ensure(&data, count) }

    /// At least `count` bytes for the journal of the `slot`-th file of a batch (valid until `release`).
    func journal(slot: Int, _ count: Int) -> UnsafeMutableRawBufferPointer {
        while journals.count <= slot { journals.append(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
        return MoveBuffers.ensure(&journals[slot], count)
    }

    private static func ensure(_ b: inout UnsafeMutableRawBufferPointer, _ count: Int) -> UnsafeMutableRawBufferPointer {
        if b.count < count {
            b.baseAddress.map { $0.deallocate() }
            b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 4096), alignment: 64)
        }
        return UnsafeMutableRawBufferPointer(rebasing: b[0..<count])
    }

    /// After a batch: frees oversized buffers (a rare huge file must not pin its memory for the
    /// whole run).
    func release() {
        if data.count > MoveBuffers.keepLimit { data.baseAddress!.deallocate(); data = UnsafeMutableRawBufferPointer(start: nil, count: 0) }
        for i in journals.indices where journals[i].count > MoveBuffers.keepLimit {
            journals[i].baseAddress!.deallocate()
            journals[i] = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        }
    }

    deinit {
        data.baseAddress.map { $0.deallocate() }
        for b in journals { b.baseAddress.map { $0.deallocate() } }
    }
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

/// A move built in memory, between `JournaledMover.prepare` and `cleanup`. Owns the file's FD.
final class PreparedMove {
    let fd: Int32
    let oldID: FileID
    let newID: FileID
    let layout: ChunkLayout
    let size: UInt64
    let chunks: Int
    /// Borrowed from the worker's `MoveBuffers` (valid until its next batch).
    let journal: UnsafeRawBufferPointer
    let newHeader: [UInt8]
    let newSidecar: [UInt8]

    init(fd: Int32, oldID: FileID, newID: FileID, layout: ChunkLayout, size: UInt64, chunks: Int,
         journal: UnsafeRawBufferPointer, newHeader: [UInt8], newSidecar: [UInt8]) {
        self.fd = fd; self.oldID = oldID; self.newID = newID; self.layout = layout; self.size = size
        self.chunks = chunks; self.journal = journal; self.newHeader = newHeader; self.newSidecar = newSidecar
    }

    deinit { close(fd) }
}
