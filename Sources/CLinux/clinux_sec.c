#define _GNU_SOURCE
#include "clinux_sec.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

// MARK: syscall names

// One entry per syscall of the build architecture, generated from the kernel
// UAPI headers of Debian 12 (asm/unistd_64.h for x86_64; asm-generic/unistd.h
// as arm64 configures it). The lists are per architecture because an X-macro
// cannot hold #ifdef guards.
struct clinux_syscall_entry { const char *name; int nr; };
#define S(name) { #name, __NR_##name },

#if defined(__x86_64__)
#define CLINUX_SYSCALLS \
    S(_sysctl) S(accept) S(accept4) S(access) S(acct) S(add_key) S(adjtimex) S(afs_syscall) \
    S(alarm) S(arch_prctl) S(bind) S(bpf) S(brk) S(capget) S(capset) S(chdir) S(chmod) S(chown) \
    S(chroot) S(clock_adjtime) S(clock_getres) S(clock_gettime) S(clock_nanosleep) S(clock_settime) \
    S(clone) S(clone3) S(close) S(close_range) S(connect) S(copy_file_range) S(creat) \
    S(create_module) S(delete_module) S(dup) S(dup2) S(dup3) S(epoll_create) S(epoll_create1) \
    S(epoll_ctl) S(epoll_ctl_old) S(epoll_pwait) S(epoll_pwait2) S(epoll_wait) S(epoll_wait_old) \
    S(eventfd) S(eventfd2) S(execve) S(execveat) S(exit) S(exit_group) S(faccessat) S(faccessat2) \
    S(fadvise64) S(fallocate) S(fanotify_init) S(fanotify_mark) S(fchdir) S(fchmod) S(fchmodat) \
    S(fchown) S(fchownat) S(fcntl) S(fdatasync) S(fgetxattr) S(finit_module) S(flistxattr) S(flock) \
    S(fork) S(fremovexattr) S(fsconfig) S(fsetxattr) S(fsmount) S(fsopen) S(fspick) S(fstat) \
    S(fstatfs) S(fsync) S(ftruncate) S(futex) S(futex_waitv) S(futimesat) S(get_kernel_syms) \
    S(get_mempolicy) S(get_robust_list) S(get_thread_area) S(getcpu) S(getcwd) S(getdents) \
    S(getdents64) S(getegid) S(geteuid) S(getgid) S(getgroups) S(getitimer) S(getpeername) \
    S(getpgid) S(getpgrp) S(getpid) S(getpmsg) S(getppid) S(getpriority) S(getrandom) S(getresgid) \
    S(getresuid) S(getrlimit) S(getrusage) S(getsid) S(getsockname) S(getsockopt) S(gettid) \
    S(gettimeofday) S(getuid) S(getxattr) S(init_module) S(inotify_add_watch) S(inotify_init) \
    S(inotify_init1) S(inotify_rm_watch) S(io_cancel) S(io_destroy) S(io_getevents) \
    S(io_pgetevents) S(io_setup) S(io_submit) S(io_uring_enter) S(io_uring_register) \
    S(io_uring_setup) S(ioctl) S(ioperm) S(iopl) S(ioprio_get) S(ioprio_set) S(kcmp) \
    S(kexec_file_load) S(kexec_load) S(keyctl) S(kill) S(landlock_add_rule) \
    S(landlock_create_ruleset) S(landlock_restrict_self) S(lchown) S(lgetxattr) S(link) S(linkat) \
    S(listen) S(listxattr) S(llistxattr) S(lookup_dcookie) S(lremovexattr) S(lseek) S(lsetxattr) \
    S(lstat) S(madvise) S(mbind) S(membarrier) S(memfd_create) S(memfd_secret) S(migrate_pages) \
    S(mincore) S(mkdir) S(mkdirat) S(mknod) S(mknodat) S(mlock) S(mlock2) S(mlockall) S(mmap) \
    S(modify_ldt) S(mount) S(mount_setattr) S(move_mount) S(move_pages) S(mprotect) \
    S(mq_getsetattr) S(mq_notify) S(mq_open) S(mq_timedreceive) S(mq_timedsend) S(mq_unlink) \
    S(mremap) S(msgctl) S(msgget) S(msgrcv) S(msgsnd) S(msync) S(munlock) S(munlockall) S(munmap) \
    S(name_to_handle_at) S(nanosleep) S(newfstatat) S(nfsservctl) S(open) S(open_by_handle_at) \
    S(open_tree) S(openat) S(openat2) S(pause) S(perf_event_open) S(personality) S(pidfd_getfd) \
    S(pidfd_open) S(pidfd_send_signal) S(pipe) S(pipe2) S(pivot_root) S(pkey_alloc) S(pkey_free) \
    S(pkey_mprotect) S(poll) S(ppoll) S(prctl) S(pread64) S(preadv) S(preadv2) S(prlimit64) \
    S(process_madvise) S(process_mrelease) S(process_vm_readv) S(process_vm_writev) S(pselect6) \
    S(ptrace) S(putpmsg) S(pwrite64) S(pwritev) S(pwritev2) S(query_module) S(quotactl) \
    S(quotactl_fd) S(read) S(readahead) S(readlink) S(readlinkat) S(readv) S(reboot) S(recvfrom) \
    S(recvmmsg) S(recvmsg) S(remap_file_pages) S(removexattr) S(rename) S(renameat) S(renameat2) \
    S(request_key) S(restart_syscall) S(rmdir) S(rseq) S(rt_sigaction) S(rt_sigpending) \
    S(rt_sigprocmask) S(rt_sigqueueinfo) S(rt_sigreturn) S(rt_sigsuspend) S(rt_sigtimedwait) \
    S(rt_tgsigqueueinfo) S(sched_get_priority_max) S(sched_get_priority_min) S(sched_getaffinity) \
    S(sched_getattr) S(sched_getparam) S(sched_getscheduler) S(sched_rr_get_interval) \
    S(sched_setaffinity) S(sched_setattr) S(sched_setparam) S(sched_setscheduler) S(sched_yield) \
    S(seccomp) S(security) S(select) S(semctl) S(semget) S(semop) S(semtimedop) S(sendfile) \
    S(sendmmsg) S(sendmsg) S(sendto) S(set_mempolicy) S(set_mempolicy_home_node) S(set_robust_list) \
    S(set_thread_area) S(set_tid_address) S(setdomainname) S(setfsgid) S(setfsuid) S(setgid) \
    S(setgroups) S(sethostname) S(setitimer) S(setns) S(setpgid) S(setpriority) S(setregid) \
    S(setresgid) S(setresuid) S(setreuid) S(setrlimit) S(setsid) S(setsockopt) S(settimeofday) \
    S(setuid) S(setxattr) S(shmat) S(shmctl) S(shmdt) S(shmget) S(shutdown) S(sigaltstack) \
    S(signalfd) S(signalfd4) S(socket) S(socketpair) S(splice) S(stat) S(statfs) S(statx) \
    S(swapoff) S(swapon) S(symlink) S(symlinkat) S(sync) S(sync_file_range) S(syncfs) S(sysfs) \
    S(sysinfo) S(syslog) S(tee) S(tgkill) S(time) S(timer_create) S(timer_delete) \
    S(timer_getoverrun) S(timer_gettime) S(timer_settime) S(timerfd_create) S(timerfd_gettime) \
    S(timerfd_settime) S(times) S(tkill) S(truncate) S(tuxcall) S(umask) S(umount2) S(uname) \
    S(unlink) S(unlinkat) S(unshare) S(uselib) S(userfaultfd) S(ustat) S(utime) S(utimensat) \
    S(utimes) S(vfork) S(vhangup) S(vmsplice) S(vserver) S(wait4) S(waitid) S(write) S(writev)
#define CLINUX_AUDIT_ARCH AUDIT_ARCH_X86_64
#define CLINUX_X32_BIT 0x40000000u
#elif defined(__aarch64__)
#define CLINUX_SYSCALLS \
    S(accept) S(accept4) S(acct) S(add_key) S(adjtimex) S(bind) S(bpf) S(brk) S(capget) S(capset) \
    S(chdir) S(chroot) S(clock_adjtime) S(clock_getres) S(clock_gettime) S(clock_nanosleep) \
    S(clock_settime) S(clone) S(clone3) S(close) S(close_range) S(connect) S(copy_file_range) \
    S(delete_module) S(dup) S(dup3) S(epoll_create1) S(epoll_ctl) S(epoll_pwait) S(epoll_pwait2) \
    S(eventfd2) S(execve) S(execveat) S(exit) S(exit_group) S(faccessat) S(faccessat2) S(fadvise64) \
    S(fallocate) S(fanotify_init) S(fanotify_mark) S(fchdir) S(fchmod) S(fchmodat) S(fchown) \
    S(fchownat) S(fcntl) S(fdatasync) S(fgetxattr) S(finit_module) S(flistxattr) S(flock) \
    S(fremovexattr) S(fsconfig) S(fsetxattr) S(fsmount) S(fsopen) S(fspick) S(fstat) S(fstatfs) \
    S(fsync) S(ftruncate) S(futex) S(futex_waitv) S(get_mempolicy) S(get_robust_list) S(getcpu) \
    S(getcwd) S(getdents64) S(getegid) S(geteuid) S(getgid) S(getgroups) S(getitimer) \
    S(getpeername) S(getpgid) S(getpid) S(getppid) S(getpriority) S(getrandom) S(getresgid) \
    S(getresuid) S(getrlimit) S(getrusage) S(getsid) S(getsockname) S(getsockopt) S(gettid) \
    S(gettimeofday) S(getuid) S(getxattr) S(init_module) S(inotify_add_watch) S(inotify_init1) \
    S(inotify_rm_watch) S(io_cancel) S(io_destroy) S(io_getevents) S(io_pgetevents) S(io_setup) \
    S(io_submit) S(io_uring_enter) S(io_uring_register) S(io_uring_setup) S(ioctl) S(ioprio_get) \
    S(ioprio_set) S(kcmp) S(kexec_file_load) S(kexec_load) S(keyctl) S(kill) S(landlock_add_rule) \
    S(landlock_create_ruleset) S(landlock_restrict_self) S(lgetxattr) S(linkat) S(listen) \
    S(listxattr) S(llistxattr) S(lookup_dcookie) S(lremovexattr) S(lseek) S(lsetxattr) S(madvise) \
    S(mbind) S(membarrier) S(memfd_create) S(migrate_pages) S(mincore) S(mkdirat) S(mknodat) \
    S(mlock) S(mlock2) S(mlockall) S(mmap) S(mount) S(mount_setattr) S(move_mount) S(move_pages) \
    S(mprotect) S(mq_getsetattr) S(mq_notify) S(mq_open) S(mq_timedreceive) S(mq_timedsend) \
    S(mq_unlink) S(mremap) S(msgctl) S(msgget) S(msgrcv) S(msgsnd) S(msync) S(munlock) \
    S(munlockall) S(munmap) S(name_to_handle_at) S(nanosleep) S(newfstatat) S(nfsservctl) \
    S(open_by_handle_at) S(open_tree) S(openat) S(openat2) S(perf_event_open) S(personality) \
    S(pidfd_getfd) S(pidfd_open) S(pidfd_send_signal) S(pipe2) S(pivot_root) S(pkey_alloc) \
    S(pkey_free) S(pkey_mprotect) S(ppoll) S(prctl) S(pread64) S(preadv) S(preadv2) S(prlimit64) \
    S(process_madvise) S(process_mrelease) S(process_vm_readv) S(process_vm_writev) S(pselect6) \
    S(ptrace) S(pwrite64) S(pwritev) S(pwritev2) S(quotactl) S(quotactl_fd) S(read) S(readahead) \
    S(readlinkat) S(readv) S(reboot) S(recvfrom) S(recvmmsg) S(recvmsg) S(remap_file_pages) \
    S(removexattr) S(renameat) S(renameat2) S(request_key) S(restart_syscall) S(rseq) \
    S(rt_sigaction) S(rt_sigpending) S(rt_sigprocmask) S(rt_sigqueueinfo) S(rt_sigreturn) \
    S(rt_sigsuspend) S(rt_sigtimedwait) S(rt_tgsigqueueinfo) S(sched_get_priority_max) \
    S(sched_get_priority_min) S(sched_getaffinity) S(sched_getattr) S(sched_getparam) \
    S(sched_getscheduler) S(sched_rr_get_interval) S(sched_setaffinity) S(sched_setattr) \
    S(sched_setparam) S(sched_setscheduler) S(sched_yield) S(seccomp) S(semctl) S(semget) S(semop) \
    S(semtimedop) S(sendfile) S(sendmmsg) S(sendmsg) S(sendto) S(set_mempolicy) \
    S(set_mempolicy_home_node) S(set_robust_list) S(set_tid_address) S(setdomainname) S(setfsgid) \
    S(setfsuid) S(setgid) S(setgroups) S(sethostname) S(setitimer) S(setns) S(setpgid) \
    S(setpriority) S(setregid) S(setresgid) S(setresuid) S(setreuid) S(setrlimit) S(setsid) \
    S(setsockopt) S(settimeofday) S(setuid) S(setxattr) S(shmat) S(shmctl) S(shmdt) S(shmget) \
    S(shutdown) S(sigaltstack) S(signalfd4) S(socket) S(socketpair) S(splice) S(statfs) S(statx) \
    S(swapoff) S(swapon) S(symlinkat) S(sync) S(sync_file_range) S(syncfs) S(sysinfo) S(syslog) \
    S(tee) S(tgkill) S(timer_create) S(timer_delete) S(timer_getoverrun) S(timer_gettime) \
    S(timer_settime) S(timerfd_create) S(timerfd_gettime) S(timerfd_settime) S(times) S(tkill) \
    S(truncate) S(umask) S(umount2) S(uname) S(unlinkat) S(unshare) S(userfaultfd) S(utimensat) \
    S(vhangup) S(vmsplice) S(wait4) S(waitid) S(write) S(writev)
#define CLINUX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define CLINUX_X32_BIT 0u
#else
#define CLINUX_SYSCALLS
#define CLINUX_AUDIT_ARCH 0u
#define CLINUX_X32_BIT 0u
#endif

static const struct clinux_syscall_entry clinux_syscalls[] = { CLINUX_SYSCALLS { 0, -1 } };
#undef S

int clinux_syscall_number(const char *name) {
    for (const struct clinux_syscall_entry *e = clinux_syscalls; e->name; e++) {
        if (strcmp(e->name, name) == 0) return e->nr;
    }
    return -1;
}

const char *clinux_syscall_name(int nr) {
    for (const struct clinux_syscall_entry *e = clinux_syscalls; e->name; e++) {
        if (e->nr == nr) return e->name;
    }
    return NULL;
}

uint32_t clinux_audit_arch(void) { return CLINUX_AUDIT_ARCH; }
uint32_t clinux_x32_syscall_bit(void) { return CLINUX_X32_BIT; }

// MARK: seccomp

int clinux_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

int clinux_get_no_new_privs(void) {
    int r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    return r < 0 ? -errno : r;
}

int clinux_seccomp_mode(void) {
    int r = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    return r < 0 ? -errno : r;
}

int clinux_seccomp_install(const clinux_bpf_insn *insns, uint16_t count, int all_threads) {
    _Static_assert(sizeof(clinux_bpf_insn) == sizeof(struct sock_filter), "sock_filter layout");
    // Without no_new_privs an unprivileged process may not install a filter,
    // and a privileged one could still gain privileges through exec.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)insns };
    unsigned int flags = all_threads ? SECCOMP_FILTER_FLAG_TSYNC : 0;
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r < 0) return -errno;
    return (int)r; // > 0 only with TSYNC: the thread that could not be synchronised
}

// Async-signal-safe: only write(2), _exit(2) and reads of the static table.
static void clinux_sigsys_report(int sig, siginfo_t *info, void *context) {
    (void)sig; (void)context;
    char buf[128];
    size_t n = 0;
    const char *prefix = "seccomp: blocked syscall ";
    for (const char *p = prefix; *p && n < sizeof buf; p++) buf[n++] = *p;
    const char *name = clinux_syscall_name(info->si_syscall);
    for (const char *p = name ? name : "?"; *p && n < 80; p++) buf[n++] = *p;
    buf[n++] = ' ';
    buf[n++] = '(';
    char digits[12];
    int d = 0;
    unsigned int v = (unsigned int)info->si_syscall;
    do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v && d < 11);
    while (d) buf[n++] = digits[--d];
    buf[n++] = ')';
    buf[n++] = '\n';
    ssize_t ignored = write(2, buf, n);
    (void)ignored;
    _exit(128 + SIGSYS);
}

int clinux_install_sigsys_reporter(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = clinux_sigsys_report;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSYS, &sa, NULL) == 0 ? 0 : -errno;
}

// MARK: core dumps

int clinux_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0) == 0 ? 0 : -errno;
}

int clinux_get_dumpable(void) {
    int r = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    return r < 0 ? -errno : r;
}

int clinux_disable_core_rlimit(void) {
    struct rlimit none = { 0, 0 };
    return setrlimit(RLIMIT_CORE, &none) == 0 ? 0 : -errno;
}

int clinux_get_core_rlimit(uint64_t *soft, uint64_t *hard) {
    struct rlimit current;
    if (getrlimit(RLIMIT_CORE, &current) != 0) return -errno;
    *soft = (uint64_t)current.rlim_cur;
    *hard = (uint64_t)current.rlim_max;
    return 0;
}

// MARK: capabilities

// glibc has no capget/capset wrappers; version 3 uses two 32-bit words per set.
int clinux_capget(uint64_t *effective, uint64_t *permitted, uint64_t *inheritable) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    *effective = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
    *permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    *inheritable = (uint64_t)data[0].inheritable | ((uint64_t)data[1].inheritable << 32);
    return 0;
}

int clinux_capset(uint64_t effective, uint64_t permitted, uint64_t inheritable) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    data[0].effective = (uint32_t)effective;
    data[1].effective = (uint32_t)(effective >> 32);
    data[0].permitted = (uint32_t)permitted;
    data[1].permitted = (uint32_t)(permitted >> 32);
    data[0].inheritable = (uint32_t)inheritable;
    data[1].inheritable = (uint32_t)(inheritable >> 32);
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

int clinux_capbset_drop(int cap) {
    return prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 ? 0 : -errno;
}

int clinux_capbset_read(int cap) {
    int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    return r < 0 ? -errno : r;
}

int clinux_cap_ambient_clear_all(void) {
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0 ? 0 : -errno;
}
