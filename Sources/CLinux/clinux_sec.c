#define _GNU_SOURCE
#include "clinux_sec.h"
