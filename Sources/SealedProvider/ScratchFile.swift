import CLinux
import Glibc
import Lisafs
import SealedStore

/// The plaintext copy of one file that the client reads and writes directly
/// through donated FDs, and what is known about its last commit.
///
/// Change detection: `digests[i]` is the change digest of committed chunk i;
/// `recorded` is the scratch's (size, ctime) when its content last equalled the
/// committed content. Every write through any FD of the scratch moves its ctime
/// (which the client cannot set back), so an unchanged (size, ctime) means
/// nothing to commit — unless the record is *racy*: taken in the same clock tick
/// as a write, whose successor in that tick would keep the ctime. Racy records,
/// and writes through shared mappings (which on tmpfs do not touch ctime at all),
/// are caught by a full scan: every chunk hashed and compared.
final class ScratchFile {
    let fd: Int32
    let chunkSize: Int
    var digests: [ChangeDigest]
    /// Plaintext size the digests describe (the file's committed size).
    var committedSize: UInt64
    private var recordedSize: Int64 = -1
    private var recordedCtime = timespec()
    private(set) var isRacy = true
    /// The scratch's ctime right after it was filled. Filling (and copying the
    /// ciphertext's times onto it) moves ctime; only a later change means the
    /// client changed the file, so stat reports the scratch's ctime only then.
    private(set) var filledCtime = timespec()

    /// The outcome of reading the scratch: what differs from the commit.
    struct Scan {
        var size: UInt64
        /// Chunks that differ from the commit, ascending: known chunks whose
        /// digest changed, then every chunk past the committed ones.
        var changed: [UInt64]
        /// One per chunk of `size`: the scanned digests of known chunks. The
        /// entries of changed chunks are filled in by the commit (`observe`)
        /// from the bytes it actually seals.
        var digests: [ChangeDigest]
        var stat: stat
        var sampledAfterStat: Int64
        var hadShortRead: Bool
        var isEmpty: Bool { changed.isEmpty }
    }

    private init(fd: Int32, chunkSize: Int, digests: [ChangeDigest], committedSize: UInt64) {
        self.fd = fd
        self.chunkSize = chunkSize
        self.digests = digests
        self.committedSize = committedSize
    }

    /// A scratch holding the committed plaintext of `sealed` (or nothing when
    /// `empty`), with the ciphertext's atime/mtime. Digests are computed only when
    /// a `digester` is given (readonly mounts never commit).
    static func create(space: ScratchSpace, sealed: SealedFile, digester: ChangeDigester?, empty: Bool,
                       ciphertextTimes: (atime: timespec, mtime: timespec)?, fineTimestamps: Bool) throws -> ScratchFile {
        let made = try space.take()
        let fd = made.fd
        do {
            var digests: [ChangeDigest] = []
            // An empty (O_TRUNC) scratch differs from the commit until it is committed.
            var size = sealed.committedSize
            if !empty {
                // Decrypted on several threads straight into the scratch; the change
                // digests are taken in the same pass, while each chunk is hot.
                let committed = sealed.committedSize
                let count = Int((committed + UInt64(sealed.chunkSize) - 1) / UInt64(sealed.chunkSize))
                if digester != nil { digests = [ChangeDigest](repeating: ChangeDigest(low: 0, high: 0), count: count) }
                size = try digests.withUnsafeMutableBufferPointer { buffer in
                    let out = buffer   // a copy of the pointer: the observer escapes
                    return try sealed.decrypt(into: fd, observe: digester.map { d in
                        { index, plain in if Int(index) < out.count { out[Int(index)] = d.digest(plain) } }
                    })
                }
                // The inode's lock keeps commits out; a different size means a bug.
                guard size == committed else { throw Errno.EIO }
            }
            // A scratch made ahead (before the ciphertext got its times) and left empty
            // shows no later mtime than the ciphertext's, which is all stat looks at.
            var untouched = empty ? made.stat : nil
            if let times = ciphertextTimes, untouched == nil || isLater(untouched!.st_mtim, than: times.mtime) {
                try Sys.setTimes(fd, atime: times.atime, mtime: times.mtime)
                untouched = nil
            }
            let scratch = ScratchFile(fd: fd, chunkSize: sealed.chunkSize, digests: digests, committedSize: size)
            let st = try untouched ?? Sys.fstat(fd)
            scratch.filledCtime = st.st_ctim
            scratch.record(st, sampledAfterStat: clinux_coarse_realtime_ns(), fineTimestamps: fineTimestamps, shortRead: false)
            return scratch
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    private static func isLater(_ a: timespec, than b: timespec) -> Bool {
        a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec)
    }

    /// True when `st` shows no write since the last record (and the record is not
    /// racy), and the scratch's size is the committed size (an O_TRUNC open
    /// starts with an empty scratch that is not yet committed).
    func isUnchanged(_ st: stat) -> Bool {
        !isRacy && Int64(st.st_size) == recordedSize && UInt64(max(0, st.st_size)) == committedSize
            && st.st_ctim.tv_sec == recordedCtime.tv_sec && st.st_ctim.tv_nsec == recordedCtime.tv_nsec
    }

    /// Finds the chunks that differ from the commit: every known chunk is read
    /// (one chunk at a time into a reused buffer, on up to `parallelism`
    /// threads) and hashed; chunks past the committed ones are changes by
    /// definition and are not read here at all: the commit reads, hashes and
    /// seals them in one pass.
    func scan(digester: ChangeDigester, parallelism: Int) throws -> Scan {
        let st = try Sys.fstat(fd)
        let sampled = clinux_coarse_realtime_ns()
        let size = UInt64(max(0, st.st_size))
        let c = UInt64(chunkSize)
        let count = Int((size + c - 1) / c)
        let known = min(count, digests.count)
        var newDigests = [ChangeDigest](repeating: ChangeDigest(low: 0, high: 0), count: count)
        var differs = [Bool](repeating: false, count: known)
        let runChunks = 16
        let runs = (known + runChunks - 1) / runChunks
        let cursor = WorkCursor(count: runs)
        try newDigests.withUnsafeMutableBufferPointer { out in
            try differs.withUnsafeMutableBufferPointer { flags in
                try digests.withUnsafeBufferPointer { old in
                    try cursor.run(workers: min(parallelism, runs)) { _ in
                        let buffer = try WorkBuffers.shared.take(chunkSize)
                        defer { WorkBuffers.shared.give(buffer) }
                        while let r = cursor.take() {
                            for k in (r * runChunks)..<min(known, (r + 1) * runChunks) {
                                let want = Int(min(c, size - UInt64(k) * c))
                                let window = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want])
                                let got = try Sys.readFully(fd, window, at: UInt64(k) * c)
                                if got < want {
                                    // Truncated under us: what is missing reads as zeros,
                                    // and the record is marked racy so the next check scans again.
                                    cursor.raiseFlag()
                                    UnsafeMutableRawBufferPointer(rebasing: window[got...]).initializeMemory(as: UInt8.self, repeating: 0)
                                }
                                out[k] = digester.digest(UnsafeRawBufferPointer(window))
                                flags[k] = out[k] != old[k]
                            }
                        }
                    }
                }
            }
        }
        var changed: [UInt64] = []
        for k in 0..<known where differs[k] { changed.append(UInt64(k)) }
        if count > known { changed.append(contentsOf: (UInt64(known)..<UInt64(count))) }
        return Scan(size: size, changed: changed, digests: newDigests, stat: st, sampledAfterStat: sampled,
                    hadShortRead: cursor.isFlagged)
    }

    /// The scan's content is now the committed content.
    func accept(_ scan: Scan, fineTimestamps: Bool) {
        digests = scan.digests
        committedSize = scan.size
        record(scan.stat, sampledAfterStat: scan.sampledAfterStat, fineTimestamps: fineTimestamps, shortRead: scan.hadShortRead)
    }

    /// Replaces what is known about the commit (after reopening the store file).
    func resetCommitted(digests: [ChangeDigest], size: UInt64) {
        self.digests = digests
        committedSize = size
        isRacy = true
    }

    /// Forces the next check to scan (the caller changed the scratch itself, or a
    /// commit failed).
    func invalidateRecord() { isRacy = true }

    /// Remembers `st` as the state matching the commit. A write later than the
    /// read that follows the fstat happens at a clock tick ≥ `sampledAfterStat`;
    /// if that is past the recorded ctime, such a write must change the ctime.
    private func record(_ st: stat, sampledAfterStat: Int64, fineTimestamps: Bool, shortRead: Bool) {
        recordedSize = Int64(st.st_size)
        recordedCtime = st.st_ctim
        let ctime = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        isRacy = shortRead || !(fineTimestamps || sampledAfterStat > ctime)
    }
}
