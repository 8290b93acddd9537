// SCM_RIGHTS send/recv and socket helpers (owned by the transport work)
#ifndef CLINUX_SOCKET_H
#define CLINUX_SOCKET_H
#include <stdint.h>
#include <sys/types.h>
#endif
