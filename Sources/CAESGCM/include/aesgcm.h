#ifndef SEALGOFER_AESGCM_H
#define SEALGOFER_AESGCM_H
#include <stddef.h>
#include <stdint.h>

/* AES-256-GCM through OpenSSL's libcrypto: the same algorithm and bytes as libsodium's
 * crypto_aead_aes256gcm_* (12-byte nonce, ciphertext followed by a 16-byte tag), about twice
 * as fast on CPUs with VAES/AVX-512 (libsodium 1.0.18 uses one AES-NI block at a time).
 * Initialized by a load-time constructor (before any sandboxing), checked against a known
 * answer; when that fails, or SEALGOFER_AES=libsodium is set, every call returns -1 and the
 * caller uses libsodium. Thread-safe (one cipher context per thread). */

/* 1 when this backend is in use. */
int sg_aesgcm_enabled(void);
/* Turns the backend off (0) or back on (1, only if it initialized); for benchmarks and tests. */
void sg_aesgcm_set_enabled(int on);

/* out: mlen + 16 bytes (ciphertext, then tag). 0 on success, -1 when the backend is off or failed. */
int sg_aesgcm_seal(uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[12], const uint8_t key[32]);

/* c: clen bytes (ciphertext, then tag; clen >= 16); out: clen - 16 bytes. 0 when authentic,
 * 1 when not (out is zeroed), -1 when the backend is off or failed. */
int sg_aesgcm_open(uint8_t *out, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[12], const uint8_t key[32]);

#endif
