#define _GNU_SOURCE
#include "clinux_fd.h"

int clinux_errno(void) { return errno; }
void clinux_set_errno(int value) { errno = value; }
int clinux_openat(int dirfd, const char *path, int flags, unsigned int mode) {
    return openat(dirfd, path, flags, (mode_t)mode);
}
int clinux_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
