#include "clinux_mem.h"
#include <malloc.h>

int clinux_fix_malloc_thresholds(size_t mmap_threshold, size_t trim_threshold) {
    int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
    ok &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
    return ok ? 0 : -1;
}
