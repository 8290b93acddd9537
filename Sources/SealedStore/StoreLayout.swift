#if canImport(Glibc)
import Glibc
#endif

/// Names inside a store (Keys/README.md §1) and the directory FDs that reach them.
/// All FDs are opened O_NOFOLLOW|O_DIRECTORY so nothing under the store can redirect a write.
final class StoreLayout: @unchecked Sendable {
    static let configName = "config"
    static let keyringName = "keyring"
    static let dataName = "data"
    static let metaName = "meta"
    static let lockName = "lock"
    static let filesName = "files"
    static let journalName = "journal"
    static let pendingName = "pending"

    let rootFD: Int32
    let dataFD: Int32
    let metaFD: Int32
    let filesFD: Int32
    let journalFD: Int32
    /// meta/pending: intent records of namespace operations in flight (Keys/README.md §7.1).
    let pendingFD: Int32
    /// meta/files/XX directories, opened lazily (guarded by `fanoutLock`).
    private var fanout = [Int32](repeating: -1, count: 256)
    private let fanoutLock = Mutex()

    init(rootFD: Int32) throws {
        self.rootFD = rootFD
        dataFD = try openDirectory(rootFD, StoreLayout.dataName)
        metaFD = try openDirectory(rootFD, StoreLayout.metaName)
        try ensureDirectory(metaFD, StoreLayout.filesName)
        try ensureDirectory(metaFD, StoreLayout.journalName)
        try ensureDirectory(metaFD, StoreLayout.pendingName)
        filesFD = try openDirectory(metaFD, StoreLayout.filesName)
        journalFD = try openDirectory(metaFD, StoreLayout.journalName)
        pendingFD = try openDirectory(metaFD, StoreLayout.pendingName)
    }

    func closeAll() {
        fanoutLock.locked { for fd in fanout where fd >= 0 { close(fd) }; fanout = [Int32](repeating: -1, count: 256) }
        for fd in [dataFD, metaFD, filesFD, journalFD, pendingFD, rootFD] { close(fd) }
    }

    /// Directory FD holding the sidecar of `id` (meta/files/XX), created on demand.
    func sidecarDirectory(_ id: FileID) throws -> Int32 {
        let slot = Int(id.bytes[0])
        return try fanoutLock.locked {
            if fanout[slot] >= 0 { return fanout[slot] }
            let name = String(id.hex.prefix(2))
            try ensureDirectory(filesFD, name)
            let fd = try openDirectory(filesFD, name)
            fanout[slot] = fd
            return fd
        }
    }

    static func sidecarName(_ id: FileID) -> String { id.hex + ".sc" }

    static func journalName(_ id: FileID) -> String { id.hex + ".j" }

    func readSidecar(_ id: FileID) throws -> [UInt8]? {
        try readFileAt(try sidecarDirectory(id), StoreLayout.sidecarName(id), limit: Sidecar.length + 1)
    }

    func writeSidecar(_ id: FileID, _ bytes: [UInt8], sync: Bool, syncDirectory: Bool) throws {
        try replaceFileAt(try sidecarDirectory(id), StoreLayout.sidecarName(id), bytes, syncFile: sync, syncDirectory: syncDirectory)
    }

    func removeSidecar(_ id: FileID) throws {
        let dir = try sidecarDirectory(id)
        if unlinkat(dir, StoreLayout.sidecarName(id), 0) != 0 && errno != ENOENT {
            throw SealedStoreError.io("remove sidecar \(id.hex)", errno)
        }
        unlinkat(dir, StoreLayout.sidecarName(id) + ".tmp", 0)
    }

    func removeJournal(_ id: FileID) throws {
        if unlinkat(journalFD, StoreLayout.journalName(id), 0) != 0 && errno != ENOENT {
            throw SealedStoreError.io("remove journal \(id.hex)", errno)
        }
        unlinkat(journalFD, StoreLayout.journalName(id) + ".tmp", 0)
    }
}

/// A pthread mutex with a closure API (Foundation-free so the hot paths stay lean).
final class Mutex: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { m.initialize(to: pthread_mutex_t()); pthread_mutex_init(m, nil) }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(m); defer { pthread_mutex_unlock(m) }
        return try body()
    }
}

/// Readers–writer lock: reads of one file run in parallel, a commit excludes them.
final class ReadWriteLock: @unchecked Sendable {
    private let l = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    init() { l.initialize(to: pthread_rwlock_t()); pthread_rwlock_init(l, nil) }
    deinit { pthread_rwlock_destroy(l); l.deallocate() }
    func reading<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(l); defer { pthread_rwlock_unlock(l) }
        return try body()
    }
    func writing<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(l); defer { pthread_rwlock_unlock(l) }
        return try body()
    }
}
