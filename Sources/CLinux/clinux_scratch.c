#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include "clinux_scratch.h"

// O_NONBLOCK changes nothing for a regular file, but the server marks every donated FD
// non-blocking, and a read-write open is donated a dup of the scratch's own descriptor: made
// with the flag, that costs one F_GETFL instead of F_GETFL + F_SETFL per create.
int clinux_open_tmpfile(int dirfd, unsigned int mode) {
    return openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC | O_NONBLOCK, (mode_t)mode);
}

int64_t clinux_coarse_realtime_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t clinux_raise_nofile_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    }
    return (int64_t)rl.rlim_cur;
}

static void termination_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

int clinux_block_termination_signals(void) {
    sigset_t set;
    termination_set(&set);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int clinux_wait_termination_signal(void) {
    sigset_t set;
    termination_set(&set);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    return sig;
}

int clinux_name_this_thread(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

int clinux_lower_this_thread_priority(void) {
    return setpriority(PRIO_PROCESS, 0, 19);
}
