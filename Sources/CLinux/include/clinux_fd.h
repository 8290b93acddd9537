#ifndef CLINUX_FD_H
#define CLINUX_FD_H
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>

// errno is a macro in glibc; Swift's Glibc exposes it, but these keep C callers consistent.
int clinux_errno(void);
void clinux_set_errno(int value);
// open/openat are variadic in C and unavailable to Swift with a mode.
int clinux_openat(int dirfd, const char *path, int flags, unsigned int mode);
int clinux_fcntl_int(int fd, int cmd, int arg);
#endif
