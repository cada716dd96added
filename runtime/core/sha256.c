/* SHA-256; see include/bbit/sha256.h.
 *
 * On x86-64 CPUs with the SHA extensions (Intel since Ice Lake and Goldmont,
 * AMD since Zen) the compression runs on them here: as fast as OpenSSL's
 * (which uses the same instructions), without linking libcrypto, whose
 * loading cost 3 ms of every command's start. Elsewhere OpenSSL's SHA256_*
 * runs it, loaded on first use (bbit/lazylibs.h): the low-level functions,
 * not EVP, whose first digest reads openssl.cnf and loads a provider
 * (2.3 ms). BBIT_SHA256=openssl selects OpenSSL everywhere (the tests check
 * both agree). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbit/lazylibs.h"
#include "bbit/sha256.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SHANI_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#endif

enum { FILE_CHUNK = 128 * 1024, BLOCK = 64 };

/* The native state: the eight words, the bytes hashed, a partial block. */
struct native {
    uint32_t h[8];
    uint64_t total;
    unsigned char buf[BLOCK];
    size_t used;
};

struct bbit_sha256 {
    int native; /* which member of u is in use */
    int finished;
    union {
        struct native n;
        SHA256_CTX ossl;
    } u;
};

#ifdef HAVE_SHANI_CODE
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Compresses n 64-byte blocks into h with SHA-NI: each sha256rnds2 does two
 * rounds on the state split as ABEF / CDGH; sha256msg1/msg2 extend the
 * message schedule four words at a time (W[t] = s1(W[t-2]) + W[t-7] +
 * s0(W[t-15]) + W[t-16]). */
__attribute__((target("sha,sse4.1,ssse3"))) static void shani_blocks(uint32_t h[8],
                                                                      const unsigned char *p,
                                                                      size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)&h[0]), 0xB1);
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)&h[4]), 0x1B);
    __m128i s0 = _mm_alignr_epi8(t, s1, 8); /* ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xF0);      /* CDGH */
    for (; n > 0; n--, p += BLOCK) {
        __m128i save0 = s0, save1 = s1, w[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) { /* rounds 4g .. 4g+3 */
            __m128i m;
            if (g < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * g)), bswap);
            } else {
                m = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);             /* W[t-16] + s0(W[t-15]) */
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4)); /* + W[t-7] */
                m = _mm_sha256msg2_epu32(m, w[(g + 3) & 3]);                     /* + s1(W[t-2]) */
            }
            w[g & 3] = m;
            __m128i k = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)(const void *)&K[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, k);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k, 0x0E));
        }
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
    }
    t = _mm_shuffle_epi32(s0, 0x1B);  /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1); /* DCHG */
    _mm_storeu_si128((__m128i *)(void *)&h[0], _mm_blend_epi16(t, s1, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)(void *)&h[4], _mm_alignr_epi8(s1, t, 8));   /* HGFE */
}

static int cpu_has_shani(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_SHA) != 0;
}
#else
static void shani_blocks(uint32_t h[8], const unsigned char *p, size_t n)
{
    (void)h, (void)p, (void)n;
    abort(); /* never selected */
}
static int cpu_has_shani(void)
{
    return 0;
}
#endif

static int use_native;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("BBIT_SHA256");
    use_native = cpu_has_shani() && !(want && strcmp(want, "openssl") == 0);
    if (!use_native)
        (void)bbit_crypto_api(); /* loaded now: a missing libcrypto stops bbit here, not on a worker */
}

const char *bbit_sha256_implementation(void)
{
    pthread_once(&choose_once, choose);
    return use_native ? "sha-ni" : "openssl";
}

static void native_init(struct native *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->total = 0;
    s->used = 0;
}

static void native_update(struct native *s, const unsigned char *p, size_t len)
{
    s->total += len;
    if (s->used > 0) {
        size_t take = BLOCK - s->used < len ? BLOCK - s->used : len;
        memcpy(s->buf + s->used, p, take);
        s->used += take;
        p += take;
        len -= take;
        if (s->used < BLOCK)
            return;
        shani_blocks(s->h, s->buf, 1);
        s->used = 0;
    }
    if (len >= BLOCK) {
        shani_blocks(s->h, p, len / BLOCK);
        p += len / BLOCK * BLOCK;
        len %= BLOCK;
    }
    memcpy(s->buf, p, len);
    s->used = len;
}

static void native_final(struct native *s, unsigned char out[BBIT_SHA256_LEN])
{
    uint64_t bits = s->total * 8;
    unsigned char pad[BLOCK * 2] = {0x80};
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used; /* to 8 bytes short of a block */
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    native_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

bbit_sha256 *bbit_sha256_new(void)
{
    pthread_once(&choose_once, choose);
    bbit_sha256 *h = calloc(1, sizeof *h);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->native = use_native;
    if (h->native) {
        native_init(&h->u.n);
    } else if (SHA256_Init(&h->u.ossl) != 1) {
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
    if (h->native) {
        native_update(&h->u.n, data, len);
    } else if (SHA256_Update(&h->u.ossl, data, len) != 1) {
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
    if (h->native) {
        native_final(&h->u.n, out);
    } else if (SHA256_Final(out, &h->u.ossl) != 1) {
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
