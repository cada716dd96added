/* The native tar writer: see bbit_tarw_* in include/bbit/tarball.h.
 *
 * What libarchive writes for bbit's entries (pax restricted, see
 * bbit_tar_configure) when an entry needs no pax extension: one ustar header
 * per entry, the content padded to 512 bytes, two zero blocks at the end,
 * no padding of the last block; for tar.gz a gzip member with no name and no
 * timestamp around a raw deflate stream (level 6, 15-bit window, memLevel 8).
 * deflate's output depends only on the bytes fed, not on how they are cut,
 * so the same entries give the same bytes as libarchive (tests/lua/
 * test_archive.lua compares the two writers on the same entries). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bbit/lazylibs.h" /* zlib, loaded on first use */
#include "bbit/tarball.h"

enum { BLOCK = 512, OUT_BUF = 64 * 1024, GZIP_LEVEL = 6 };

/* The largest size a ustar header holds (11 octal digits); above it
 * libarchive adds a pax "size" record. */
#define USTAR_MAX_SIZE 077777777777ULL

struct bbit_tarw {
    bbit_tarw_sink sink;
    void *ctx;
    int gzip;
    z_stream z;
    int z_ready;
    uLong crc;
    uint32_t isize;      /* input length mod 2^32 (the gzip trailer's) */
    uint64_t left;       /* content bytes the current entry still expects */
    unsigned pad;        /* zero bytes due after the current entry's content */
    unsigned char *out;  /* pending output */
    size_t out_len;
};

static int flush_out(bbit_tarw *w, char *err, size_t errlen)
{
    if (w->out_len == 0)
        return 0;
    size_t n = w->out_len;
    w->out_len = 0;
    return w->sink(w->ctx, w->out, n, err, errlen);
}

/* Runs deflate over the input set in w->z until it is consumed (or, with
 * Z_FINISH, until the stream ends), passing full output buffers on. */
static int deflate_run(bbit_tarw *w, int flush, char *err, size_t errlen)
{
    for (;;) {
        w->z.next_out = w->out + w->out_len;
        w->z.avail_out = (uInt)(OUT_BUF - w->out_len);
        int r = deflate(&w->z, flush);
        w->out_len = OUT_BUF - w->z.avail_out;
        if (r == Z_STREAM_ERROR) {
            snprintf(err, errlen, "gzip: compression failed");
            return -1;
        }
        if (w->out_len == OUT_BUF && flush_out(w, err, errlen) != 0)
            return -1;
        if (flush == Z_FINISH ? r == Z_STREAM_END : (w->z.avail_in == 0 && w->z.avail_out > 0))
            return 0;
    }
}

/* The tar stream's next bytes. */
static int emit(bbit_tarw *w, const void *buf, size_t len, char *err, size_t errlen)
{
    if (!w->gzip) {
        while (len > 0) {
            size_t n = OUT_BUF - w->out_len < len ? OUT_BUF - w->out_len : len;
            memcpy(w->out + w->out_len, buf, n);
            w->out_len += n;
            buf = (const char *)buf + n;
            len -= n;
            if (w->out_len == OUT_BUF && flush_out(w, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    while (len > 0) { /* avail_in is a uInt */
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        w->crc = crc32(w->crc, buf, n);
        w->isize += n;
        w->z.next_in = (Bytef *)(uintptr_t)buf;
        w->z.avail_in = n;
        if (deflate_run(w, Z_NO_FLUSH, err, errlen) != 0)
            return -1;
        buf = (const char *)buf + n;
        len -= n;
    }
    return 0;
}

static int emit_zeros(bbit_tarw *w, size_t n, char *err, size_t errlen)
{
    static const unsigned char zeros[BLOCK * 2];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (emit(w, zeros, k, err, errlen) != 0)
            return -1;
        n -= k;
    }
    return 0;
}

int bbit_tarw_native_format(const char *format)
{
    return strcmp(format, "tar.gz") == 0 || strcmp(format, "tar") == 0;
}

bbit_tarw *bbit_tarw_open(const char *format, bbit_tarw_sink sink, void *ctx)
{
    if (!bbit_tarw_native_format(format))
        return NULL;
    bbit_tarw *w = calloc(1, sizeof *w);
    if (!w || !(w->out = malloc(OUT_BUF))) {
        free(w);
        return NULL;
    }
    w->sink = sink;
    w->ctx = ctx;
    w->gzip = strcmp(format, "tar.gz") == 0;
    if (w->gzip) {
        /* the member header: no flags, no mtime (gzip:!timestamp), no extra
         * flags at level 6, OS 3 (Unix) */
        static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        memcpy(w->out, header, sizeof header);
        w->out_len = sizeof header;
        if (deflateInit2(&w->z, GZIP_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(w->out);
            free(w);
            return NULL;
        }
        w->z_ready = 1;
        w->crc = crc32(0, Z_NULL, 0);
    }
    return w;
}

/* Writes v in octal into field[0..digits), zero-padded; the caller sets the
 * terminator(s) after it. */
static void octal(char *field, int digits, uint64_t v)
{
    for (int i = digits - 1; i >= 0; i--, v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

/* Does libarchive write this name in a plain ustar header? Printable ASCII
 * that fits the 100-byte name field; longer or other names get a pax
 * "path" record (or a prefix split), which only libarchive writes. */
static int name_fits(const char *name, size_t len, int is_dir)
{
    if (len == 0 || len + (is_dir ? 1 : 0) > 100) /* a folder's name gets a "/" */
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
            return 0;
    return 1;
}

int bbit_tarw_header(bbit_tarw *w, const char *name, int is_dir, int perm, uint64_t size,
                     char *err, size_t errlen)
{
    if (w->left != 0) {
        snprintf(err, errlen, "the previous entry is %llu bytes short",
                 (unsigned long long)w->left);
        return -1;
    }
    size_t len = strlen(name);
    if (!name_fits(name, len, is_dir) || size > USTAR_MAX_SIZE ||
        (perm != 0644 && perm != 0755))
        return BBIT_TARW_UNSUPPORTED;
    if (emit_zeros(w, w->pad, err, errlen) != 0)
        return -1;
    w->pad = 0;
    char h[BLOCK];
    memset(h, 0, sizeof h);
    memcpy(h, name, len);
    if (is_dir)
        h[len] = '/'; /* libarchive names a folder "name/" */
    octal(h + 100, 6, (uint64_t)perm); /* mode, uid, gid: 6 digits, space, NUL */
    memcpy(h + 106, " ", 2);
    memcpy(h + 108, "000000 ", 8);
    memcpy(h + 116, "000000 ", 8);
    octal(h + 124, 11, is_dir ? 0 : size); /* size, mtime: 11 digits, space */
    h[135] = ' ';
    octal(h + 136, 11, BBIT_TAR_MTIME);
    h[147] = ' ';
    memset(h + 148, ' ', 8); /* the checksum counts its own field as spaces */
    h[156] = is_dir ? '5' : '0';
    memcpy(h + 257, "ustar\0" "00", 8);
    memcpy(h + 329, "000000 ", 8); /* devmajor, devminor */
    memcpy(h + 337, "000000 ", 8);
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += (unsigned char)h[i];
    octal(h + 148, 6, sum); /* 6 digits, NUL, space */
    h[154] = '\0';
    if (emit(w, h, sizeof h, err, errlen) != 0)
        return -1;
    if (!is_dir) {
        w->left = size;
        w->pad = (unsigned)((BLOCK - size % BLOCK) % BLOCK);
    }
    return 0;
}

int bbit_tarw_data(bbit_tarw *w, const void *buf, size_t len, char *err, size_t errlen)
{
    if (len > w->left) {
        snprintf(err, errlen, "more content than the entry's size");
        return -1;
    }
    w->left -= len;
    return emit(w, buf, len, err, errlen);
}

int bbit_tarw_finish(bbit_tarw *w, char *err, size_t errlen)
{
    if (w->left != 0) {
        snprintf(err, errlen, "the last entry is %llu bytes short", (unsigned long long)w->left);
        return -1;
    }
    if (emit_zeros(w, w->pad + 2 * BLOCK, err, errlen) != 0)
        return -1;
    w->pad = 0;
    if (w->gzip) {
        w->z.next_in = Z_NULL;
        w->z.avail_in = 0;
        if (deflate_run(w, Z_FINISH, err, errlen) != 0)
            return -1;
        unsigned char trailer[8];
        for (int i = 0; i < 4; i++) {
            trailer[i] = (unsigned char)(w->crc >> (8 * i));
            trailer[4 + i] = (unsigned char)(w->isize >> (8 * i));
        }
        if (OUT_BUF - w->out_len < sizeof trailer && flush_out(w, err, errlen) != 0)
            return -1;
        memcpy(w->out + w->out_len, trailer, sizeof trailer);
        w->out_len += sizeof trailer;
    }
    return flush_out(w, err, errlen);
}

void bbit_tarw_free(bbit_tarw *w)
{
    if (!w)
        return;
    if (w->z_ready)
        deflateEnd(&w->z);
    free(w->out);
    free(w);
}
