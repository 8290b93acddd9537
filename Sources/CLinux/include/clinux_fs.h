// statx, renameat2, mknodat, *xattr on fds, and other fs calls (owned by the server/HostProvider work)
#ifndef CLINUX_FS_H
#define CLINUX_FS_H
#include <stdint.h>
#include <sys/types.h>
#endif
