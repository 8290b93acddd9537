/// What the kernel does with a syscall, as a seccomp filter return value.
public enum SeccompAction: Hashable, Sendable {
    /// Let the syscall run.
    case allow
    /// Kill the whole process with SIGSYS (kernel 4.14+). The default for violations:
    /// a compromised gofer thread must not survive by having only itself killed.
    case killProcess
    /// Kill only the calling thread.
    case killThread
    /// Deliver SIGSYS to the thread (see `SeccompFilter.installViolationReporter()`).
    case trap
    /// Fail the syscall with this errno without running it.
    case errno(Int32)
    /// Let the syscall run but record it in the kernel audit log (kernel 4.14+).
    case log

    /// SECCOMP_RET_* from linux/seccomp.h.
    public var returnValue: UInt32 {
        switch self {
        case .allow: return 0x7fff_0000
        case .killProcess: return 0x8000_0000
        case .killThread: return 0x0000_0000
        case .trap: return 0x0003_0000
        case .errno(let e): return 0x0005_0000 | (UInt32(truncatingIfNeeded: e) & 0xffff)
        case .log: return 0x7ffc_0000
        }
    }
}
