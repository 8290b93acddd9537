// SCM_RIGHTS send/recv and socket helpers (owned by the transport work)
#ifndef CLINUX_SOCKET_H
#define CLINUX_SOCKET_H
#include <stdint.h>
#include <sys/types.h>

// The kernel's limit on FDs in one SCM_RIGHTS message (SCM_MAX_FD).
#define CLINUX_MAX_FDS_PER_MESSAGE 253

// sendmsg(2) of `len` bytes with `nfds` FDs attached as one SCM_RIGHTS message
// (none when nfds == 0). MSG_NOSIGNAL is always added: a dead peer must give
// EPIPE, not kill the server. Returns bytes sent or -1 with errno.
ssize_t clinux_send_with_fds(int sock, const void *buf, size_t len,
                             const int *fds, int nfds, int flags);

// recvmsg(2) into `buf`; FDs that arrive with the data (SCM_RIGHTS, received
// with MSG_CMSG_CLOEXEC) are stored in `fds` (up to `maxfds`), their count in
// *nfds. FDs beyond maxfds are closed by the kernel. Returns bytes received
// (0 = orderly hang-up) or -1 with errno.
ssize_t clinux_recv_with_fds(int sock, void *buf, size_t len,
                             int *fds, int maxfds, int *nfds, int flags);

// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): the kind fdchannel uses.
int clinux_seqpacket_pair(int fds[2]);

// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): the kind lisafs' main socket is.
int clinux_stream_pair(int fds[2]);

// Waits up to timeout_ms (-1: forever) for `events` (POLLIN=1, POLLOUT=4) on fd.
// Returns the revents mask, 0 on timeout, -1 with errno.
int clinux_poll_one(int fd, short events, int timeout_ms);

// 1 if the peer of this socket has closed or shut down its end, 0 if not,
// -1 with errno. Never blocks.
int clinux_peer_hung_up(int sock);

// Sets O_NONBLOCK on fd (as gVisor's server does for every donated FD).
int clinux_set_nonblocking(int fd);
#endif
