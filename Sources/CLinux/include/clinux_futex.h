// futex wait/wake, the atomics on flipcall's shared control word, and
// memfd-backed shared memory (owned by the transport work)
#ifndef CLINUX_FUTEX_H
#define CLINUX_FUTEX_H
#include <stdint.h>
#include <sys/types.h>

// The futex word lives in memory shared with another process, so these use
// the shared (non-FUTEX_PRIVATE_FLAG) operations, as gVisor's flipcall does.

// FUTEX_WAIT while *addr == expected, for at most timeout_ns (< 0: no limit).
// Returns 0 when woken, or -1 with errno EAGAIN (value differed), EINTR,
// ETIMEDOUT, or another error.
int clinux_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns);

// FUTEX_WAKE up to `count` waiters. Returns the number woken or -1 with errno.
int clinux_futex_wake(uint32_t *addr, int32_t count);

// Sequentially consistent atomics, matching Go's sync/atomic which flipcall's
// peer uses on the same words.
uint32_t clinux_atomic_load_u32(const uint32_t *addr);
void clinux_atomic_store_u32(uint32_t *addr, uint32_t value);
// Returns 1 and stores `desired` if *addr == expected; otherwise returns 0.
int clinux_atomic_cas_u32(uint32_t *addr, uint32_t expected, uint32_t desired);
uint32_t clinux_atomic_swap_u32(uint32_t *addr, uint32_t value);

// memfd_create + ftruncate(size) + seals F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,
// close-on-exec. The seals stop the peer from resizing the file under our
// mapping (SIGBUS). Returns the FD or -1 with errno.
int clinux_sealed_memfd(const char *name, uint64_t size);

// mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset).
// Returns NULL (not MAP_FAILED) with errno on failure.
void *clinux_map_shared(int fd, uint64_t length, int64_t offset);
int clinux_unmap(void *addr, uint64_t length);
#endif
