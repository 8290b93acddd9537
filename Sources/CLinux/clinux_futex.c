#define _GNU_SOURCE
#include "clinux_futex.h"
