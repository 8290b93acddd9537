// xxHash (Debian's libxxhash-dev): XXH3-128, the in-memory change-detection
// digest of SealedProvider. Nothing it computes is stored or sent.
#include <xxhash.h>
