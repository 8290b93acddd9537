// libFuzzer's documented driver entry (fuzzer/FuzzerInterface.h, LLVM 12+).
// SwiftPM renames an executable's entry point to <Target>_main and links
// main to it, which hides libFuzzer's own main; the target's main calls this.
#ifndef FUZZ_DRIVER_H
#define FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_test_one_input)(const uint8_t *data, size_t size);
int LLVMFuzzerRunDriver(int *argc, char ***argv, fuzz_test_one_input callback);
#endif
