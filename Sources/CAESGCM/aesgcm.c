#include "aesgcm.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static EVP_CIPHER *cipher;          /* fetched once, at load */
static int initialized;             /* the known answer matched */
static volatile int enabled;
static pthread_key_t context_key;   /* each thread's EVP_CIPHER_CTX, freed at thread exit */
static const uint8_t zero_key[32];

static void free_context(void *ctx) { EVP_CIPHER_CTX_free(ctx); }

static EVP_CIPHER_CTX *context(void) {
    EVP_CIPHER_CTX *ctx = pthread_getspecific(context_key);
    if (ctx) return ctx;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return NULL;
    if (EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, 1, NULL) != 1 || pthread_setspecific(context_key, ctx) != 0) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The expanded key must not outlive the call (libsodium wipes its own the same way). */
static void forget_key(EVP_CIPHER_CTX *ctx, int encrypting) {
    if (EVP_CipherInit_ex2(ctx, NULL, zero_key, NULL, encrypting, NULL) != 1) {
        pthread_setspecific(context_key, NULL);
        EVP_CIPHER_CTX_free(ctx);   /* cleanses */
    }
}

static int seal_impl(uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[12], const uint8_t key[32]) {
    if (mlen > INT_MAX / 2 || adlen > INT_MAX / 2) return -1;
    EVP_CIPHER_CTX *ctx = context();
    if (!ctx) return -1;
    int n = 0, ok = EVP_EncryptInit_ex2(ctx, NULL, key, nonce, NULL) == 1
        && (adlen == 0 || EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1)
        && (mlen == 0 || EVP_EncryptUpdate(ctx, out, &n, m, (int)mlen) == 1)
        && EVP_EncryptFinal_ex(ctx, out + mlen, &n) == 1
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + mlen) == 1;
    forget_key(ctx, 1);
    return ok ? 0 : -1;
}

static int open_impl(uint8_t *out, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[12], const uint8_t key[32]) {
    if (clen < 16 || clen > INT_MAX / 2 || adlen > INT_MAX / 2) return -1;
    size_t mlen = clen - 16;
    EVP_CIPHER_CTX *ctx = context();
    if (!ctx) return -1;
    uint8_t tag[16];
    memcpy(tag, c + mlen, 16);
    int n = 0, ok = EVP_DecryptInit_ex2(ctx, NULL, key, nonce, NULL) == 1
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1
        && (adlen == 0 || EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1)
        && (mlen == 0 || EVP_DecryptUpdate(ctx, out, &n, c, (int)mlen) == 1);
    int authentic = ok && EVP_DecryptFinal_ex(ctx, out + mlen, &n) == 1;
    forget_key(ctx, 0);
    if (!ok) { if (mlen) OPENSSL_cleanse(out, mlen); return -1; }
    if (!authentic) { if (mlen) OPENSSL_cleanse(out, mlen); return 1; }
    return 0;
}

/* AES-256-GCM, key 0^256, IV 0^96, plaintext 0^128 (McGrew & Viega, GCM test case 14). */
static int known_answer(void) {
    static const uint8_t expected[32] = {
        0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e, 0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18,
        0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19,
    };
    uint8_t key[32] = {0}, nonce[12] = {0}, plain[16] = {0}, sealed[32], back[16];
    if (seal_impl(sealed, plain, 16, NULL, 0, nonce, key) != 0 || memcmp(sealed, expected, 32) != 0) return 0;
    if (open_impl(back, sealed, 32, NULL, 0, nonce, key) != 0 || memcmp(back, plain, 16) != 0) return 0;
    sealed[31] ^= 1;
    return open_impl(back, sealed, 32, NULL, 0, nonce, key) == 1;
}

/* At load, before main: OpenSSL reads its configuration and loads its provider now, while the
 * process may still open files (serve later confines itself with Landlock and seccomp). */
__attribute__((constructor)) static void sg_aesgcm_load(void) {
    const char *choice = getenv("SEALGOFER_AES");
    if (choice && strcmp(choice, "libsodium") == 0) return;
    if (pthread_key_create(&context_key, free_context) != 0) return;
    cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (!cipher) return;
    initialized = known_answer();
    enabled = initialized;
}

int sg_aesgcm_enabled(void) { return enabled; }
void sg_aesgcm_set_enabled(int on) { enabled = on && initialized; }

int sg_aesgcm_seal(uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[12], const uint8_t key[32]) {
    return enabled ? seal_impl(out, m, mlen, ad, adlen, nonce, key) : -1;
}

int sg_aesgcm_open(uint8_t *out, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[12], const uint8_t key[32]) {
    return enabled ? open_impl(out, c, clen, ad, adlen, nonce, key) : -1;
}
