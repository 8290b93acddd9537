#define _GNU_SOURCE
#include "clinux_fs.h"
