/* Helpers shared by the object store's C tests (test_store.c,
 * test_store_pack.c): included after <cmocka.h>. */
#ifndef BBIT_STORE_TEST_UTIL_H
#define BBIT_STORE_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* Deterministic pseudo-random bytes (xorshift). */
static unsigned char *random_bytes(size_t len, uint64_t seed)
{
    unsigned char *p = malloc(len ? len : 1);
    uint64_t x = seed * 2654435761u + 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    return p;
}

static void write_whole(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void assert_contains(const char *s, const char *part)
{
    if (strstr(s, part) == NULL)
        fail_msg("expected \"%s\" to contain \"%s\"", s, part);
}

#endif
