// Landlock: confining the gofer's own view of the host filesystem.
#define _GNU_SOURCE
#include "clinux_sec.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>

// Debian 12's headers predate some of these; the numbers are the same on every architecture.
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#define CLINUX_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define CLINUX_LANDLOCK_RULE_PATH_BENEATH 1

// Layout-identical to the kernel's struct landlock_path_beneath_attr (packed).
struct clinux_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int clinux_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, CLINUX_LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? -errno : (int)abi;
}

int clinux_landlock_create_ruleset(uint64_t handled_fs) {
    // Only the first field (handled_access_fs): the kernel accepts a shorter
    // struct and treats the rest as zero (no network or scope rules).
    uint64_t attr = handled_fs;
    long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    return fd < 0 ? -errno : (int)fd;
}

int clinux_landlock_allow_beneath(int ruleset_fd, int parent_fd, uint64_t access) {
    struct clinux_path_beneath rule = { .allowed_access = access, .parent_fd = parent_fd };
    return syscall(SYS_landlock_add_rule, ruleset_fd, CLINUX_LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0 ? -errno : 0;
}

int clinux_landlock_restrict_self(int ruleset_fd) {
    return syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0 ? -errno : 0;
}

// MARK: every thread

// Landlock before ABI 8 restricts only the calling thread. Threads started
// earlier are reached with a signal whose handler restricts the thread it
// runs on, much as glibc broadcasts setuid(2) to every thread.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static int clinux_ll_ruleset = -1;
static atomic_int clinux_ll_done;
static atomic_int clinux_ll_failed;

static void clinux_ll_handler(int sig) {
    (void)sig;
    int saved = errno;
    if (syscall(SYS_landlock_restrict_self, clinux_ll_ruleset, 0) == 0) {
        atomic_fetch_add(&clinux_ll_done, 1);
    } else {
        atomic_fetch_add(&clinux_ll_failed, 1);
    }
    errno = saved;
}

int clinux_landlock_signal(void) { return SIGRTMIN + 6; }

/// Appends to `tids` every thread in /proc/self/task not yet there; returns how many were new.
static int clinux_ll_collect(int taskdir, pid_t *tids, int *count, int capacity) {
    if (lseek(taskdir, 0, SEEK_SET) < 0) return -errno;
    char buffer[4096];
    int added = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, taskdir, buffer, sizeof buffer);
        if (n < 0) return -errno;
        if (n == 0) break;
        for (long offset = 0; offset < n;) {
            struct dirent64 *entry = (struct dirent64 *)(buffer + offset);
            offset += entry->d_reclen;
            pid_t tid = (pid_t)atoi(entry->d_name);
            if (tid <= 0) continue;
            int known = 0;
            for (int i = 0; i < *count; i++) known |= tids[i] == tid;
            if (known) continue;
            if (*count == capacity) return -E2BIG;
            tids[(*count)++] = tid;
            added++;
        }
    }
    return added;
}

int clinux_landlock_restrict_all_threads(int ruleset_fd, int timeout_ms, int *threads, int *unconfirmed) {
    enum { capacity = 1024 };
    static pid_t tids[capacity];
    int count = 0;
    pid_t self = (pid_t)syscall(SYS_gettid);
    tids[count++] = self;
    clinux_ll_ruleset = ruleset_fd;
    atomic_store(&clinux_ll_done, 0);
    atomic_store(&clinux_ll_failed, 0);
    // The handler stays installed: a thread that blocks the signal now
    // restricts itself whenever it unblocks it.
    struct sigaction action = { 0 };
    action.sa_handler = clinux_ll_handler;
    action.sa_flags = SA_RESTART;
    sigfillset(&action.sa_mask);
    if (sigaction(clinux_landlock_signal(), &action, NULL) != 0) return -errno;
    int taskdir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (taskdir < 0) return -errno;
    // Signal every thread; repeat until a pass finds none new, since a thread
    // not yet restricted may start another meanwhile.
    int signalled = 0;
    for (int round = 0; round < 16; round++) {
        int before = count;
        int added = clinux_ll_collect(taskdir, tids, &count, capacity);
        if (added < 0) { close(taskdir); return added; }
        for (int i = before; i < count; i++) {
            if (syscall(SYS_tgkill, getpid(), tids[i], clinux_landlock_signal()) == 0) signalled++;
        }
        if (added == 0) break;
        // Let the signalled threads restrict themselves before looking again.
        for (int waited = 0; waited < timeout_ms && atomic_load(&clinux_ll_done) + atomic_load(&clinux_ll_failed) < signalled; waited++) {
            struct timespec ms = { 0, 1000000 };
            nanosleep(&ms, NULL);
        }
    }
    close(taskdir);
    if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) != 0) return -errno;
    *threads = count;
    *unconfirmed = signalled - atomic_load(&clinux_ll_done);
    return 0;
}
