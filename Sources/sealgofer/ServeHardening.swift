import Foundation
import Hardening
import Logging

/// The process hardening of `sealgofer serve`, in two steps:
///
/// 1. `beforeStart()`, first thing, while the process is single-threaded:
///    core dumps off (PR_SET_DUMPABLE 0, RLIMIT_CORE 0) before any key is read,
///    and every capability dropped except `keptCapabilities`.
/// 2. `lockDown(...)`, once keys are unwrapped, the store, scratch and
///    socket are open and logging is set up: the seccomp allowlist
///    (`SeccompFilter.gofer`), synchronised to every thread already running.
enum ServeHardening {
    /// What seccomp does to a syscall outside the allowlist.
    enum SeccompMode: String {
        /// Kill the whole process with SIGSYS (the default).
        case kill
        /// Let it run and record it in the kernel log ("audit: type=1326 ...
        /// syscall=N"): for finding what the allowlist lacks. Debugging only.
        case log
        /// No filter at all (`--no-seccomp`). Debugging only.
        case off

        /// `SEALGOFER_SECCOMP=log|kill` in the environment sets the mode for
        /// gofers started by test suites that cannot pass flags (the interop
        /// program); the flags win. `off` is accepted only as a flag.
        static func resolve(noSeccomp: Bool, seccompLog: Bool,
                            environment: [String: String] = ProcessInfo.processInfo.environment) -> SeccompMode {
            if noSeccomp { return .off }
            if seccompLog { return .log }
            if let value = environment["SEALGOFER_SECCOMP"], let mode = SeccompMode(rawValue: value), mode != .off {
                return mode
            }
            return .kill
        }
    }

    /// What the gofer keeps when started as root: it serves files of any owner
    /// and mirrors the client's chmod/chown/utimes onto host files (HostProvider)
    /// or onto the ciphertext files (SealedProvider: fchmodat through
    /// /proc/self/fd, fchown, utimensat), creates files owned by the client's
    /// uid/gid, and keeps set-id bits through those (CAP_FSETID). Nothing else:
    /// no CAP_SYS_ADMIN, CAP_SETUID, CAP_IPC_LOCK (key pages are mlocked within
    /// RLIMIT_MEMLOCK), CAP_SYS_RESOURCE, CAP_MKNOD (device nodes are refused).
    static let keptCapabilities: Set<Capability> = Capability.goferDefaults

    /// Core dumps off and capabilities dropped. Must run before any thread
    /// starts (capabilities are per thread); fails loudly otherwise.
    static func beforeStart() throws {
        try Hardening.disableCoreDumps()
        try Hardening.dropCapabilities(keeping: keptCapabilities)
    }

    /// Installs the allowlist (unless `mode` is `.off`). With
    /// `forbiddenSyscallProbe` the process then makes one syscall the
    /// allowlist lacks (uname), which must kill it in `.kill` mode: the
    /// end-to-end proof used by the tests.
    static func lockDown(mode: SeccompMode, forbiddenSyscallProbe: Bool, logger: Logger) throws {
        switch mode {
        case .off:
            logger.warning("seccomp disabled (--no-seccomp): debugging only")
        case .kill, .log:
            let filter = SeccompFilter.gofer(action: mode == .kill ? .killProcess : .log)
            try filter.install(allThreads: true, logger: logger)
            if mode == .log {
                logger.warning("seccomp in log mode: forbidden syscalls run and are logged by the kernel (type=1326)")
            }
        }
        if forbiddenSyscallProbe {
            logger.notice("debug: making a forbidden syscall (uname)")
            var names = utsname()
            _ = uname(&names)
            logger.notice("debug: survived the forbidden syscall")
        }
    }
}
