// commitfloor: what a fresh-file commit cannot avoid on this machine, piece by piece.
//
//   cc -O2 -o /tmp/commitfloor Benchmarks/commitfloor/commitfloor.c -lsodium -lxxhash
//   /tmp/commitfloor [DIR (default /dev/shm)] [MiB (default 256)] [rounds (default 3)]
//
// A fresh commit (SealedFile.commit(fromDescriptor:), ChunkPipeline) does, per 64 KiB chunk:
// pread from the plaintext scratch, XXH3-128 change digest, AES-256-GCM seal (libsodium) into a
// run buffer, and one pwrite per 16 slots into a new ciphertext file. This program times exactly
// those steps on one thread, next to bare libsodium on pre-touched memory (sealed-bench's "raw"),
// and the alternatives evaluated for issue 4 (BENCHMARKS.md, "Commit data path: where the time
// goes"): writing the ciphertext through a shared mapping of a fallocated file, and reading the
// scratch through a MAP_POPULATE mapping. Every figure is seconds of this process's CPU time.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { CHUNK = 65536, SLOT = CHUNK + 28, RUN = 16, HEADER = 4096 };

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) { perror(what); exit(1); }

static int fresh_file(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) die("O_TMPFILE");
    return fd;
}

static unsigned char key[32], secret[192], ad[40];
static unsigned char nonces[8192];
static size_t nonces_used = sizeof nonces;

// As NoncePool: random bytes drawn 8 KiB at a time.
static void nonce(unsigned char *out) {
    if (nonces_used + 12 > sizeof nonces) { randombytes_buf(nonces, sizeof nonces); nonces_used = 0; }
    memcpy(out, nonces + nonces_used, 12);
    nonces_used += 12;
}

static void seal(unsigned char *slot, const unsigned char *plain) {
    unsigned long long length;
    nonce(slot);
    crypto_aead_aes256gcm_encrypt(slot + 12, &length, plain, CHUNK, ad, sizeof ad, NULL, slot, key);
}

// The commit's steps, each timed.
static void pipeline(int scratch, const char *dir, size_t size) {
    double t[4] = {0}, total = cpu_now();
    int out = fresh_file(dir);
    unsigned char *plain = aligned_alloc(4096, CHUNK), *run = aligned_alloc(4096, RUN * SLOT);
    memset(plain, 0, CHUNK);
    memset(run, 0, RUN * SLOT);
    unsigned long long sink = 0;
    size_t chunks = size / CHUNK;
    for (size_t i = 0; i < chunks; i += RUN) {
        for (size_t k = 0; k < RUN; k++) {
            double a = cpu_now();
            if (pread(scratch, plain, CHUNK, (off_t)((i + k) * CHUNK)) != CHUNK) die("pread");
            double b = cpu_now();
            sink += XXH3_128bits_withSecret(plain, CHUNK, secret, sizeof secret).low64;
            double c = cpu_now();
            seal(run + k * SLOT, plain);
            double d = cpu_now();
            t[0] += b - a; t[1] += c - b; t[2] += d - c;
        }
        double e = cpu_now();
        if (pwrite(out, run, RUN * SLOT, HEADER + (off_t)(i * SLOT)) != RUN * SLOT) die("pwrite");
        t[3] += cpu_now() - e;
    }
    total = cpu_now() - total;
    close(out);
    free(plain); free(run);
    printf("commit steps   total %.3f = pread %.3f + XXH3 %.3f + seal %.3f + pwrite %.3f (+ timers) [%llx]\n",
           total, t[0], t[1], t[2], t[3], sink & 1);
}

// sealed-bench's raw figure: seal from memory into pre-touched memory.
static void raw(const unsigned char *plain, unsigned char *slots, size_t size) {
    double a = cpu_now();
    for (size_t i = 0; i < size / CHUNK; i++) seal(slots + i * SLOT, plain + i * CHUNK);
    printf("raw seal       total %.3f\n", cpu_now() - a);
}

// Ways to put `size` bytes of new data into a fresh file.
static void write_paths(const char *dir, size_t size) {
    unsigned char *buffer = aligned_alloc(4096, 1 << 20);
    memset(buffer, 7, 1 << 20);
    int fd = fresh_file(dir);
    double a = cpu_now();
    for (size_t o = 0; o < size; o += 1 << 20)
        if (pwrite(fd, buffer, 1 << 20, (off_t)o) != 1 << 20) die("pwrite");
    double b = cpu_now();
    close(fd);
    printf("new file       pwrite 1 MiB: %.3f (page allocation + copy)\n", b - a);

    fd = fresh_file(dir);
    a = cpu_now();
    if (fallocate(fd, 0, 0, (off_t)size) != 0) die("fallocate");
    b = cpu_now();
    unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    if (madvise(map, size, MADV_POPULATE_WRITE) != 0) die("MADV_POPULATE_WRITE");
    double c = cpu_now();
    for (size_t o = 0; o < size; o += 1 << 20) memcpy(map + o, buffer, 1 << 20);
    double d = cpu_now();
    munmap(map, size);
    double e = cpu_now();
    close(fd);
    printf("new file       fallocate %.3f + mmap/populate %.3f + store %.3f + munmap %.3f = %.3f\n",
           b - a, c - b, d - c, e - d, e - a);

    fd = fresh_file(dir);
    a = cpu_now();
    if (fallocate(fd, 0, 0, (off_t)size) != 0) die("fallocate");
    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    for (size_t o = 0; o < size; o += 1 << 20) {
        if (madvise(map + o, 1 << 20, MADV_POPULATE_WRITE) != 0) die("MADV_POPULATE_WRITE");
        memcpy(map + o, buffer, 1 << 20);
    }
    munmap(map, size);
    printf("new file       fallocate + 1 MiB windows populated then stored + munmap: %.3f\n", cpu_now() - a);
    close(fd);
    free(buffer);
}

// Reading the scratch: pread into a hot buffer, or a populated read-only mapping.
static void read_paths(int scratch, size_t size) {
    unsigned char *buffer = aligned_alloc(4096, CHUNK);
    unsigned long long sink = 0;
    double a = cpu_now();
    for (size_t o = 0; o < size; o += CHUNK) {
        if (pread(scratch, buffer, CHUNK, (off_t)o) != CHUNK) die("pread");
        sink += XXH3_128bits_withSecret(buffer, CHUNK, secret, sizeof secret).low64;
    }
    double b = cpu_now();
    unsigned char *map = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, scratch, 0);
    if (map == MAP_FAILED) die("mmap");
    double c = cpu_now();
    for (size_t o = 0; o < size; o += CHUNK) sink += XXH3_128bits_withSecret(map + o, CHUNK, secret, sizeof secret).low64;
    double d = cpu_now();
    munmap(map, size);
    double e = cpu_now();
    printf("read scratch   pread+XXH3 %.3f | mmap+populate %.3f + XXH3 %.3f + munmap %.3f = %.3f [%llx]\n",
           b - a, c - b, d - c, e - d, e - b, sink & 1);
    free(buffer);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    size_t size = (size_t)(argc > 2 ? atoi(argv[2]) : 256) << 20;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available()) { fprintf(stderr, "no AES-256-GCM\n"); return 1; }
    randombytes_buf(key, sizeof key);
    randombytes_buf(secret, sizeof secret);
    // The plaintext scratch, and raw's in-memory copy of it.
    int scratch = fresh_file(dir);
    unsigned char *plain = aligned_alloc(4096, size), *slots = aligned_alloc(4096, size / CHUNK * SLOT);
    randombytes_buf(plain, size);
    memset(slots, 0, size / CHUNK * SLOT);
    for (size_t o = 0; o < size; o += 1 << 20)
        if (pwrite(scratch, plain + o, 1 << 20, (off_t)o) != 1 << 20) die("pwrite scratch");
    printf("%zu MiB in %d-byte chunks under %s, CPU seconds, %d interleaved rounds\n", size >> 20, CHUNK, dir, rounds);
    for (int r = 0; r < rounds; r++) {
        pipeline(scratch, dir, size);
        raw(plain, slots, size);
        write_paths(dir, size);
        read_paths(scratch, size);
    }
    return 0;
}
