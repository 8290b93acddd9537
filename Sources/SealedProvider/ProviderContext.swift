import CLinux
import Glibc
import Lisafs
import Logging
import SealedStore

/// What every `SealedInode` needs from its provider.
final class ProviderContext: @unchecked Sendable {
    let store: SealedStore
    let options: SealedProvider.Options
    let scratch: ScratchSpace
    let registry: InodeRegistry
    let sizes = PlaintextSizeCache()
    /// Fills `sizes` ahead of walks in directories with many misses (nil when the option is off).
    let readAhead: SizeReadAhead?
    let statistics = StatisticsCounter()
    let logger: Logger
    /// /proc/self/fd, for reopening a descriptor with other flags.
    let procSelfFD: Int32
    /// Threads hashing a scan.
    let parallelism: Int
    /// Releases small evicted entries in the background (nil: inline; with the
    /// creation pool off, so that "no pool" is the whole old create path).
    let deferredRelease: DeferredRelease?

    init(store: SealedStore, options: SealedProvider.Options, scratch: ScratchSpace, logger: Logger) throws {
        self.store = store
        self.options = options
        self.scratch = scratch
        self.logger = logger
        registry = InodeRegistry(scratchLimit: options.scratchLimit, maxUnused: options.maxCachedFiles)
        readAhead = options.readAheadSizes ? SizeReadAhead(store: store, sizes: sizes, registry: registry) : nil
        procSelfFD = try Sys.check { clinux_openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | Sys.directory | Sys.closeOnExec, 0) }
        parallelism = max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 4))
        deferredRelease = !options.readonly && options.creationPool > 0 ? DeferredRelease() : nil
    }

    /// Opens the file `fd` refers to again with `flags` (O_CLOEXEC added). The
    /// magic link names the already-resolved file (also an unnamed scratch).
    func reopen(_ fd: Int32, flags: Int32) throws -> Int32 {
        try withCBytes(Array(String(fd).utf8)) { name in
            try Sys.check { clinux_openat(procSelfFD, name, flags | Sys.closeOnExec, 0) }
        }
    }

    func close() { Sys.close(procSelfFD) }
}
