import CLinux
import Foundation
import Glibc
import Lisafs
import SealedStore

/// Reads the committed sizes of a directory's files ahead of the client's walks.
///
/// A walk that misses the size cache costs a header and a sidecar read, several times the
/// walk itself; a client that stats many files of one directory (`ls -l`, `find`, a build)
/// pays that for each. After a few misses in one directory, a background thread lists it and
/// fills the cache for its regular files, so the walks that follow cost one statx each, and
/// the reading runs beside the client instead of in its round trips. Files are read in name
/// order starting after the name that missed last (clients mostly stat in name order; tmpfs
/// lists newest first), so the pass runs ahead of the client rather than towards it.
///
/// Bounded: one directory at a time, a short queue (more requests are dropped), at most
/// `entryLimit` entries per pass, and a directory is scanned again only after as many further
/// misses as a sixteenth of the entries its last pass scanned. It only reads: files with a
/// journal (an interrupted commit) or with live state are left to the walk itself. A size read
/// while the provider commits or removes anything is not stored (`PlaintextSizeCache`'s
/// generation), so a read that raced a commit never leaves a stale size behind.
final class SizeReadAhead: @unchecked Sendable {
    static let missThreshold = 8
    static let entryLimit = 8192
    static let queueLimit = 4

    private struct DirectoryState {
        var misses = 0
        var lastScanned = 0
        var queued = false
    }

    private let store: SealedStore
    private let sizes: PlaintextSizeCache
    private let registry: InodeRegistry
    private let condition = NSCondition()
    private var directories: [InodeKey: DirectoryState] = [:]
    private var queue: [(key: InodeKey, fd: Int32, after: [UInt8])] = []
    private var stopped = false
    private var running = false
    /// Files whose size a pass stored (tests, statistics).
    private var filled = 0

    init(store: SealedStore, sizes: PlaintextSizeCache, registry: InodeRegistry) {
        self.store = store
        self.sizes = sizes
        self.registry = registry
    }

    /// A walk of `name` in `directory` missed the size cache. `reopen` gives a
    /// readable descriptor of the directory when a pass is due.
    func noteMiss(in directory: InodeKey, name: [UInt8], reopen: () -> Int32?) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        if directories.count >= 4096 && directories[directory] == nil { directories.removeAll(keepingCapacity: true) }
        var state = directories[directory, default: DirectoryState()]
        state.misses += 1
        defer { directories[directory] = state }
        guard !state.queued, state.misses >= max(Self.missThreshold, state.lastScanned / 16),
              queue.count < Self.queueLimit, let fd = reopen() else { return }
        state.queued = true
        state.misses = 0
        queue.append((directory, fd, name))
        if !running {
            running = true
            let thread = Thread { [self] in work() }
            thread.name = "sealgofer-readahead"
            thread.start()
        }
        condition.broadcast()
    }

    /// Stops reading ahead and waits for a pass in progress (before the store closes).
    func stop() {
        condition.lock()
        stopped = true
        for job in queue { Glibc.close(job.fd) }
        queue.removeAll()
        while running { condition.wait() }
        condition.unlock()
    }

    var filledCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return filled
    }

    // MARK: The background pass

    private func work() {
        while true {
            condition.lock()
            guard !stopped, !queue.isEmpty else {
                running = false
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = queue.removeFirst()
            condition.unlock()
            let (scanned, stored) = scan(job.fd, after: job.after)
            Glibc.close(job.fd)
            condition.lock()
            filled += stored
            directories[job.key]?.queued = false
            directories[job.key]?.lastScanned = scanned
            condition.unlock()
        }
    }

    private var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// Lists the directory `fd` and stores the committed size of each regular file not yet
    /// known, in name order from the first name after `after`. Returns the entries scanned
    /// and the sizes stored.
    private func scan(_ fd: Int32, after: [UInt8]) -> (Int, Int) {
        var names: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        listing: while names.count < Self.entryLimit {
            let n = buffer.withUnsafeMutableBytes { clinux_getdents64(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            // Only what the filesystem lists as regular files (nothing else is opened).
            for entry in LinuxDirents(buffer, count: n) where entry.type == 8 /* DT_REG: never . or .. */ {
                names.append(entry.name)
                if names.count >= Self.entryLimit { break listing }
            }
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        let start = names.firstIndex { after.lexicographicallyPrecedes($0) } ?? names.count
        var stored = 0
        for name in names[start...] + names[..<start] {
            if isStopped { break }
            if readSize(in: fd, name) { stored += 1 }
        }
        return (names.count, stored)
    }

    /// Reads and stores the committed size of `name` in `directory`; true when stored.
    private func readSize(in directory: Int32, _ name: [UInt8]) -> Bool {
        guard let fd = HeaderReading.open(in: directory, name) else { return false }
        defer { Glibc.close(fd) }
        guard let ciphertext = try? Sys.statx(fd), FileType.of(ciphertext) == FileType.regular else { return false }
        let key = InodeKey(ciphertext)
        guard sizes.lookup(key, ciphertext: ciphertext) == nil, registry.peek(key) == nil else { return false }
        let generation = sizes.generation
        guard let state = try? store.settledCommittedState(readable: fd) else { return false }
        return sizes.store(key, ciphertext: ciphertext, plaintextSize: state.size, ifGeneration: generation)
    }
}
