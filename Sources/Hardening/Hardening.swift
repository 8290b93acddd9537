/// Process-hardening steps for the gofer: seccomp (`SeccompFilter`), core-dump
/// suppression and capability dropping. Each step is explicit so the caller
/// decides the order; the intended order in a gofer's start-up is
/// `disableCoreDumps()` → `dropCapabilities(keeping:)` (while still single-threaded)
/// → open the listening sockets and the store → `SeccompFilter.install()`.
public enum Hardening {}

/// Why a hardening step failed. `errno` values are the kernel's.
public enum HardeningError: Error, Equatable, CustomStringConvertible {
    /// A prctl/seccomp/capset/setrlimit call failed.
    case systemCall(String, errno: Int32)
    /// The filter could not be applied to thread `tid` (SECCOMP_FILTER_FLAG_TSYNC);
    /// nothing was installed.
    case threadNotSynchronised(tid: Int32)
    /// This build's architecture has no seccomp filter support here.
    case unsupportedArchitecture
    /// The BPF program would exceed the kernel's limit or a jump's reach.
    case programTooLarge(String)
    /// A rule names an argument outside 0...5.
    case invalidArgumentIndex(Int)
    /// Capabilities are per thread: dropping them with other threads running
    /// would leave those threads privileged.
    case otherThreadsRunning(count: Int)

    public var description: String {
        switch self {
        case .systemCall(let call, let errno): return "\(call) failed: errno \(errno)"
        case .threadNotSynchronised(let tid): return "seccomp TSYNC failed for thread \(tid)"
        case .unsupportedArchitecture: return "seccomp filters are not supported on this architecture"
        case .programTooLarge(let why): return "seccomp program too large: \(why)"
        case .invalidArgumentIndex(let index): return "syscall argument index \(index) is not in 0...5"
        case .otherThreadsRunning(let count): return "\(count) threads running; drop capabilities before starting threads"
        }
    }
}

/// Maps a C shim's `-errno` convention onto `HardeningError`.
@discardableResult
func check(_ call: String, _ result: Int32) throws -> Int32 {
    if result < 0 { throw HardeningError.systemCall(call, errno: -result) }
    return result
}
