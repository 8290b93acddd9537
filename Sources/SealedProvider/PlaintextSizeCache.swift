import Lisafs

/// Committed plaintext sizes of files that have no scratch, so that Walk and
/// FStat of a file cost one statx once its header and sidecar have been read.
///
/// An entry is valid while the ciphertext's length and times are unchanged; the
/// provider also drops it on every commit and on removal of the file's last link
/// (only this process writes the store: it holds the store's lock). Every removal
/// moves `generation`, so a size read in the background (`SizeReadAhead`) is
/// stored only if nothing was committed or removed while it was read.
final class PlaintextSizeCache: @unchecked Sendable {
    private struct Entry {
        var ciphertextSize: UInt64
        var mtime: StatxTimestamp
        var ctime: StatxTimestamp
        var plaintextSize: UInt64
    }

    private let lock = Mutex()
    private var entries: [InodeKey: Entry] = [:]
    private let capacity: Int
    private var removals: UInt64 = 0

    init(capacity: Int = 1 << 16) { self.capacity = capacity }

    func lookup(_ key: InodeKey, ciphertext: Statx) -> UInt64? {
        lock.withLock {
            guard let e = entries[key], e.ciphertextSize == ciphertext.size, e.mtime == ciphertext.mtime,
                  e.ctime == ciphertext.ctime else { return nil }
            return e.plaintextSize
        }
    }

    func store(_ key: InodeKey, ciphertext: Statx, plaintextSize: UInt64) {
        lock.withLock { storeLocked(key, ciphertext: ciphertext, plaintextSize: plaintextSize) }
    }

    /// Stores only if no entry was removed since `generation` was read; true when stored.
    func store(_ key: InodeKey, ciphertext: Statx, plaintextSize: UInt64, ifGeneration generation: UInt64) -> Bool {
        lock.withLock {
            guard removals == generation else { return false }
            storeLocked(key, ciphertext: ciphertext, plaintextSize: plaintextSize)
            return true
        }
    }

    /// Moves on every removal.
    var generation: UInt64 { lock.withLock { removals } }

    private func storeLocked(_ key: InodeKey, ciphertext: Statx, plaintextSize: UInt64) {
        // A crude bound: forgetting everything costs one header read per file later.
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = Entry(ciphertextSize: ciphertext.size, mtime: ciphertext.mtime, ctime: ciphertext.ctime,
                             plaintextSize: plaintextSize)
    }

    func remove(_ key: InodeKey) {
        lock.withLock {
            removals &+= 1
            entries.removeValue(forKey: key)
        }
    }
}
