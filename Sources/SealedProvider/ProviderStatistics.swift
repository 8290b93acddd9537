import Lisafs

/// Counters of what the data path did, for tests, benchmarks and logs.
public struct SealedProviderStatistics: Equatable, Sendable {
    /// Commits handed to the store (each atomic).
    public var commits = 0
    /// Chunks those commits carried.
    public var chunksCommitted = 0
    /// Commit checks answered by one fstat (nothing changed).
    public var unchangedChecks = 0
    /// Scratch scans (every chunk read and hashed).
    public var scans = 0
    /// Scratches filled with decrypted plaintext (cache misses).
    public var scratchFills = 0
    /// Opens that found the file's scratch already there (including cached ones).
    public var scratchReuses = 0
    /// Files given the RPC path instead of a scratch.
    public var directLoads = 0
    /// Commits that failed (the data stayed for a later one).
    public var failedCommits = 0

    public init() {}
}

/// Thread-safe holder of the counters.
final class StatisticsCounter: @unchecked Sendable {
    private let lock = Mutex()
    private var values = SealedProviderStatistics()

    func update(_ body: (inout SealedProviderStatistics) -> Void) { lock.withLock { body(&values) } }
    var snapshot: SealedProviderStatistics { lock.withLock { values } }
}
