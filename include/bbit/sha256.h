/* SHA-256 without Lua (the CPU's SHA extensions, else OpenSSL): of a buffer, of a file read in
 * bounded memory, and incrementally. The object store names objects with it.
 *
 * Functions returning int give 0 on success and -1 on failure with errno set
 * (ENOENT, EISDIR, ... from the file system; EINVAL for a misused hasher;
 * ENOMEM/EIO when OpenSSL fails; a missing libcrypto stops bbit). Digests are 32 raw bytes; bbit_sha256_hex
 * turns them into 64 lowercase hex characters plus a NUL. */
#ifndef BBIT_SHA256_H
#define BBIT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define BBIT_SHA256_LEN 32
#define BBIT_SHA256_HEX_LEN 64

/* Which code computes the digests: "sha-ni" or "openssl" (the environment
 * variable BBIT_SHA256=openssl forces the latter; read once). The first call
 * chooses, and loads libcrypto when it is needed: main() calls it before
 * any thread starts. */
const char *bbit_sha256_implementation(void);

/* An incremental hasher. */
typedef struct bbit_sha256 bbit_sha256;

/* A new hasher, or NULL (errno ENOMEM). */
bbit_sha256 *bbit_sha256_new(void);

/* Adds len bytes. -1/EINVAL once the hasher is finished. */
int bbit_sha256_update(bbit_sha256 *h, const void *data, size_t len);

/* Adds the rest of open file fd (read to its end, in fixed-size chunks).
 * When bytes is not NULL it receives the number of bytes read. */
int bbit_sha256_update_fd(bbit_sha256 *h, int fd, uint64_t *bytes);

/* Adds the whole content of the file at path, read in fixed-size chunks.
 * When bytes is not NULL it receives the number of bytes read. */
int bbit_sha256_update_file(bbit_sha256 *h, const char *path, uint64_t *bytes);

/* Writes the digest and finishes the hasher: any later update/final fails
 * with EINVAL. */
int bbit_sha256_final(bbit_sha256 *h, unsigned char out[BBIT_SHA256_LEN]);

/* Has bbit_sha256_final been called? */
int bbit_sha256_finished(const bbit_sha256 *h);

/* Frees the hasher (NULL is fine). */
void bbit_sha256_free(bbit_sha256 *h);

/* One-shot digest of a buffer. */
int bbit_sha256_buffer(const void *data, size_t len, unsigned char out[BBIT_SHA256_LEN]);

/* One-shot digest of a file, streamed in bounded memory; bytes may be NULL. */
int bbit_sha256_file(const char *path, unsigned char out[BBIT_SHA256_LEN], uint64_t *bytes);

/* Lowercase hex of a digest: 64 characters and a terminating NUL. */
void bbit_sha256_hex(const unsigned char digest[BBIT_SHA256_LEN],
                     char hex[BBIT_SHA256_HEX_LEN + 1]);

#endif
