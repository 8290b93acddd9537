// Scratch files and clocks of the sealed provider (owned by the SealedProvider work).
// Functions return -1 and set errno on failure unless noted otherwise.
#ifndef CLINUX_SCRATCH_H
#define CLINUX_SCRATCH_H
#include <stdint.h>

// openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode): an unnamed regular file in dirfd's filesystem.
int clinux_open_tmpfile(int dirfd, unsigned int mode);

// CLOCK_REALTIME_COARSE in nanoseconds (the clock the kernel stamps coarse-grained inode times with).
int64_t clinux_coarse_realtime_ns(void);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit (or -1).
int64_t clinux_raise_nofile_limit(void);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (inherited by threads it creates later).
int clinux_block_termination_signals(void);

// Waits for one of the signals blocked above; returns its number.
int clinux_wait_termination_signal(void);

// Names the calling thread for the kernel (prctl PR_SET_NAME; at most 15 bytes are kept):
// what ps, perf and /proc/self/task/N/comm show. 0 or -1.
int clinux_name_this_thread(const char *name);

// Gives the calling thread the lowest scheduling priority (nice 19; Linux nice values are per
// thread): background work that a request thread waking on the same core preempts at once.
int clinux_lower_this_thread_priority(void);
#endif
