import CLinux

extension Hardening {
    /// Keeps key material out of core files and away from same-uid ptrace:
    /// PR_SET_DUMPABLE 0 (no core dump, /proc/self/* owned by root, ptrace
    /// attach needs CAP_SYS_PTRACE) and RLIMIT_CORE 0/0 (covers a core_pattern
    /// pipe helper too, and survives exec). Note: with dumpable 0, a non-root
    /// gofer can no longer open its own /proc/self/fd entries by path.
    public static func disableCoreDumps() throws {
        try check("setrlimit(RLIMIT_CORE)", clinux_disable_core_rlimit())
        try check("prctl(PR_SET_DUMPABLE)", clinux_set_dumpable(0))
    }

    /// Whether the process is currently dumpable (PR_GET_DUMPABLE != 0).
    public static var isDumpable: Bool {
        get throws { try check("prctl(PR_GET_DUMPABLE)", clinux_get_dumpable()) != 0 }
    }

    /// The current RLIMIT_CORE (soft, hard), in bytes.
    public static func coreDumpLimit() throws -> (soft: UInt64, hard: UInt64) {
        var soft: UInt64 = 0
        var hard: UInt64 = 0
        try check("getrlimit(RLIMIT_CORE)", clinux_get_core_rlimit(&soft, &hard))
        return (soft, hard)
    }
}
