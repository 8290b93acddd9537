import CLinux
#if canImport(Glibc)
import Glibc
#endif

extension Hardening {
    /// Reduces the process to `kept` capabilities for good: every other
    /// capability leaves the bounding set (so no exec can regain it), the
    /// ambient and inheritable sets are emptied, and effective = permitted =
    /// kept ∩ currently permitted, and no_new_privs is set (no exec may gain
    /// privileges, setuid binaries included). Kept capabilities the process does
    /// not hold stay absent. A process holding no capabilities at all (a
    /// non-root gofer) cannot shrink its bounding set; no_new_privs already
    /// makes that set unreachable for it, so it is left alone.
    ///
    /// Capabilities belong to threads, not processes, so this refuses to run
    /// while other threads exist: call it first thing in main, before logging
    /// back-ends, Dispatch or the server start threads.
    @discardableResult
    public static func dropCapabilities(keeping kept: Set<Capability>) throws -> CapabilityState {
        let threads = countThreads()
        if threads > 1 { throw HardeningError.otherThreadsRunning(count: threads) }

        let keptMask = CapabilityState.mask(kept)
        try check("prctl(PR_SET_NO_NEW_PRIVS)", clinux_set_no_new_privs())
        let start = try currentCapabilities()
        let holdsNothing = start.permitted == 0
        // The bounding set first: dropping from it needs CAP_SETPCAP, which the
        // capset below may remove.
        for cap in 0..<lastCapability() + 1 where !holdsNothing && keptMask & (1 << UInt64(cap)) == 0 {
            if try check("prctl(PR_CAPBSET_READ)", clinux_capbset_read(cap)) == 1 {
                try check("prctl(PR_CAPBSET_DROP, \(cap))", clinux_capbset_drop(cap))
            }
        }
        try check("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", clinux_cap_ambient_clear_all())
        let remaining = start.permitted & keptMask
        try check("capset", clinux_capset(remaining, remaining, 0))
        return try currentCapabilities()
    }

    /// The calling thread's capability sets.
    public static func currentCapabilities() throws -> CapabilityState {
        var effective: UInt64 = 0
        var permitted: UInt64 = 0
        var inheritable: UInt64 = 0
        try check("capget", clinux_capget(&effective, &permitted, &inheritable))
        var bounding: UInt64 = 0
        for cap in 0..<lastCapability() + 1 where clinux_capbset_read(cap) == 1 {
            bounding |= 1 << UInt64(cap)
        }
        return CapabilityState(effective: effective, permitted: permitted,
                               inheritable: inheritable, bounding: bounding)
    }

    /// The highest capability number the running kernel knows: PR_CAPBSET_READ
    /// answers EINVAL past it (same as /proc/sys/kernel/cap_last_cap).
    static func lastCapability() -> Int32 {
        var cap: Int32 = 0
        while cap < 63, clinux_capbset_read(cap + 1) >= 0 { cap += 1 }
        return cap
    }

    /// Entries of /proc/self/task; 1 if it cannot be read (not Linux procfs).
    static func countThreads() -> Int {
        guard let dir = opendir("/proc/self/task") else { return 1 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let first = withUnsafeBytes(of: entry.pointee.d_name) { $0.first ?? 0 }
            if first != UInt8(ascii: ".") { count += 1 }
        }
        return max(count, 1)
    }
}
