import Lisafs

/// The provider's table of `SealedInode`s by ciphertext identity, with
/// reference counts (one per open file and per short-lived user), the scratch
/// usage total and least-recently-used eviction of unused clean scratches.
///
/// Unused entries (registered, no reference) sit in a list in the order they
/// became unused, so finding the least recently used one costs O(1), not a scan
/// of the table on every release once the cache is full.
///
/// An entry leaves the table only with no references, under both its own lock
/// and this lock, and only when it holds nothing uncommitted; so at most one
/// live entry exists per file and nothing unsaved is ever dropped.
final class InodeRegistry: @unchecked Sendable {
    private let lock = Mutex()
    private var entries: [InodeKey: SealedInode] = [:]
    private var usage: Int64 = 0
    private var unusedCount = 0
    /// Oldest and newest unused entry (linked through `SealedInode.olderUnused/newerUnused`).
    private var oldestUnused: SealedInode?
    private var newestUnused: SealedInode?
    private let scratchLimit: UInt64
    private let maxUnused: Int

    init(scratchLimit: UInt64, maxUnused: Int) {
        self.scratchLimit = scratchLimit
        self.maxUnused = maxUnused
    }

    /// Bytes held by all scratches.
    var scratchUsage: Int64 { lock.withLock { usage } }

    /// Number of registered entries (open or cached).
    var count: Int { lock.withLock { entries.count } }

    func adjustUsage(by delta: Int64) {
        lock.withLock { usage += delta }
    }

    /// Takes a reference on the entry for `key`, creating it (with an O_PATH
    /// descriptor from `makePathFD`) when there is none.
    func acquire(_ key: InodeKey, context: ProviderContext, makePathFD: () throws -> Int32) throws -> SealedInode {
        if let existing = lock.withLock({ retainLocked(key) }) { return existing }
        let fd = try makePathFD()
        let fresh = SealedInode(key: key, pathFD: fd, context: context)
        let winner: SealedInode = lock.withLock {
            if let existing = retainLocked(key) { return existing }
            fresh.references = 1
            entries[key] = fresh
            return fresh
        }
        if winner !== fresh { Sys.close(fd) }
        return winner
    }

    private func retainLocked(_ key: InodeKey) -> SealedInode? {
        guard let e = entries[key] else { return nil }
        if e.references == 0 { unlinkUnusedLocked(e) }
        e.references += 1
        return e
    }

    /// The entry for `key` without a reference (for stat): callers lock it and
    /// must accept that it may have been disposed meanwhile.
    func peek(_ key: InodeKey) -> SealedInode? {
        lock.withLock { entries[key] }
    }

    /// Drops a reference. Caller holds `entry.lock`. Returns true when the entry
    /// left the table (the caller then disposes it).
    func dropReferenceLocked(_ entry: SealedInode, keep: Bool) -> Bool {
        lock.withLock {
            entry.references -= 1
            guard entry.references == 0 else { return false }
            if keep && entries[entry.key] === entry {
                appendUnusedLocked(entry)
                return false
            }
            if entries[entry.key] === entry { entries[entry.key] = nil }
            return true
        }
    }

    /// Removes an unused entry now (its file's last link is gone). Caller holds
    /// `entry.lock`; returns true when the caller must dispose it.
    func removeIfUnusedLocked(_ entry: SealedInode) -> Bool {
        lock.withLock {
            guard entry.references == 0, entries[entry.key] === entry else { return false }
            entries[entry.key] = nil
            unlinkUnusedLocked(entry)
            return true
        }
    }

    /// References on every entry, for the periodic committer and shutdown.
    func retainAll() -> [SealedInode] {
        lock.withLock {
            entries.values.map { e in
                if e.references == 0 { unlinkUnusedLocked(e) }
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
            lock.withLock { usage + Int64(clamping: bytes) <= Int64(clamping: scratchLimit) && unusedCount <= maxUnused }
        }
        var skipped = Set<ObjectIdentifier>()
        while !satisfied() {
            // The least recently used unused entry not tried yet (usually the oldest).
            let candidate: SealedInode? = lock.withLock {
                var e = oldestUnused
                while let current = e, current === excluding || skipped.contains(ObjectIdentifier(current)) {
                    e = current.newerUnused
                }
                return e
            }
            guard let candidate else { break }
            skipped.insert(ObjectIdentifier(candidate))
            // Never wait for another entry's lock while holding our own.
            candidate.lock.withLockIfAvailable {
                guard candidate.isEvictableLocked, removeIfUnusedLocked(candidate) else { return }
                candidate.disposeLocked(deferring: true)
            }
        }
        return lock.withLock { usage + Int64(clamping: bytes) <= Int64(clamping: scratchLimit) }
    }

    // MARK: The unused list (registry lock held)

    private func appendUnusedLocked(_ e: SealedInode) {
        e.olderUnused = newestUnused
        e.newerUnused = nil
        if let newest = newestUnused { newest.newerUnused = e } else { oldestUnused = e }
        newestUnused = e
        unusedCount += 1
    }

    private func unlinkUnusedLocked(_ e: SealedInode) {
        if let older = e.olderUnused { older.newerUnused = e.newerUnused } else { oldestUnused = e.newerUnused }
        if let newer = e.newerUnused { newer.olderUnused = e.olderUnused } else { newestUnused = e.olderUnused }
        e.olderUnused = nil
        e.newerUnused = nil
        unusedCount -= 1
    }

    /// The unused entries, oldest first (tests).
    var unusedInOrder: [InodeKey] {
        lock.withLock {
            var keys: [InodeKey] = []
            var e = oldestUnused
            while let current = e { keys.append(current.key); e = current.newerUnused }
            return keys
        }
    }
}
