// statx, renameat2, mknodat, *xattr on fds, getdents64, AF_UNIX bind/connect by
// path and other fs calls Swift cannot make directly (owned by the server /
// HostProvider work). Every function returns -1 and sets errno on failure
// unless noted otherwise.
#ifndef CLINUX_FS_H
#define CLINUX_FS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

// Flat copy of the kernel's struct statx (fields the lisafs Statx carries).
struct clinux_statx {
    uint32_t mask;
    uint32_t blksize;
    uint64_t attributes;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint16_t mode;
    uint64_t ino;
    uint64_t size;
    uint64_t blocks;
    uint64_t attributes_mask;
    int64_t atime_sec;  uint32_t atime_nsec;
    int64_t btime_sec;  uint32_t btime_nsec;
    int64_t ctime_sec;  uint32_t ctime_nsec;
    int64_t mtime_sec;  uint32_t mtime_nsec;
    uint32_t rdev_major, rdev_minor;
    uint32_t dev_major, dev_minor;
};

// statx(2). Use path "" with AT_EMPTY_PATH to stat dirfd itself.
int clinux_statx(int dirfd, const char *path, int flags, unsigned int mask, struct clinux_statx *out);

// renameat2(2) via syscall (glibc's wrapper is new).
int clinux_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);

// mknodat(2) with the device number built from major/minor.
int clinux_mknodat(int dirfd, const char *path, unsigned int mode, unsigned int major, unsigned int minor);
// The dev_t that stat(2)'s st_dev holds for statx's major/minor (makedev(3), a macro).
uint64_t clinux_makedev(unsigned int major, unsigned int minor);

// utimensat(2) on fd itself (AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, works on O_PATH fds).
// A time whose set_* flag is 0 is left unchanged (UTIME_OMIT).
int clinux_futimens_empty_path(int fd, int set_atime, int64_t atime_sec, int64_t atime_nsec,
                               int set_mtime, int64_t mtime_sec, int64_t mtime_nsec);

// fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW). uid/gid (uint32)-1 = unchanged.
int clinux_fchown_empty_path(int fd, uint32_t uid, uint32_t gid);

// getdents64(2): raw linux_dirent64 records into buf.
long clinux_getdents64(int fd, void *buf, size_t count);

// fallocate(2).
int clinux_fallocate(int fd, int mode, int64_t offset, int64_t length);

// fstatfs(2), flattened.
struct clinux_statfs {
    uint64_t type;
    int64_t bsize;
    uint64_t blocks, bfree, bavail, files, ffree, namelen;
};
int clinux_fstatfs(int fd, struct clinux_statfs *out);

// Extended attributes on an fd (not O_PATH) or, for the *_path variants, on the
// file a path names (following the final link: used with /proc/self/fd/N).
long clinux_fgetxattr(int fd, const char *name, void *value, size_t size);
int clinux_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);
long clinux_flistxattr(int fd, char *list, size_t size);
int clinux_fremovexattr(int fd, const char *name);
long clinux_getxattr_path(const char *path, const char *name, void *value, size_t size);
int clinux_setxattr_path(const char *path, const char *name, const void *value, size_t size, int flags);
long clinux_listxattr_path(const char *path, char *list, size_t size);
int clinux_removexattr_path(const char *path, const char *name);

// AF_UNIX socket helpers for BindAt / Connect. path must fit sockaddr_un.sun_path
// (returns -1/ENAMETOOLONG otherwise). New sockets are SOCK_CLOEXEC.
int clinux_unix_socket(int type);
int clinux_unix_bind(int fd, const char *path);
int clinux_unix_connect(int fd, const char *path);
int clinux_accept4_cloexec_nonblock(int fd);
// Blocking accept4 with SOCK_CLOEXEC (for the listener), retrying EINTR.
int clinux_accept_cloexec(int fd);

// epoll_create1(EPOLL_CLOEXEC): the notification FD of a bound socket.
int clinux_epoll_create_cloexec(void);
// Adds fd to epfd's interest list for EPOLLIN, level-triggered (already
// present: success).
int clinux_epoll_watch_readable(int epfd, int fd);

// dev_t helpers.
unsigned int clinux_major(uint64_t dev);
unsigned int clinux_minor(uint64_t dev);

// fchmodat(dirfd, path, mode, 0).
int clinux_fchmodat(int dirfd, const char *path, unsigned int mode);

// GNU-only constants, exported as values so Swift sees the platform's numbers.
extern const int clinux_O_PATH;
extern const int clinux_O_NOFOLLOW;
extern const int clinux_O_DIRECTORY;
extern const int clinux_O_CLOEXEC;
extern const int clinux_O_NONBLOCK;
extern const int clinux_AT_EMPTY_PATH;
extern const int clinux_AT_SYMLINK_NOFOLLOW;
extern const int clinux_AT_SYMLINK_FOLLOW;
extern const int clinux_AT_REMOVEDIR;
extern const unsigned int clinux_STATX_BASIC_STATS;
extern const unsigned int clinux_STATX_BTIME;
// renameat2(2)'s flag and statfs(2)'s f_type of tmpfs, from the kernel headers.
extern const unsigned int clinux_RENAME_NOREPLACE;
extern const uint64_t clinux_TMPFS_MAGIC;
#endif
