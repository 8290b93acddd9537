// Umbrella header: one header per concern, each with its own .c file.
#ifndef CLINUX_H
#define CLINUX_H
#include "clinux_fd.h"
#include "clinux_sec.h"
#include "clinux_fs.h"
#include "clinux_futex.h"
#include "clinux_socket.h"
#include "clinux_store.h"
#include "clinux_scratch.h"
#include "clinux_mem.h"
#endif
