// seccomp, prctl, capabilities (hardening work)
#ifndef CLINUX_SEC_H
#define CLINUX_SEC_H
#include <stdint.h>
#include <sys/types.h>

// Every function returns 0 (or a non-negative value) on success and -errno on
// failure, so Swift never has to read errno across a call boundary.

/// One classic BPF instruction; layout-identical to the kernel's struct sock_filter.
typedef struct {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
} clinux_bpf_insn;

/// The syscall number of `name` on the architecture this was built for, or -1
/// if this architecture has no such syscall (e.g. "open" on aarch64).
int clinux_syscall_number(const char *name);

/// The name of syscall `nr` on this architecture, or NULL.
const char *clinux_syscall_name(int nr);

/// The AUDIT_ARCH_* value seccomp reports for native syscalls of this build
/// (AUDIT_ARCH_X86_64 or AUDIT_ARCH_AARCH64), 0 on an unsupported architecture.
uint32_t clinux_audit_arch(void);

/// The bit that marks x32-ABI syscall numbers on x86_64 (they share
/// AUDIT_ARCH_X86_64, so a filter must reject them by number); 0 elsewhere.
uint32_t clinux_x32_syscall_bit(void);

/// Sets no_new_privs, then installs `insns` as a seccomp filter. With
/// `all_threads` the filter is synchronised to every thread of the process
/// (SECCOMP_FILTER_FLAG_TSYNC); a positive return is then the id of a thread
/// that could not be synchronised (nothing was installed).
int clinux_seccomp_install(const clinux_bpf_insn *insns, uint16_t count, int all_threads);

/// Installs a SIGSYS handler that writes "seccomp: blocked syscall NAME (N)"
/// to stderr and exits with status 159 (128 + SIGSYS). Meant for filters whose
/// violation action is SECCOMP_RET_TRAP, to learn which syscall is missing.
int clinux_install_sigsys_reporter(void);

int clinux_set_no_new_privs(void);
/// 1 if no_new_privs is set, 0 if not, -errno on failure.
int clinux_get_no_new_privs(void);
/// 1 if any seccomp mode is active for this thread, 0 if not.
int clinux_seccomp_mode(void);

int clinux_set_dumpable(int dumpable);
int clinux_get_dumpable(void);
/// Sets RLIMIT_CORE soft and hard limit to 0.
int clinux_disable_core_rlimit(void);
/// Current RLIMIT_CORE soft and hard limit.
int clinux_get_core_rlimit(uint64_t *soft, uint64_t *hard);

/// Capability sets of the calling thread as 64-bit masks (bit n = capability n).
int clinux_capget(uint64_t *effective, uint64_t *permitted, uint64_t *inheritable);
/// Sets the calling thread's capability sets (capabilities are per thread).
int clinux_capset(uint64_t effective, uint64_t permitted, uint64_t inheritable);
/// Drops `cap` from the calling thread's bounding set (needs CAP_SETPCAP).
int clinux_capbset_drop(int cap);
/// 1 if `cap` is in the bounding set, 0 if not, -errno (EINVAL: no such cap).
int clinux_capbset_read(int cap);
/// Empties the ambient capability set.
int clinux_cap_ambient_clear_all(void);

/// The Landlock ABI version the kernel supports (1, 2, …), or -errno
/// (-ENOSYS: not built in, -EOPNOTSUPP: disabled at boot).
int clinux_landlock_abi(void);
/// A new ruleset that handles the filesystem rights `handled_fs`; returns its fd or -errno.
int clinux_landlock_create_ruleset(uint64_t handled_fs);
/// Grants `access` beneath the directory (or file) `parent_fd` (may be O_PATH).
int clinux_landlock_allow_beneath(int ruleset_fd, int parent_fd, uint64_t access);
/// Restricts the calling thread (and threads it starts later) to the ruleset;
/// needs no_new_privs or CAP_SYS_ADMIN.
int clinux_landlock_restrict_self(int ruleset_fd);
/// Restricts every thread of the process to the ruleset: the caller directly,
/// every other thread (found in /proc/self/task, repeatedly, until no new one
/// appears) through a signal (`clinux_landlock_signal()`) whose handler
/// restricts its own thread. Waits up to `timeout_ms` per pass. On success
/// `threads` is the number of threads seen and `unconfirmed` how many have not
/// restricted themselves yet (they block the signal, or failed). Keep
/// `ruleset_fd` open: a thread that unblocks the signal later uses it then.
int clinux_landlock_restrict_all_threads(int ruleset_fd, int timeout_ms, int *threads, int *unconfirmed);
/// The real-time signal used by clinux_landlock_restrict_all_threads.
int clinux_landlock_signal(void);

/// Forks a helper that waits until this process has exited (EOF on a pipe
/// whose write end only this process holds), then unlinks `name` in `dirfd`
/// if it is still the socket with that device and inode. Call before the
/// seccomp filter (it forbids fork). Returns the helper's pid or -errno.
int clinux_spawn_socket_remover(int dirfd, const char *name, uint64_t device, uint64_t inode);

/// A new tmpfs of at most `size_bytes`, mode 0700, nosuid/nodev/noexec, not
/// attached anywhere (fsopen/fsconfig/fsmount): returns a descriptor of its
/// root, or -errno (-EPERM without CAP_SYS_ADMIN). It is freed when the last
/// descriptor into it is closed.
int clinux_private_tmpfs(uint64_t size_bytes);

#endif
