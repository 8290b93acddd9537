// glibc allocator settings (mallopt lives in <malloc.h>, which Swift's Glibc
// module does not export).
#ifndef CLINUX_MEM_H
#define CLINUX_MEM_H
#include <stddef.h>

// Fixes glibc's mmap and trim thresholds (turning off their dynamic adjustment).
// Returns 0 on success, -1 if glibc refused either value.
int clinux_fix_malloc_thresholds(size_t mmap_threshold, size_t trim_threshold);
#endif
