// A private, size-limited tmpfs for plaintext scratch files.
#define _GNU_SOURCE
#include "clinux_sec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#define CLINUX_FSOPEN_CLOEXEC 0x1
#define CLINUX_FSCONFIG_SET_STRING 1
#define CLINUX_FSCONFIG_CMD_CREATE 6
#define CLINUX_FSMOUNT_CLOEXEC 0x1
#define CLINUX_MOUNT_ATTR_NOSUID 0x2
#define CLINUX_MOUNT_ATTR_NODEV 0x4
#define CLINUX_MOUNT_ATTR_NOEXEC 0x8

int clinux_private_tmpfs(uint64_t size_bytes) {
    int fs = (int)syscall(SYS_fsopen, "tmpfs", CLINUX_FSOPEN_CLOEXEC);
    if (fs < 0) return -errno;
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)size_bytes);
    int result = 0;
    // Huge pages for files that span them (issue 4, BENCHMARKS.md "Commit data path"): the
    // sandbox's writes into a scratch and a commit's reads of it then cost one page-cache
    // insertion per 2 MiB instead of per 4 KiB, ~5x less kernel time. Small files keep small
    // pages, and a full tmpfs falls back to small pages, so the size cap is exact as before.
    // Best effort: a kernel without transparent huge pages refuses the option, which is harmless.
    (void)syscall(SYS_fsconfig, fs, CLINUX_FSCONFIG_SET_STRING, "huge", "within_size", 0);
    if (syscall(SYS_fsconfig, fs, CLINUX_FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
        syscall(SYS_fsconfig, fs, CLINUX_FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
        syscall(SYS_fsconfig, fs, CLINUX_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        result = -errno;
    } else {
        // Detached: attached to no mount namespace, so nobody else can see it;
        // it lives exactly as long as a descriptor refers to it.
        int mnt = (int)syscall(SYS_fsmount, fs, CLINUX_FSMOUNT_CLOEXEC,
                               CLINUX_MOUNT_ATTR_NOSUID | CLINUX_MOUNT_ATTR_NODEV | CLINUX_MOUNT_ATTR_NOEXEC);
        if (mnt < 0) {
            result = -errno;
        } else {
            // fsmount's descriptor is O_PATH-like; hand out a plain directory descriptor.
            result = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (result < 0) result = -errno;
            close(mnt);
        }
    }
    close(fs);
    return result;
}
