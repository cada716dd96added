/* SHA-256 over OpenSSL; see include/bbit/sha256.h.
 *
 * The low-level SHA256_* functions, not EVP: both run the same assembly, but
 * the first EVP digest initialises OpenSSL 3's library context (reads
 * openssl.cnf, loads the default provider), 2.3 ms of every short command
 * here. They are deprecated in 3.0, not removed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "bbit/sha256.h"

enum { FILE_CHUNK = 128 * 1024 };

struct bbit_sha256 {
    SHA256_CTX ctx;
    int finished;
};

bbit_sha256 *bbit_sha256_new(void)
{
    bbit_sha256 *h = calloc(1, sizeof *h);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    if (SHA256_Init(&h->ctx) != 1) {
        bbit_sha256_free(h);
        errno = ENOMEM;
        return NULL;
    }
    return h;
}

int bbit_sha256_update(bbit_sha256 *h, const void *data, size_t len)
{
    if (!h || h->finished) {
        errno = EINVAL;
        return -1;
    }
    if (len == 0)
        return 0;
    if (SHA256_Update(&h->ctx, data, len) != 1) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Reads fd to its end into h; -1 with errno on a read error. */
static int update_fd(bbit_sha256 *h, int fd, unsigned char *buf, uint64_t *bytes)
{
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, FILE_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (bbit_sha256_update(h, buf, (size_t)n) != 0)
            return -1;
        total += (uint64_t)n;
    }
    if (bytes)
        *bytes = total;
    return 0;
}

int bbit_sha256_update_fd(bbit_sha256 *h, int fd, uint64_t *bytes)
{
    if (!h || h->finished || fd < 0) {
        errno = EINVAL;
        return -1;
    }
    unsigned char *buf = malloc(FILE_CHUNK);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int rc = update_fd(h, fd, buf, bytes);
    int saved = errno;
    free(buf);
    errno = saved;
    return rc;
}

int bbit_sha256_update_file(bbit_sha256 *h, const char *path, uint64_t *bytes)
{
    if (!h || h->finished || !path) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = bbit_sha256_update_fd(h, fd, bytes);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int bbit_sha256_final(bbit_sha256 *h, unsigned char out[BBIT_SHA256_LEN])
{
    if (!h || h->finished) {
        errno = EINVAL;
        return -1;
    }
    h->finished = 1;
    if (SHA256_Final(out, &h->ctx) != 1) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int bbit_sha256_finished(const bbit_sha256 *h)
{
    return h && h->finished;
}

void bbit_sha256_free(bbit_sha256 *h)
{
    if (!h)
        return;
    free(h);
}

int bbit_sha256_buffer(const void *data, size_t len, unsigned char out[BBIT_SHA256_LEN])
{
    bbit_sha256 *h = bbit_sha256_new();
    if (!h)
        return -1;
    int rc = bbit_sha256_update(h, data, len);
    if (rc == 0)
        rc = bbit_sha256_final(h, out);
    int saved = errno;
    bbit_sha256_free(h);
    errno = saved;
    return rc;
}

int bbit_sha256_file(const char *path, unsigned char out[BBIT_SHA256_LEN], uint64_t *bytes)
{
    bbit_sha256 *h = bbit_sha256_new();
    if (!h)
        return -1;
    int rc = bbit_sha256_update_file(h, path, bytes);
    if (rc == 0)
        rc = bbit_sha256_final(h, out);
    int saved = errno;
    bbit_sha256_free(h);
    errno = saved;
    return rc;
}

void bbit_sha256_hex(const unsigned char digest[BBIT_SHA256_LEN],
                     char hex[BBIT_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < BBIT_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    hex[BBIT_SHA256_HEX_LEN] = '\0';
}
