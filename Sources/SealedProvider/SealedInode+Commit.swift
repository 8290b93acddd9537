import Glibc
import Lisafs
import SealedStore

/// Why a commit runs, which decides how hard it looks and whether it syncs.
struct CommitRequest {
    /// Scan every chunk even if (size, ctime) say nothing changed.
    var fullScan: Bool
    /// Make the result survive power loss before returning (FSync).
    var durable: Bool

    /// Flush: one fstat when nothing changed.
    static let flush = CommitRequest(fullScan: false, durable: false)
    static let sizeChange = CommitRequest(fullScan: false, durable: false)
    static let fsync = CommitRequest(fullScan: true, durable: true)
    static let lastClose = CommitRequest(fullScan: true, durable: false)
    static let periodicQuick = CommitRequest(fullScan: false, durable: false)
    static let periodicFull = CommitRequest(fullScan: true, durable: false)
    static let shutdown = CommitRequest(fullScan: true, durable: true)
}

extension SealedInode {
    /// Seals whatever changed since the last commit, atomically through the
    /// store. On failure the previous commit stays intact, the data stays in the
    /// scratch (or dirty map) and `commitFailed` keeps the entry alive; the next
    /// commit retries. Lock held.
    func commitLocked(_ request: CommitRequest) throws {
        guard !context.options.readonly, everWritable || commitFailed, !isDisposed else { return }
        // A commit that failed after its commit point invalidated the store
        // handle; reopening replays it and re-learns the committed content,
        // after which the comparison must start over.
        for attempt in 0..<2 {
            do {
                try commitOnceLocked(request)
                return
            } catch let error as SealedStoreError where error.isClosedHandle && attempt == 0 {
                try reopenSealedLocked()
            } catch {
                commitFailed = true
                context.statistics.update { $0.failedCommits += 1 }
                if case .scratch(let s) = mode { s.invalidateRecord() }
                throw Errno.fromStore(error)
            }
        }
    }

    private func commitOnceLocked(_ request: CommitRequest) throws {
        switch mode {
        case .unloaded, .disposed:
            return
        case .scratch(let s):
            let st = try Sys.fstat(s.fd)
            updateAccountingLocked(Int64(st.st_size))
            if !request.fullScan && !commitFailed && s.isUnchanged(st) {
                context.statistics.update { $0.unchangedChecks += 1 }
                try syncIfNeededLocked(request)
                return
            }
            guard let digester else { return }
            var scan = try s.scan(digester: digester, parallelism: context.parallelism)
            context.statistics.update { $0.scans += 1 }
            updateAccountingLocked(Int64(scan.size))
            if scan.isEmpty && scan.size == s.committedSize {
                s.accept(scan, fineTimestamps: context.scratch.hasFineTimestamps)
                commitFailed = false
                try syncIfNeededLocked(request)
                return
            }
            try sealScratchLocked(s, &scan, digester: digester, durable: request.durable)
            s.accept(scan, fineTimestamps: context.scratch.hasFineTimestamps)
        case .direct(let d):
            guard d.isDirty else {
                try syncIfNeededLocked(request)
                return
            }
            let file = try sealedLocked()
            // An unlinked file keeps its dirty chunks: they are its only copy.
            if try sealLocked(try d.changes(file), newSize: d.logicalSize, durable: request.durable) {
                d.markCommitted()
            }
        }
        commitFailed = false
    }

    /// Hands the changes to the store, unless the file's last link is gone
    /// (then returns false: nothing is kept for it any more).
    @discardableResult
    private func sealLocked(_ changes: [ChunkChange], newSize: UInt64, durable: Bool) throws -> Bool {
        let links = try Sys.fstat(pathFD).st_nlink
        if isUnlinked || links == 0 {
            isUnlinked = true
            return false
        }
        let file = try sealedLocked()
        logger.debug("sealed: commit inode \(key.inode): \(changes.count) chunks, size \(file.committedSize) -> \(newSize)")
        try file.commit(changes, newSize: newSize, durable: durable)
        context.statistics.update { $0.commits += 1; $0.chunksCommitted += changes.count }
        hasUnsyncedCommits = !durable
        context.sizes.remove(key)
        return true
    }

    /// Seals the scan's changed chunks straight from the scratch (the store
    /// reads, hashes and encrypts each chunk in one pass); the digests of what
    /// was sealed replace the scan's. Nothing happens once the file's last link
    /// is gone.
    private func sealScratchLocked(_ s: ScratchFile, _ scan: inout ScratchFile.Scan, digester: ChangeDigester, durable: Bool) throws {
        let links = try Sys.fstat(pathFD).st_nlink
        if isUnlinked || links == 0 {
            isUnlinked = true
            return
        }
        let file = try sealedLocked()
        logger.debug("sealed: commit inode \(key.inode): \(scan.changed.count) chunks, size \(file.committedSize) -> \(scan.size)")
        let report = try scan.digests.withUnsafeMutableBufferPointer { buffer in
            let out = buffer   // a copy of the pointer: the observer escapes
            return try file.commit(fromDescriptor: s.fd, chunks: scan.changed, newSize: scan.size, durable: durable) { index, plain in
                if Int(index) < out.count { out[Int(index)] = digester.digest(plain) }
            }
        }
        if report.shortRead { scan.hadShortRead = true }
        context.statistics.update { $0.commits += 1; $0.chunksCommitted += scan.changed.count }
        hasUnsyncedCommits = !durable
        context.sizes.remove(key)
    }

    /// FSync with nothing new to seal still owes durability to earlier commits
    /// (their sidecar renames may not have reached the disk). The store's empty
    /// durable commit only syncs the data file, so sync the store's filesystem.
    private func syncIfNeededLocked(_ request: CommitRequest) throws {
        guard request.durable, hasUnsyncedCommits, !isUnlinked else { return }
        do { try context.store.syncAll() } catch { throw Errno.fromStore(error) }
        hasUnsyncedCommits = false
    }
}
