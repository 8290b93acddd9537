#define _GNU_SOURCE
#include "clinux_futex.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clinux_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, NULL, 0);
    return r < 0 ? -1 : 0;
}

int clinux_futex_wake(uint32_t *addr, int32_t count) {
    long r = syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
    return r < 0 ? -1 : (int)r;
}

uint32_t clinux_atomic_load_u32(const uint32_t *addr) {
    return __atomic_load_n(addr, __ATOMIC_SEQ_CST);
}

void clinux_atomic_store_u32(uint32_t *addr, uint32_t value) {
    __atomic_store_n(addr, value, __ATOMIC_SEQ_CST);
}

int clinux_atomic_cas_u32(uint32_t *addr, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(addr, &expected, desired, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) ? 1 : 0;
}

uint32_t clinux_atomic_swap_u32(uint32_t *addr, uint32_t value) {
    return __atomic_exchange_n(addr, value, __ATOMIC_SEQ_CST);
}

int clinux_sealed_memfd(const char *name, uint64_t size) {
    if (size > (uint64_t)LLONG_MAX) {
        errno = EINVAL;
        return -1;
    }
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

void *clinux_map_shared(int fd, uint64_t length, int64_t offset) {
    void *p = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    return p == MAP_FAILED ? NULL : p;
}

int clinux_unmap(void *addr, uint64_t length) {
    return munmap(addr, (size_t)length);
}
