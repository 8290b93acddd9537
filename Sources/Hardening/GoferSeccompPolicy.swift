#if canImport(Glibc)
import Glibc
#endif

/// The gofer's seccomp policy: what a lisafs server over an AF_UNIX socket
/// needs once its sockets, store and threads are set up. Checked against the
/// server branch's tests and the gVisor-client interop suite (28/28 pass with
/// the filter in kill mode); re-check once the sealed store serves, by running
/// with `SeccompFilter.gofer(action: .log)` and reading `dmesg` for
/// "type=1326 … syscall=N". Start-up-only syscalls
/// (execve, arch_prctl, sched_getaffinity, readlink of /proc/self/exe …) are
/// deliberately absent, so install it after start-up.
extension SeccompFilter {
    public static let goferAllowlist: [Syscall] = [
        // File I/O on descriptors the gofer already holds.
        .read, .write, .readv, .writev, .pread64, .pwrite64, .preadv, .pwritev, .preadv2, .pwritev2,
        .lseek, .close, .dup, .dup3,
        .fstat, .newfstatat, .statx, .fstatfs,
        .ftruncate, .fallocate, .fsync, .fdatasync,
        // SealedProvider: an FSync after non-durable commits syncs the store's filesystem.
        .syncfs,
        .fchmod, .fchmodat, .fchown, .fchownat, .utimensat,
        .fgetxattr, .fsetxattr, .flistxattr, .fremovexattr,
        // Path xattr calls: HostProvider reaches O_PATH nodes through
        // /proc/self/fd/N, where the f*xattr calls refuse to work.
        .getxattr, .setxattr, .listxattr, .removexattr,
        // Directory operations relative to a held directory fd (no absolute paths needed).
        .openat, .getdents64, .mkdirat, .mknodat, .symlinkat, .linkat, .readlinkat,
        .unlinkat, .renameat, .renameat2,
        // The donated data channel and FD passing.
        .memfd_create, .recvmsg, .sendmsg, .recvfrom, .sendto, .shutdown,
        // Waiting.
        .futex, .ppoll, .poll, .epoll_create1, .epoll_ctl, .epoll_wait, .epoll_pwait, .eventfd2,
        .nanosleep, .clock_nanosleep, .sched_yield, .restart_syscall,
        // libdispatch's event loop (its worker-pool monitor runs on a timerfd),
        // started by DispatchQueue.concurrentPerform in the sealed file code.
        .timerfd_create, .timerfd_settime, .timerfd_gettime,
        // Memory (Swift runtime, malloc, thread stacks).
        .mmap, .munmap, .mprotect, .madvise, .mremap, .brk,
        // Key pages: the sealed store locks them (sodium_mlock / sodium_malloc).
        .mlock, .mlock2, .munlock,
        // Threads and signals (thread creation itself is a rule on clone).
        .set_robust_list, .rseq, .exit, .exit_group, .gettid, .getpid,
        .rt_sigaction, .rt_sigprocmask, .rt_sigreturn, .sigaltstack,
        // sigwait in `serve --store`'s signal thread (commit on SIGTERM/SIGINT/SIGHUP).
        .rt_sigtimedwait,
        // Time and randomness.
        .clock_gettime, .clock_getres, .gettimeofday, .getrandom,
        // Listening socket for new connections (ConnectWithCreds / Channel setup).
        .bind, .listen, .accept4, .connect,
    ]

    /// Argument-checked rules: only the fcntl commands the gofer uses, clone
    /// only for threads, sockets only AF_UNIX, tgkill only into this process.
    /// `processID` defaults to the calling process (the filter's owner).
    public static func goferRules(processID: Int32 = getpid()) -> [SyscallRule] {
        var rules: [SyscallRule] = []
        rules += SyscallRule.allow(.fcntl, argument: 1, oneOf: [
            1, // F_GETFD
            2, // F_SETFD
            3, // F_GETFL
            4, // F_SETFL
            1030, // F_DUPFD_CLOEXEC
            1033, // F_ADD_SEALS (memfd data channel)
            1034, // F_GET_SEALS
        ])
        // clone3 passes its flags in memory a filter cannot read; ENOSYS makes
        // glibc (2.34+) fall back to clone, whose flags register we can check.
        rules.append(.respond(to: .clone3, with: .errno(38))) // ENOSYS
        rules.append(SyscallRule(.clone, when: [.hasAllBits(0, 0x0001_0000)])) // CLONE_THREAD: threads, never processes
        rules.append(SyscallRule(.socket, when: [.equals(0, int: 1)])) // AF_UNIX
        rules.append(SyscallRule(.socketpair, when: [.equals(0, int: 1)])) // AF_UNIX
        // abort()/raise() signal the own process; nothing else may be signalled.
        rules.append(SyscallRule(.tgkill, when: [.equals(0, int: processID)]))
        // libdispatch's worker threads (DispatchQueue.concurrentPerform, used to
        // seal and open large files in parallel) renice themselves. Only
        // PRIO_PROCESS; without CAP_SYS_NICE nothing can gain priority.
        rules.append(SyscallRule(.setpriority, when: [.equals(0, int: 0)])) // PRIO_PROCESS
        rules += SyscallRule.allow(.prctl, argument: 0, oneOf: [
            15, // PR_SET_NAME (pthread_setname_np on self)
            16, // PR_GET_NAME
            21, // PR_GET_SECCOMP (SeccompFilter.isActiveOnCurrentThread)
        ])
        return rules
    }

    /// The gofer policy as one filter.
    public static func gofer(action onViolation: SeccompAction = .killProcess) -> SeccompFilter {
        SeccompFilter(allowing: goferAllowlist, rules: goferRules(), action: onViolation)
    }
}
