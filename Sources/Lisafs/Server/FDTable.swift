/// A connection's FDID → FD map.
///
/// FDIDs follow the protocol: 0 is never issued, IDs count up and are never
/// reused within the connection (so a stale FDID cannot alias a newer FD). A
/// FDID that was never issued or is already closed yields EBADF; an FD of the
/// wrong kind yields EINVAL (as gVisor's lookupControlFD/lookupOpenFD do).
final class FDTable<P: Provider>: @unchecked Sendable {
    /// Most FDs one connection may hold at once; bounds the server memory a
    /// client can pin (each entry usually pins a host FD too).
    let capacity: Int

    private let mutex = Mutex()
    private var entries: [FDID: FDEntry<P>] = [:]
    private var nextID: FDID = 1

    init(capacity: Int = 1 << 20) {
        self.capacity = capacity
    }

    var count: Int { mutex.withLock { entries.count } }

    /// Throws EMFILE unless `needed` more FDs fit now. Creating RPCs check this
    /// before they create anything, so a client at its cap gets EMFILE without
    /// a side effect (a concurrent request on another channel may still take
    /// the room; `insert` stays the authoritative check).
    func requireRoom(for needed: Int) throws {
        try mutex.withLock {
            guard entries.count + needed <= capacity, nextID < FDID.max - FDID(needed) else { throw Errno.EMFILE }
        }
    }

    /// Adds `entry`, taking over the caller's reference. Throws EMFILE when full;
    /// the caller then still owns its reference and must release it.
    func insert(_ entry: FDEntry<P>) throws -> FDID {
        try mutex.withLock {
            guard entries.count < capacity, nextID != FDID.max else { throw Errno.EMFILE }
            let id = nextID
            nextID += 1
            entries[id] = entry
            return id
        }
    }

    /// Looks up any FD, taking a reference for the caller (who must release it).
    func lookup(_ id: FDID) throws -> FDEntry<P> {
        try mutex.withLock {
            guard let entry = entries[id] else { throw Errno.EBADF }
            entry.retain()
            return entry
        }
    }

    /// A control FD with a reference for the caller.
    func control(_ id: FDID) throws -> ControlFD<P> {
        let entry = try lookup(id)
        guard case .control(let fd) = entry else {
            entry.release()
            throw Errno.EINVAL
        }
        return fd
    }

    /// An open FD with a reference for the caller.
    func open(_ id: FDID) throws -> OpenFD<P> {
        let entry = try lookup(id)
        guard case .open(let fd) = entry else {
            entry.release()
            throw Errno.EINVAL
        }
        return fd
    }

    /// A bound-socket FD with a reference for the caller.
    func boundSocket(_ id: FDID) throws -> BoundSocketFD<P> {
        let entry = try lookup(id)
        guard case .boundSocket(let fd) = entry else {
            entry.release()
            throw Errno.EINVAL
        }
        return fd
    }

    /// Stops tracking `id` and hands the table's reference to the caller, who
    /// must release it (outside the table's lock). Nil if unknown.
    func remove(_ id: FDID) -> FDEntry<P>? {
        mutex.withLock { entries.removeValue(forKey: id) }
    }

    /// Every bound-socket FD, each with a reference for the caller (so a
    /// concurrent Close cannot close the socket under the caller).
    func retainBoundSockets() -> [BoundSocketFD<P>] {
        mutex.withLock {
            entries.values.compactMap { entry in
                guard case .boundSocket(let fd) = entry else { return nil }
                fd.retain()
                return fd
            }
        }
    }

    /// Empties the table (connection teardown); the caller releases the entries.
    func removeAll() -> [FDEntry<P>] {
        mutex.withLock {
            let all = Array(entries.values)
            entries.removeAll()
            return all
        }
    }
}
