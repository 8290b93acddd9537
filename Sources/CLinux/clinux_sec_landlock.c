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
