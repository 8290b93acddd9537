// Calls the sealed store needs that Swift's Glibc module does not expose (owned by the store work).
#ifndef CLINUX_STORE_H
#define CLINUX_STORE_H
// syncfs(2): flush the filesystem holding fd (after a bulk import without per-commit syncs).
int clinux_syncfs(int fd);
#endif
