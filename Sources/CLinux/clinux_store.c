#define _GNU_SOURCE
#include <unistd.h>
#include "clinux_store.h"

int clinux_syncfs(int fd) { return syncfs(fd); }
