// futex wait/wake and memfd_create (owned by the transport work)
#ifndef CLINUX_FUTEX_H
#define CLINUX_FUTEX_H
#include <stdint.h>
#include <sys/types.h>
#endif
