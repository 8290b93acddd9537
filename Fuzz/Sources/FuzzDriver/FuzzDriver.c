// Declarations only; LLVMFuzzerRunDriver comes from libFuzzer (-sanitize=fuzzer).
#include "FuzzDriver.h"
