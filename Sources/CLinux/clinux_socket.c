#define _GNU_SOURCE
#include "clinux_socket.h"
