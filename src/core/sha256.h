/* SHA-256 (FIPS 180-4, section 6.2): plan checksums and model versions. */
#ifndef KILN_SHA256_H
#define KILN_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct kiln_sha256_ctx {
    uint32_t h[8];
    uint64_t len;      /* bytes hashed so far */
    uint8_t buf[64];
    size_t n;          /* bytes waiting in buf */
} kiln_sha256_ctx;

void kiln_sha256_init(kiln_sha256_ctx *s);
void kiln_sha256_update(kiln_sha256_ctx *s, const void *data, size_t n);
void kiln_sha256_final(kiln_sha256_ctx *s, uint8_t out[32]);
/* One call: out = SHA-256(data). */
void kiln_sha256(const void *data, size_t n, uint8_t out[32]);
/* Lower-case hex of the first `bytes` bytes of d into hex (2*bytes+1 chars). */
void kiln_hex(const uint8_t *d, size_t bytes, char *hex);

#endif
