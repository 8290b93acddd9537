// A helper process that removes `serve --listen`'s socket file once the gofer
// is gone, however it ends: the gofer itself cannot, as Landlock keeps it out
// of the socket's directory (and SIGKILL leaves it no chance).
#define _GNU_SOURCE
#include "clinux_sec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

int clinux_spawn_socket_remover(int dirfd, const char *name, uint64_t device, uint64_t inode) {
    int lifeline[2];
    if (pipe2(lifeline, O_CLOEXEC) != 0) return -errno;
    pid_t child = fork();
    if (child < 0) {
        int saved = errno;
        close(lifeline[0]);
        close(lifeline[1]);
        return -saved;
    }
    if (child == 0) {
        // Only async-signal-safe calls from here: the parent may have threads.
        // Terminal signals sent to the whole group must not stop the cleanup.
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(lifeline[1]);
        // Keep only the lifeline and the directory (and stderr).
        for (int fd = 3; fd < 1024; fd++) {
            if (fd != lifeline[0] && fd != dirfd) close(fd);
        }
        char byte;
        while (read(lifeline[0], &byte, 1) != 0) {
            if (errno != EINTR) break;
        }
        // EOF: every copy of the write end is closed, i.e. the gofer exited.
        struct stat info;
        if (fstatat(dirfd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(info.st_mode) &&
            (uint64_t)info.st_dev == device && (uint64_t)info.st_ino == inode) {
            unlinkat(dirfd, name, 0);
        }
        _exit(0);
    }
    close(lifeline[0]);
    // The write end stays open (close-on-exec) for the gofer's lifetime.
    return child;
}
