import Lisafs

/// The provider's table of `SealedInode`s by ciphertext identity, with
/// reference counts (one per open file and per short-lived user), the scratch
/// usage total and least-recently-used eviction of unused clean scratches.
///
/// An entry leaves the table only with no references, under both its own lock
/// and this lock, and only when it holds nothing uncommitted; so at most one
/// live entry exists per file and nothing unsaved is ever dropped.
final class InodeRegistry: @unchecked Sendable {
    private let lock = Mutex()
    private var entries: [InodeKey: SealedInode] = [:]
    private var useClock: UInt64 = 0
    private var usage: Int64 = 0
    private var unusedCount = 0
    private let scratchLimit: UInt64
    private let maxUnused: Int

    init(scratchLimit: UInt64, maxUnused: Int) {
        self.scratchLimit = scratchLimit
        self.maxUnused = maxUnused
    }

    /// Bytes held by all scratches.
    var scratchUsage: Int64 { lock.locked { usage } }

    /// Number of registered entries (open or cached).
    var count: Int { lock.locked { entries.count } }

    func adjustUsage(by delta: Int64) {
        lock.locked { usage += delta }
    }

    /// Takes a reference on the entry for `key`, creating it (with an O_PATH
    /// descriptor from `makePathFD`) when there is none.
    func acquire(_ key: InodeKey, context: ProviderContext, makePathFD: () throws -> Int32) throws -> SealedInode {
        if let existing = lock.locked({ retainLocked(key) }) { return existing }
        let fd = try makePathFD()
        let fresh = SealedInode(key: key, pathFD: fd, context: context)
        let winner: SealedInode = lock.locked {
            if let existing = retainLocked(key) { return existing }
            fresh.references = 1
            useClock += 1
            fresh.lastUse = useClock
            entries[key] = fresh
            return fresh
        }
        if winner !== fresh { Sys.close(fd) }
        return winner
    }

    private func retainLocked(_ key: InodeKey) -> SealedInode? {
        guard let e = entries[key] else { return nil }
        if e.references == 0 { unusedCount -= 1 }
        e.references += 1
        useClock += 1
        e.lastUse = useClock
        return e
    }

    /// The entry for `key` without a reference (for stat): callers lock it and
    /// must accept that it may have been disposed meanwhile.
    func peek(_ key: InodeKey) -> SealedInode? {
        lock.locked { entries[key] }
    }

    /// Drops a reference. Caller holds `entry.lock`. Returns true when the entry
    /// left the table (the caller then disposes it).
    func dropReferenceLocked(_ entry: SealedInode, keep: Bool) -> Bool {
        lock.locked {
            entry.references -= 1
            guard entry.references == 0 else { return false }
            if keep && entries[entry.key] === entry {
                unusedCount += 1
                return false
            }
            if entries[entry.key] === entry { entries[entry.key] = nil }
            return true
        }
    }

    /// Removes an unused entry now (its file's last link is gone). Caller holds
    /// `entry.lock`; returns true when the caller must dispose it.
    func removeIfUnusedLocked(_ entry: SealedInode) -> Bool {
        lock.locked {
            guard entry.references == 0, entries[entry.key] === entry else { return false }
            entries[entry.key] = nil
            unusedCount -= 1
            return true
        }
    }

    /// References on every entry, for the periodic committer and shutdown.
    func retainAll() -> [SealedInode] {
        lock.locked {
            entries.values.map { e in
                if e.references == 0 { unusedCount -= 1 }
                e.references += 1
                return e
            }
        }
    }

    /// Evicts unused clean scratches, least recently used first, until `bytes`
    /// more fit under the scratch limit and few enough entries are cached.
    /// Returns whether `bytes` fit. `excluding` is the caller's own (locked) entry.
    @discardableResult
    func makeRoom(for bytes: UInt64, excluding: SealedInode? = nil) -> Bool {
        func satisfied() -> Bool {
            lock.locked { usage + Int64(clamping: bytes) <= Int64(clamping: scratchLimit) && unusedCount <= maxUnused }
        }
        var skipped = Set<ObjectIdentifier>()
        while !satisfied() {
            // The least recently used unused entry (usually one eviction is due,
            // so a linear search beats sorting the table).
            let candidate: SealedInode? = lock.locked {
                var best: SealedInode? = nil
                for e in entries.values where e.references == 0 && e !== excluding && !skipped.contains(ObjectIdentifier(e)) {
                    if best == nil || e.lastUse < best!.lastUse { best = e }
                }
                return best
            }
            guard let candidate else { break }
            skipped.insert(ObjectIdentifier(candidate))
            // Never wait for another entry's lock while holding our own.
            candidate.lock.tryLocked {
                guard candidate.isEvictableLocked, removeIfUnusedLocked(candidate) else { return }
                candidate.disposeLocked()
            }
        }
        return lock.locked { usage + Int64(clamping: bytes) <= Int64(clamping: scratchLimit) }
    }
}
