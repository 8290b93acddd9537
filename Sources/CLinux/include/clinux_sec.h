// seccomp, prctl, capabilities (hardening work)
#ifndef CLINUX_SEC_H
#define CLINUX_SEC_H
#include <stdint.h>
#include <sys/types.h>
#endif
