import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Landlock (Linux ≥ 5.13): the process gives up filesystem access outside a
/// few directories. Unlike seccomp it restricts *which files* can be opened,
/// created, renamed or removed, whatever the path or held directory FD used;
/// descriptors opened before keep working. The kernel applies it to the
/// calling thread and the threads it starts afterwards (no TSYNC before ABI 8);
/// `restrictProcess` reaches the other threads too.
public enum Landlock {
    /// Filesystem rights, as the kernel numbers them (LANDLOCK_ACCESS_FS_*).
    public struct Access: OptionSet, Sendable {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        public static let execute = Access(rawValue: 1 << 0)
        public static let writeFile = Access(rawValue: 1 << 1)
        public static let readFile = Access(rawValue: 1 << 2)
        public static let readDir = Access(rawValue: 1 << 3)
        public static let removeDir = Access(rawValue: 1 << 4)
        public static let removeFile = Access(rawValue: 1 << 5)
        public static let makeChar = Access(rawValue: 1 << 6)
        public static let makeDir = Access(rawValue: 1 << 7)
        public static let makeReg = Access(rawValue: 1 << 8)
        public static let makeSock = Access(rawValue: 1 << 9)
        public static let makeFifo = Access(rawValue: 1 << 10)
        public static let makeBlock = Access(rawValue: 1 << 11)
        public static let makeSym = Access(rawValue: 1 << 12)
        /// ABI 2: rename/link across directories.
        public static let refer = Access(rawValue: 1 << 13)
        /// ABI 3: truncate/ftruncate/O_TRUNC.
        public static let truncate = Access(rawValue: 1 << 14)
        /// ABI 5: ioctl on device files.
        public static let ioctlDev = Access(rawValue: 1 << 15)

        /// Every right the kernel of `abi` knows, so that none is left unhandled.
        public static func handled(abi: Int) -> Access {
            var all = Access(rawValue: (1 << 13) - 1)
            if abi >= 2 { all.insert(.refer) }
            if abi >= 3 { all.insert(.truncate) }
            if abi >= 5 { all.insert(.ioctlDev) }
            return all
        }

        /// What a served tree, store or scratch directory needs: everything but
        /// executing files, making device nodes and device ioctls (the server
        /// never creates or opens devices).
        public static func readWrite(abi: Int) -> Access {
            handled(abi: abi).subtracting([.execute, .makeChar, .makeBlock, .ioctlDev])
        }

        public static let readOnly: Access = [.readFile, .readDir]
    }

    /// What the Swift runtime itself reads while serving, granted read-only:
    /// libdispatch's worker-pool monitor opens /proc/<tid>/stat of its
    /// workers every second while work is queued, and kills the process if
    /// that fails. /proc/<tid> is not beneath /proc/self, hence all of /proc.
    /// Without CAP_SYS_PTRACE the gofer still cannot read the memory or
    /// environment of processes holding capabilities it lacks.
    public static let runtimeReadOnly = ["/proc"]

    /// The kernel's Landlock ABI version, or nil if Landlock is not available
    /// (not built in, or not enabled in the `lsm=` list).
    public static var abi: Int? {
        let version = clinux_landlock_abi()
        return version > 0 ? Int(version) : nil
    }

    /// One directory (or file) and the rights granted beneath it.
    public struct Rule {
        public var descriptor: Int32
        public var access: Access
        public init(descriptor: Int32, access: Access) {
            self.descriptor = descriptor
            self.access = access
        }
    }

    /// Restricts the calling thread (and threads it starts later) to `rules`:
    /// every other path is denied every handled right (EACCES). Needs
    /// no_new_privs (set by `dropCapabilities`) or CAP_SYS_ADMIN. Returns the
    /// ABI used; throws `.systemCall("landlock", ENOSYS/EOPNOTSUPP)` when the
    /// kernel has no Landlock.
    @discardableResult
    public static func restrictThread(to rules: [Rule]) throws -> Int {
        let (abi, ruleset) = try makeRuleset(rules)
        defer { _ = Glibc.close(ruleset) }
        try check("landlock_restrict_self", clinux_landlock_restrict_self(ruleset))
        return abi
    }

    /// What `restrictProcess` did.
    public struct ProcessRestriction: Sendable {
        public var abi: Int
        /// Threads found (the caller included).
        public var threads: Int
        /// Threads that had not restricted themselves when it returned: they
        /// block the signal (and will restrict themselves when they unblock
        /// it) or their landlock_restrict_self failed.
        public var unconfirmed: Int
    }

    /// `restrictThread` for every thread of the process: the others are
    /// signalled (a real-time signal whose handler restricts its own thread),
    /// then the caller restricts itself. Threads started afterwards inherit
    /// their creator's restriction. The ruleset descriptor stays open for
    /// threads that block the signal now and take it later.
    public static func restrictProcess(to rules: [Rule], timeoutMilliseconds: Int32 = 1000) throws -> ProcessRestriction {
        let (abi, ruleset) = try makeRuleset(rules)
        var threads: Int32 = 0
        var unconfirmed: Int32 = 0
        let result = clinux_landlock_restrict_all_threads(ruleset, timeoutMilliseconds, &threads, &unconfirmed)
        if result < 0 { _ = Glibc.close(ruleset) }
        try check("landlock_restrict_self (all threads)", result)
        return ProcessRestriction(abi: abi, threads: Int(threads), unconfirmed: Int(unconfirmed))
    }

    private static func makeRuleset(_ rules: [Rule]) throws -> (abi: Int, fd: Int32) {
        guard let abi else {
            throw HardeningError.systemCall("landlock_create_ruleset", errno: -min(clinux_landlock_abi(), -1))
        }
        let handled = Access.handled(abi: abi)
        let ruleset = try check("landlock_create_ruleset", clinux_landlock_create_ruleset(handled.rawValue))
        do {
            for rule in rules {
                try check("landlock_add_rule", clinux_landlock_allow_beneath(ruleset, rule.descriptor, rule.access.intersection(handled).rawValue))
            }
        } catch {
            _ = Glibc.close(ruleset)
            throw error
        }
        return (abi, ruleset)
    }

    /// `path` opened for use as a rule's directory (O_PATH: no read access
    /// needed); close it after `restrictThread`.
    public static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, clinux_O_PATH | O_CLOEXEC)
        guard fd >= 0 else { throw HardeningError.systemCall("open \(path)", errno: errno) }
        return fd
    }
}
