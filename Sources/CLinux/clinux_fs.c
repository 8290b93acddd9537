#define _GNU_SOURCE
#include "clinux_fs.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <stdio.h>      // RENAME_NOREPLACE (_GNU_SOURCE)
#include <linux/magic.h>
#include <linux/stat.h>

int clinux_statx(int dirfd, const char *path, int flags, unsigned int mask, struct clinux_statx *out) {
    struct statx stx;
    memset(&stx, 0, sizeof stx);
    if (syscall(SYS_statx, dirfd, path, flags, mask, &stx) != 0) return -1;
    out->mask = stx.stx_mask;
    out->blksize = stx.stx_blksize;
    out->attributes = stx.stx_attributes;
    out->nlink = stx.stx_nlink;
    out->uid = stx.stx_uid;
    out->gid = stx.stx_gid;
    out->mode = stx.stx_mode;
    out->ino = stx.stx_ino;
    out->size = stx.stx_size;
    out->blocks = stx.stx_blocks;
    out->attributes_mask = stx.stx_attributes_mask;
    out->atime_sec = stx.stx_atime.tv_sec; out->atime_nsec = stx.stx_atime.tv_nsec;
    out->btime_sec = stx.stx_btime.tv_sec; out->btime_nsec = stx.stx_btime.tv_nsec;
    out->ctime_sec = stx.stx_ctime.tv_sec; out->ctime_nsec = stx.stx_ctime.tv_nsec;
    out->mtime_sec = stx.stx_mtime.tv_sec; out->mtime_nsec = stx.stx_mtime.tv_nsec;
    out->rdev_major = stx.stx_rdev_major; out->rdev_minor = stx.stx_rdev_minor;
    out->dev_major = stx.stx_dev_major; out->dev_minor = stx.stx_dev_minor;
    return 0;
}

int clinux_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

int clinux_mknodat(int dirfd, const char *path, unsigned int mode, unsigned int major, unsigned int minor) {
    return mknodat(dirfd, path, (mode_t)mode, makedev(major, minor));
}

uint64_t clinux_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }

int clinux_futimens_empty_path(int fd, int set_atime, int64_t atime_sec, int64_t atime_nsec,
                               int set_mtime, int64_t mtime_sec, int64_t mtime_nsec) {
    struct timespec ts[2];
    ts[0].tv_sec = set_atime ? atime_sec : 0;
    ts[0].tv_nsec = set_atime ? atime_nsec : UTIME_OMIT;
    ts[1].tv_sec = set_mtime ? mtime_sec : 0;
    ts[1].tv_nsec = set_mtime ? mtime_nsec : UTIME_OMIT;
    return (int)syscall(SYS_utimensat, fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

int clinux_fchown_empty_path(int fd, uint32_t uid, uint32_t gid) {
    return fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

long clinux_getdents64(int fd, void *buf, size_t count) {
    return syscall(SYS_getdents64, fd, buf, count);
}

int clinux_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

int clinux_fstatfs(int fd, struct clinux_statfs *out) {
    struct statfs s;
    if (fstatfs(fd, &s) != 0) return -1;
    out->type = (uint64_t)s.f_type;
    out->bsize = (int64_t)s.f_bsize;
    out->blocks = s.f_blocks;
    out->bfree = s.f_bfree;
    out->bavail = s.f_bavail;
    out->files = s.f_files;
    out->ffree = s.f_ffree;
    out->namelen = (uint64_t)s.f_namelen;
    return 0;
}

long clinux_fgetxattr(int fd, const char *name, void *value, size_t size) { return fgetxattr(fd, name, value, size); }
int clinux_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) { return fsetxattr(fd, name, value, size, flags); }
long clinux_flistxattr(int fd, char *list, size_t size) { return flistxattr(fd, list, size); }
int clinux_fremovexattr(int fd, const char *name) { return fremovexattr(fd, name); }
long clinux_getxattr_path(const char *path, const char *name, void *value, size_t size) { return getxattr(path, name, value, size); }
int clinux_setxattr_path(const char *path, const char *name, const void *value, size_t size, int flags) { return setxattr(path, name, value, size, flags); }
long clinux_listxattr_path(const char *path, char *list, size_t size) { return listxattr(path, list, size); }
int clinux_removexattr_path(const char *path, const char *name) { return removexattr(path, name); }

int clinux_unix_socket(int type) { return socket(AF_UNIX, type | SOCK_CLOEXEC, 0); }

static int fill_sockaddr(struct sockaddr_un *sa, const char *path) {
    size_t len = strlen(path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (len == 0 || len >= sizeof sa->sun_path) { errno = ENAMETOOLONG; return -1; }
    memcpy(sa->sun_path, path, len);
    return 0;
}

int clinux_unix_bind(int fd, const char *path) {
    struct sockaddr_un sa;
    if (fill_sockaddr(&sa, path) != 0) return -1;
    return bind(fd, (struct sockaddr *)&sa, sizeof sa);
}

int clinux_unix_connect(int fd, const char *path) {
    struct sockaddr_un sa;
    if (fill_sockaddr(&sa, path) != 0) return -1;
    int rc;
    do { rc = connect(fd, (struct sockaddr *)&sa, sizeof sa); } while (rc != 0 && errno == EINTR);
    return rc;
}

int clinux_accept4_cloexec_nonblock(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int clinux_accept_cloexec(int fd) {
    int rc;
    do { rc = accept4(fd, NULL, NULL, SOCK_CLOEXEC); } while (rc < 0 && errno == EINTR);
    return rc;
}

int clinux_epoll_create_cloexec(void) { return epoll_create1(EPOLL_CLOEXEC); }

int clinux_epoll_watch_readable(int epfd, int fd) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
    return errno == EEXIST ? 0 : -1;
}

unsigned int clinux_major(uint64_t dev) { return major((dev_t)dev); }
unsigned int clinux_minor(uint64_t dev) { return minor((dev_t)dev); }

int clinux_fchmodat(int dirfd, const char *path, unsigned int mode) { return fchmodat(dirfd, path, (mode_t)mode, 0); }

const int clinux_O_PATH = O_PATH;
const int clinux_O_NOFOLLOW = O_NOFOLLOW;
const int clinux_O_DIRECTORY = O_DIRECTORY;
const int clinux_O_CLOEXEC = O_CLOEXEC;
const int clinux_O_NONBLOCK = O_NONBLOCK;
const int clinux_AT_EMPTY_PATH = AT_EMPTY_PATH;
const int clinux_AT_SYMLINK_NOFOLLOW = AT_SYMLINK_NOFOLLOW;
const int clinux_AT_SYMLINK_FOLLOW = AT_SYMLINK_FOLLOW;
const int clinux_AT_REMOVEDIR = AT_REMOVEDIR;
const unsigned int clinux_STATX_BASIC_STATS = STATX_BASIC_STATS;
const unsigned int clinux_STATX_BTIME = STATX_BTIME;
const unsigned int clinux_RENAME_NOREPLACE = RENAME_NOREPLACE;
const uint64_t clinux_TMPFS_MAGIC = TMPFS_MAGIC;
