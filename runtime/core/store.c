/* The object store: see include/bbit/store.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "bbit/sha256.h"
#include "bbit/store.h"
#include "store_internal.h"

#define CHUNK_SIZE (128 * 1024) /* read size of file-based calls */
#define SHOWN_ID_MAX 80         /* how much of an invalid id an error message shows */

struct bbit_store_writer {
    bbit_store *store;
    enum bbit_store_input input;
    bool has_expected;
    char expected[BBIT_STORE_ID_LEN + 1];
    uint64_t max_size; /* 0 = no limit */
    uint64_t raw_size; /* uncompressed bytes seen */
    bbit_sha256 *sha;
    ZSTD_CStream *cstream; /* BBIT_STORE_RAW */
    ZSTD_DStream *dstream; /* BBIT_STORE_COMPRESSED */
    bool frame_done;       /* BBIT_STORE_COMPRESSED: the frame ended */
    bool failed;           /* a write failed: only abort is left */
    bool in_pack;          /* writing into the store's pending pack (not a temp file) */
    uint64_t pack_start;   /* in_pack: where this object's bytes start */
    unsigned char *buf;    /* zstd output */
    size_t buf_size;
    int fd;                /* the temp file, -1 when closed */
    char tmp_path[PATH_MAX];
};

/* ------------------------------------------------------------------------ */
/* Errors */

int store_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "object store: ");
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "object store: <subject>: <what>: <strerror(errno)>" */
int store_fail_errno(char *err, size_t errlen, const char *subject, const char *what)
{
    char buf[128];
    const char *reason = strerror_r(errno, buf, sizeof buf);
    if (what)
        return store_fail(err, errlen, "%s: %s: %s", subject, what, reason);
    return store_fail(err, errlen, "%s: %s", subject, reason);
}

static int fail_invalid_id(char *err, size_t errlen, const char *id)
{
    char shown[SHOWN_ID_MAX + 4];
    size_t n = 0;
    for (; id && id[n] && n < SHOWN_ID_MAX; n++)
        shown[n] = (id[n] >= 0x20 && id[n] < 0x7f) ? id[n] : '?';
    strcpy(shown + n, id && id[n] ? "..." : "");
    return store_fail(err, errlen, "invalid object id \"%s\" (expected 64 lowercase hex digits)",
                      shown);
}

/* Rewrites "object store: <rest>" in err as "object store: <subject>: <rest>". */
static int fail_with_subject(char *err, size_t errlen, const char *subject, const char *inner)
{
    static const char prefix[] = "object store: ";
    if (strncmp(inner, prefix, sizeof prefix - 1) == 0)
        inner += sizeof prefix - 1;
    return store_fail(err, errlen, "%s: %s", subject, inner);
}

/* ------------------------------------------------------------------------ */
/* SHA-256 (bbit/sha256.h) */

/* The lowercase hex digest into hex (65 bytes); frees nothing. */
int store_sha256_hex(bbit_sha256 *h, char hex[BBIT_STORE_ID_LEN + 1])
{
    unsigned char md[BBIT_SHA256_LEN];
    if (bbit_sha256_final(h, md) != 0)
        return -1;
    bbit_sha256_hex(md, hex);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Files */

int store_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

int store_mkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* mkdir -p path */
static int mkdir_parents(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf)
        return store_fail(err, errlen, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (store_mkdir(buf, 0755) != 0)
            return store_fail_errno(err, errlen, buf, "mkdir");
        *p = '/';
    }
    if (store_mkdir(buf, 0755) != 0)
        return store_fail_errno(err, errlen, buf, "mkdir");
    return 0;
}

int store_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Renames tmp to final unless final exists: 0, or -1 with errno (EEXIST
 * when final exists). Without RENAME_NOREPLACE (NFS, some FUSE and 9p
 * filesystems) final is checked first: a racing writer may then replace it. */
int store_rename_new(const char *tmp, const char *final)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (access(final, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(tmp, final);
}

/* Renames tmp to final unless final exists (then tmp is dropped): objects are
 * never rewritten (a replaced one would have identical bytes). */
int store_rename_no_replace(const char *tmp, const char *final)
{
    if (store_rename_new(tmp, final) == 0)
        return 0;
    return errno == EEXIST ? unlink(tmp) : -1;
}

/* ------------------------------------------------------------------------ */
/* Store */

bool bbit_store_is_id(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < BBIT_STORE_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[BBIT_STORE_ID_LEN] == '\0';
}

int bbit_store_check_id(const char *id, char *err, size_t errlen)
{
    return bbit_store_is_id(id) ? 0 : fail_invalid_id(err, errlen, id);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void store_free(bbit_store *store)
{
    free(store->dir);
    free(store->objects);
    free(store->tmp);
    free(store->packdir);
    store_packs_free(store);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

static int store_prepare_dirs(const bbit_store *store, unsigned flags, char *err, size_t errlen)
{
    if (flags & BBIT_STORE_CREATE)
        return mkdir_parents(store->tmp, err, errlen);
    struct stat st;
    if (stat(store->objects, &st) != 0 || !S_ISDIR(st.st_mode))
        return store_fail(err, errlen, "%s: not an object store (no objects/ directory)",
                          store->dir);
    /* a missing tmp/ only matters to writers, which then report it */
    (void)store_mkdir(store->tmp, 0755);
    return 0;
}

bbit_store *bbit_store_open(const char *dir, unsigned flags, char *err, size_t errlen)
{
    if (dir == NULL || *dir == '\0') {
        store_fail(err, errlen, "empty store directory");
        return NULL;
    }
    bbit_store *store = calloc(1, sizeof *store);
    if (store == NULL || (store->dir = strdup(dir)) == NULL) {
        free(store);
        store_fail(err, errlen, "%s: out of memory", dir);
        return NULL;
    }
    pthread_mutex_init(&store->lock, NULL); /* destroyed by store_free */
    for (size_t n = strlen(store->dir); n > 1 && store->dir[n - 1] == '/'; n--)
        store->dir[n - 1] = '\0';
    store->objects = join(store->dir, "objects");
    store->tmp = store->objects ? join(store->objects, "tmp") : NULL;
    store->packdir = store->objects ? join(store->objects, "pack") : NULL;
    store->fsync = (flags & BBIT_STORE_FSYNC) != 0;
    if (store->tmp == NULL || store->packdir == NULL) {
        store_fail(err, errlen, "%s: out of memory", dir);
        store_free(store);
        return NULL;
    }
    if (strlen(store->tmp) + BBIT_STORE_ID_LEN + 16 >= PATH_MAX) {
        store_fail(err, errlen, "%s: path too long", dir);
        store_free(store);
        return NULL;
    }
    if (store_prepare_dirs(store, flags, err, errlen) != 0 ||
        store_packs_load(store, err, errlen) != 0) {
        store_free(store);
        return NULL;
    }
    return store;
}

void bbit_store_close(bbit_store *store)
{
    if (store)
        store_free(store);
}

const char *bbit_store_dir(const bbit_store *store)
{
    return store->dir;
}

int bbit_store_object_path(const bbit_store *store, const char *id, char *out, size_t outlen,
                           char *err, size_t errlen)
{
    if (!bbit_store_is_id(id))
        return fail_invalid_id(err, errlen, id);
    int n = snprintf(out, outlen, "%s/%.2s/%s", store->objects, id, id + 2);
    if (n < 0 || (size_t)n >= outlen)
        return store_fail(err, errlen, "%s: path too long", store->objects);
    return 0;
}

/* The fan-out directory <dir>/objects/<id[0..2]> into out (PATH_MAX). */
static void fanout_dir(const bbit_store *store, const char *id, char *out)
{
    snprintf(out, PATH_MAX, "%s/%.2s", store->objects, id);
}

static int fail_missing(const bbit_store *store, const char *id, char *err, size_t errlen)
{
    char skipped[BBIT_STORE_ERR_SIZE];
    store_packs_skipped(store, skipped, sizeof skipped);
    if (*skipped)
        return store_fail(err, errlen, "%s: no object %s (a pack could not be read: %s)",
                          store->dir, id, skipped);
    return store_fail(err, errlen, "%s: no object %s", store->dir, id);
}

int bbit_store_has(const bbit_store *store, const char *id, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct store_loc loc;
    if (bbit_store_object_path(store, id, path, sizeof path, err, errlen) != 0)
        return -1;
    if (store_pack_find(store, id, &loc))
        return 1;
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT || errno == ENOTDIR)
        return 0;
    return store_fail_errno(err, errlen, path, NULL);
}

/* ------------------------------------------------------------------------ */
/* zstd contexts, kept per thread: a context is a few hundred KB that glibc
 * would map and unmap for every object (page faults, and a TLB flush on
 * every core), while the store reads and writes many small objects. Each
 * thread keeps one context of each kind for its next object. */

struct zstd_kept {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
};
static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void zstd_kept_free(void *p)
{
    struct zstd_kept *k = p;
    ZSTD_freeCCtx(k->c);
    ZSTD_freeDCtx(k->d);
    free(k);
}

static void zstd_key_init(void)
{
    pthread_key_create(&zstd_key, zstd_kept_free); /* freed when the thread ends */
}

static struct zstd_kept *zstd_kept(void)
{
    pthread_once(&zstd_once, zstd_key_init);
    struct zstd_kept *k = pthread_getspecific(zstd_key);
    if (!k && (k = calloc(1, sizeof *k)) && pthread_setspecific(zstd_key, k) != 0) {
        free(k);
        k = NULL;
    }
    return k;
}

static ZSTD_CCtx *cctx_take(void)
{
    struct zstd_kept *k = zstd_kept();
    if (k && k->c) {
        ZSTD_CCtx *c = k->c;
        k->c = NULL;
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        return c;
    }
    return ZSTD_createCCtx();
}

static void cctx_give(ZSTD_CCtx *c)
{
    struct zstd_kept *k = c ? zstd_kept() : NULL;
    if (k && !k->c)
        k->c = c;
    else
        ZSTD_freeCCtx(c);
}

static ZSTD_DCtx *dctx_take(void)
{
    struct zstd_kept *k = zstd_kept();
    if (k && k->d) {
        ZSTD_DCtx *d = k->d;
        k->d = NULL;
        ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
        return d;
    }
    return ZSTD_createDCtx();
}

static void dctx_give(ZSTD_DCtx *d)
{
    struct zstd_kept *k = d ? zstd_kept() : NULL;
    if (k && !k->d)
        k->d = d;
    else
        ZSTD_freeDCtx(d);
}

/* ------------------------------------------------------------------------ */
/* Writer */

static void writer_free(bbit_store_writer *w)
{
    if (w->in_pack)
        store_pending_release(w->store, NULL, w->pack_start, false, NULL, 0);
    else if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp_path);
    }
    bbit_sha256_free(w->sha);
    cctx_give(w->cstream);
    dctx_give(w->dstream);
    free(w->buf);
    free(w);
}

static int writer_init_codec(bbit_store_writer *w, unsigned long long pledged_size)
{
    if (w->input == BBIT_STORE_RAW) {
        w->cstream = cctx_take();
        w->buf_size = ZSTD_CStreamOutSize();
        /* small inputs get a small buffer: less allocation churn per object */
        if (pledged_size < w->buf_size && ZSTD_compressBound(pledged_size) < w->buf_size)
            w->buf_size = ZSTD_compressBound(pledged_size);
        if (w->cstream == NULL ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cstream, ZSTD_c_compressionLevel,
                                                BBIT_STORE_ZSTD_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(w->cstream, pledged_size)))
            return -1;
    } else {
        w->dstream = dctx_take();
        w->buf_size = ZSTD_DStreamOutSize();
        if (w->dstream == NULL ||
            ZSTD_isError(ZSTD_DCtx_setParameter(w->dstream, ZSTD_d_windowLogMax,
                                                BBIT_STORE_WINDOW_LOG_MAX)))
            return -1;
    }
    w->buf = malloc(w->buf_size);
    return w->buf ? 0 : -1;
}

/* begin, with the uncompressed size when known (ZSTD_CONTENTSIZE_UNKNOWN if
 * not): zstd then sizes its tables to the input, which makes small objects
 * cheap, and records the size in the frame header. size: the input's size
 * when known, else UINT64_MAX (while a pack is open, a big object is written
 * loose). */
static bbit_store_writer *writer_begin(bbit_store *store, enum bbit_store_input input,
                                       const char *expected_id, uint64_t max_size,
                                       unsigned long long pledged_size, uint64_t size, char *err,
                                       size_t errlen)
{
    if (expected_id && !bbit_store_is_id(expected_id)) {
        fail_invalid_id(err, errlen, expected_id);
        return NULL;
    }
    bbit_store_writer *w = calloc(1, sizeof *w);
    if (w == NULL) {
        store_fail(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = -1;
    w->store = store;
    w->input = input;
    w->max_size = max_size;
    if (expected_id) {
        w->has_expected = true;
        memcpy(w->expected, expected_id, sizeof w->expected);
    }
    if ((w->sha = bbit_sha256_new()) == NULL || writer_init_codec(w, pledged_size) != 0) {
        writer_free(w);
        store_fail(err, errlen, "cannot set up the hash or zstd context (out of memory?)");
        return NULL;
    }
    if (store->pending && (size == UINT64_MAX || size < BBIT_STORE_PACK_OBJECT_MAX)) {
        if (store_pending_claim(store, &w->fd, &w->pack_start, w->tmp_path, sizeof w->tmp_path,
                                err, errlen) != 0) {
            writer_free(w);
            return NULL;
        }
        w->in_pack = true;
        return w;
    }
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s/obj-XXXXXX", store->tmp);
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        store_fail_errno(err, errlen, store->tmp, "cannot create a temp file");
        writer_free(w);
        return NULL;
    }
    return w;
}

bbit_store_writer *bbit_store_writer_begin(bbit_store *store, enum bbit_store_input input,
                                           const char *expected_id, uint64_t max_size,
                                           char *err, size_t errlen)
{
    return writer_begin(store, input, expected_id, max_size, ZSTD_CONTENTSIZE_UNKNOWN, UINT64_MAX,
                        err, errlen);
}

bbit_store_writer *bbit_store_writer_begin_sized(bbit_store *store, enum bbit_store_input input,
                                                 const char *expected_id, uint64_t max_size,
                                                 uint64_t size, char *err, size_t errlen)
{
    unsigned long long pledged = input == BBIT_STORE_RAW ? size : ZSTD_CONTENTSIZE_UNKNOWN;
    return writer_begin(store, input, expected_id, max_size, pledged, size, err, errlen);
}

uint64_t bbit_store_writer_size(const bbit_store_writer *w)
{
    return w->raw_size;
}

static int writer_fail_size(bbit_store_writer *w, char *err, size_t errlen)
{
    return store_fail(err, errlen, "object exceeds the size limit of %llu bytes",
                      (unsigned long long)w->max_size);
}

static int writer_fail_zstd(char *err, size_t errlen, const char *what, size_t code)
{
    return store_fail(err, errlen, "%s (zstd: %s)", what, ZSTD_getErrorName(code));
}

/* Compresses in, writing the output, until zstd is done with it (directive
 * ZSTD_e_continue) or the frame is closed (ZSTD_e_end). */
static int writer_compress(bbit_store_writer *w, ZSTD_inBuffer *in, ZSTD_EndDirective directive,
                           char *err, size_t errlen)
{
    for (;;) {
        ZSTD_outBuffer out = {w->buf, w->buf_size, 0};
        size_t left = ZSTD_compressStream2(w->cstream, &out, in, directive);
        if (ZSTD_isError(left))
            return writer_fail_zstd(err, errlen, "compression failed", left);
        if (store_write_all(w->fd, w->buf, out.pos) != 0)
            return store_fail_errno(err, errlen, w->tmp_path, "write");
        bool finished = directive == ZSTD_e_end ? left == 0 : in->pos == in->size;
        if (finished)
            return 0;
    }
}

static int writer_write_raw(bbit_store_writer *w, const void *data, size_t len, char *err,
                            size_t errlen)
{
    if (w->max_size && w->raw_size + len > w->max_size)
        return writer_fail_size(w, err, errlen);
    w->raw_size += len;
    if (bbit_sha256_update(w->sha, data, len) != 0)
        return store_fail(err, errlen, "sha256 failed");
    ZSTD_inBuffer in = {data, len, 0};
    return writer_compress(w, &in, ZSTD_e_continue, err, errlen);
}

/* Decompresses in only to hash the content; the frame must end exactly at
 * the end of the input. */
static int writer_decompress(bbit_store_writer *w, ZSTD_inBuffer *in, char *err, size_t errlen)
{
    while (in->pos < in->size) {
        ZSTD_outBuffer out = {w->buf, w->buf_size, 0};
        size_t left = ZSTD_decompressStream(w->dstream, &out, in);
        if (ZSTD_isError(left))
            return writer_fail_zstd(err, errlen, "invalid zstd frame", left);
        w->raw_size += out.pos;
        if (w->max_size && w->raw_size > w->max_size)
            return writer_fail_size(w, err, errlen);
        if (bbit_sha256_update(w->sha, out.dst, out.pos) != 0)
            return store_fail(err, errlen, "sha256 failed");
        if (left == 0) {
            w->frame_done = true;
            break;
        }
    }
    if (in->pos < in->size)
        return store_fail(err, errlen, "invalid zstd frame (trailing data after the frame)");
    return 0;
}

static int writer_write_compressed(bbit_store_writer *w, const void *data, size_t len,
                                   char *err, size_t errlen)
{
    if (len == 0)
        return 0;
    if (w->frame_done)
        return store_fail(err, errlen, "invalid zstd frame (trailing data after the frame)");
    if (store_write_all(w->fd, data, len) != 0)
        return store_fail_errno(err, errlen, w->tmp_path, "write");
    ZSTD_inBuffer in = {data, len, 0};
    return writer_decompress(w, &in, err, errlen);
}

int bbit_store_writer_write(bbit_store_writer *w, const void *data, size_t len, char *err,
                            size_t errlen)
{
    if (w->failed)
        return store_fail(err, errlen, "write after a failed write (abort the writer)");
    int rc = w->input == BBIT_STORE_RAW ? writer_write_raw(w, data, len, err, errlen)
                                        : writer_write_compressed(w, data, len, err, errlen);
    if (rc != 0)
        w->failed = true;
    return rc;
}

/* Ends the frame (or checks it ended) and computes the id. */
static int writer_finish(bbit_store_writer *w, char id[BBIT_STORE_ID_LEN + 1], char *err,
                         size_t errlen)
{
    if (w->input == BBIT_STORE_RAW) {
        ZSTD_inBuffer in = {NULL, 0, 0};
        if (writer_compress(w, &in, ZSTD_e_end, err, errlen) != 0)
            return -1;
    } else if (!w->frame_done) {
        return store_fail(err, errlen, "truncated zstd frame");
    }
    if (store_sha256_hex(w->sha, id) != 0)
        return store_fail(err, errlen, "sha256 failed");
    if (w->has_expected && strcmp(id, w->expected) != 0)
        return store_fail(err, errlen, "hash mismatch: received bytes hash to %s, expected %s", id,
                          w->expected);
    return 0;
}

/* Closes temp file tmp (fd) and renames it into place as object id (or drops
 * it when the object exists). */
int store_install_loose(bbit_store *store, int fd, const char *tmp, const char *id, char *err,
                        size_t errlen)
{
    char dir[PATH_MAX], final[PATH_MAX];
    if (store->fsync && fsync(fd) != 0) {
        store_fail_errno(err, errlen, tmp, "fsync");
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (fchmod(fd, 0444) != 0) {
        store_fail_errno(err, errlen, tmp, "chmod");
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        store_fail_errno(err, errlen, tmp, "close");
        unlink(tmp);
        return -1;
    }
    fanout_dir(store, id, dir);
    bbit_store_object_path(store, id, final, sizeof final, NULL, 0);
    /* the fan-out directory usually exists: make it only when the rename says so */
    int rc = store_rename_no_replace(tmp, final);
    if (rc != 0 && errno == ENOENT && store_mkdir(dir, 0755) == 0)
        rc = store_rename_no_replace(tmp, final);
    if (rc != 0) {
        store_fail_errno(err, errlen, final, "cannot store the object");
        unlink(tmp);
        return -1;
    }
    if (store->fsync && store_fsync_dir(dir) != 0)
        return store_fail_errno(err, errlen, dir, "fsync");
    return 0;
}

/* Installs the finished object: a loose file, or a range of the pending pack
 * (dropped when the store already has the object). */
static int writer_install(bbit_store_writer *w, const char *id, char *err, size_t errlen)
{
    if (w->in_pack) {
        w->in_pack = false;
        w->fd = -1; /* the pack's: not the writer's to close */
        int has = bbit_store_has(w->store, id, err, errlen);
        int rc = store_pending_release(w->store, id, w->pack_start, has == 0, err, errlen);
        return has < 0 ? -1 : rc;
    }
    int fd = w->fd;
    w->fd = -1;
    struct store_loc loc;
    if (store_pack_find(w->store, id, &loc)) { /* packed already: no loose copy */
        close(fd);
        unlink(w->tmp_path);
        return 0;
    }
    if (w->store->pending)
        store_pending_note_loose(w->store);
    return store_install_loose(w->store, fd, w->tmp_path, id, err, errlen);
}

int bbit_store_writer_commit(bbit_store_writer *w, char id_out[BBIT_STORE_ID_LEN + 1],
                             char *err, size_t errlen)
{
    char id[BBIT_STORE_ID_LEN + 1];
    int rc;
    if (w->failed)
        rc = store_fail(err, errlen, "commit after a failed write");
    else if ((rc = writer_finish(w, id, err, errlen)) == 0)
        rc = writer_install(w, id, err, errlen);
    if (rc == 0)
        memcpy(id_out, id, sizeof id);
    writer_free(w);
    return rc;
}

void bbit_store_writer_abort(bbit_store_writer *w)
{
    if (w)
        writer_free(w);
}

/* ------------------------------------------------------------------------ */
/* Putting */

int bbit_store_put(bbit_store *store, const void *data, size_t len,
                   char id_out[BBIT_STORE_ID_LEN + 1], char *err, size_t errlen)
{
    bbit_store_writer *w = writer_begin(store, BBIT_STORE_RAW, NULL, 0, len, len, err, errlen);
    if (w == NULL)
        return -1;
    if (bbit_store_writer_write(w, data, len, err, errlen) != 0) {
        writer_free(w);
        return -1;
    }
    return bbit_store_writer_commit(w, id_out, err, errlen);
}

/* Feeds file fd (of subject path) to w in chunks; expected_size is checked
 * when not UINT64_MAX (a file that changes while read is refused). */
static int writer_feed_fd(bbit_store_writer *w, int fd, const char *path, uint64_t expected_size,
                          char *err, size_t errlen)
{
    /* a small file is read whole (+1 byte to see it grow) */
    size_t chunk = expected_size < CHUNK_SIZE ? (size_t)expected_size + 1 : CHUNK_SIZE;
    unsigned char *buf = malloc(chunk);
    char inner[BBIT_STORE_ERR_SIZE];
    uint64_t total = 0;
    int rc = 0;
    if (buf == NULL)
        return store_fail(err, errlen, "%s: out of memory", path);
    for (;;) {
        ssize_t n = read_some(fd, buf, chunk);
        if (n < 0) {
            rc = store_fail_errno(err, errlen, path, "read");
            break;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (expected_size != UINT64_MAX && total > expected_size)
            break;
        if (bbit_store_writer_write(w, buf, (size_t)n, inner, sizeof inner) != 0) {
            rc = fail_with_subject(err, errlen, path, inner);
            break;
        }
    }
    free(buf);
    if (rc == 0 && expected_size != UINT64_MAX && total != expected_size)
        rc = store_fail(err, errlen, "%s: file changed while it was read", path);
    return rc;
}

/* Feeds file fd (of subject path, size bytes) to w and commits it: id_out
 * and size_out (may be NULL) get the object's id and size. w is freed. */
static int store_fd(bbit_store_writer *w, int fd, const char *path, uint64_t size,
                    char id_out[BBIT_STORE_ID_LEN + 1], uint64_t *size_out, char *err,
                    size_t errlen)
{
    char inner[BBIT_STORE_ERR_SIZE];
    if (writer_feed_fd(w, fd, path, size, err, errlen) != 0) {
        bbit_store_writer_abort(w);
        return -1;
    }
    uint64_t raw_size = bbit_store_writer_size(w);
    if (bbit_store_writer_commit(w, id_out, inner, sizeof inner) != 0)
        return fail_with_subject(err, errlen, path, inner);
    if (size_out)
        *size_out = raw_size;
    return 0;
}

/* Opens path for reading; it must be a regular file. */
static int open_regular(const char *path, struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return store_fail_errno(err, errlen, path, NULL);
    if (fstat(fd, st) != 0) {
        store_fail_errno(err, errlen, path, "stat");
        close(fd);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        store_fail(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* The common part of put_file and put_raw_file. */
/* The SHA-256 of the rest of fd (hex). */
static int hash_fd(int fd, const char *path, char hex[BBIT_STORE_ID_LEN + 1], char *err,
                   size_t errlen)
{
    bbit_sha256 *h = bbit_sha256_new();
    int rc = 0;
    if (!h)
        rc = store_fail(err, errlen, "%s: out of memory", path);
    else if (bbit_sha256_update_fd(h, fd, NULL) != 0)
        rc = store_fail_errno(err, errlen, path, "read");
    else if (store_sha256_hex(h, hex) != 0)
        rc = store_fail(err, errlen, "sha256 failed");
    bbit_sha256_free(h);
    return rc;
}

/* put_file: the file is hashed first, so an object the store already has
 * (an unchanged file of a changed component) costs no write at all. The
 * second read, when the object is new, is checked against the first hash.
 * (Writing new objects' temp files in their fan-out folder instead of
 * objects/tmp was measured slower: ext4 then allocates inodes across many
 * block groups.) */
static int put_file_hashed_first(bbit_store *store, const char *path,
                                 char id_out[BBIT_STORE_ID_LEN + 1], uint64_t *size_out,
                                 char *err, size_t errlen)
{
    char id[BBIT_STORE_ID_LEN + 1];
    struct stat st;
    int fd = open_regular(path, &st, err, errlen);
    if (fd < 0)
        return -1;
    int rc = hash_fd(fd, path, id, err, errlen);
    int has = rc == 0 ? bbit_store_has(store, id, err, errlen) : -1;
    if (has == 1) {
        memcpy(id_out, id, sizeof id);
        if (size_out)
            *size_out = (uint64_t)st.st_size;
    } else if (has == 0) {
        uint64_t size = (uint64_t)st.st_size;
        bbit_store_writer *w = NULL;
        if (lseek(fd, 0, SEEK_SET) != 0)
            rc = store_fail_errno(err, errlen, path, "seek");
        else if (!(w = writer_begin(store, BBIT_STORE_RAW, id, 0, size, size, err, errlen)))
            rc = -1;
        else
            rc = store_fd(w, fd, path, size, id_out, size_out, err, errlen);
    } else {
        rc = -1;
    }
    close(fd);
    return rc;
}

static int put_from_file(bbit_store *store, const char *path, enum bbit_store_input input,
                         const char *expected_id, uint64_t max_size,
                         char id_out[BBIT_STORE_ID_LEN + 1], uint64_t *size_out, char *err,
                         size_t errlen)
{
    struct stat st;
    int fd = open_regular(path, &st, err, errlen);
    if (fd < 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    bbit_store_writer *w =
        bbit_store_writer_begin_sized(store, input, expected_id, max_size, size, err, errlen);
    int rc = w ? store_fd(w, fd, path, size, id_out, size_out, err, errlen) : -1;
    close(fd);
    return rc;
}

int bbit_store_put_file(bbit_store *store, const char *path, char id_out[BBIT_STORE_ID_LEN + 1],
                        uint64_t *size_out, char *err, size_t errlen)
{
    return put_file_hashed_first(store, path, id_out, size_out, err, errlen);
}

int bbit_store_put_raw_file(bbit_store *store, const char *path, const char *expected_id,
                            uint64_t max_size, char id_out[BBIT_STORE_ID_LEN + 1], char *err,
                            size_t errlen)
{
    return put_from_file(store, path, BBIT_STORE_COMPRESSED, expected_id, max_size, id_out,
                         NULL, err, errlen);
}

/* ------------------------------------------------------------------------ */
/* Reading */

/* Receives decompressed (not yet verified) bytes; returns 0 or -1 with err set. */
typedef bbit_store_sink sink_fn;

struct reader {
    const char *path;
    uint64_t max_size;
    sink_fn sink;
    void *sink_ctx;
    ZSTD_DStream *dstream;
    bbit_sha256 *sha;
    unsigned char *in_buf, *out_buf;
    size_t in_size, out_size;
    uint64_t total;
    bool frame_done;
};

static int reader_fail_corrupt(struct reader *r, char *err, size_t errlen, const char *why)
{
    return store_fail(err, errlen, "%s: corrupt object (%s)", r->path, why);
}

/* Sizes the output buffer from the first chunk: a small object whose frame
 * header records its size gets a buffer of that size, not the default 128 KiB. */
static int reader_alloc_output(struct reader *r, size_t first_len)
{
    unsigned long long content = ZSTD_getFrameContentSize(r->in_buf, first_len);
    r->out_size = ZSTD_DStreamOutSize();
    if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != ZSTD_CONTENTSIZE_ERROR &&
        content < r->out_size)
        r->out_size = (size_t)content + 1;
    r->out_buf = malloc(r->out_size);
    return r->out_buf ? 0 : -1;
}

/* Decompresses one chunk read from the object file. */
static int reader_chunk(struct reader *r, size_t len, char *err, size_t errlen)
{
    ZSTD_inBuffer in = {r->in_buf, len, 0};
    if (r->out_buf == NULL && reader_alloc_output(r, len) != 0)
        return store_fail(err, errlen, "%s: out of memory", r->path);
    if (r->frame_done)
        return reader_fail_corrupt(r, err, errlen, "trailing data after the zstd frame");
    while (in.pos < in.size) {
        ZSTD_outBuffer out = {r->out_buf, r->out_size, 0};
        size_t left = ZSTD_decompressStream(r->dstream, &out, &in);
        if (ZSTD_isError(left))
            return store_fail(err, errlen, "%s: corrupt object (zstd: %s)", r->path,
                              ZSTD_getErrorName(left));
        r->total += out.pos;
        if (r->max_size && r->total > r->max_size)
            return store_fail(err, errlen, "%s: object is larger than the limit of %llu bytes",
                              r->path, (unsigned long long)r->max_size);
        if (bbit_sha256_update(r->sha, out.dst, out.pos) != 0)
            return store_fail(err, errlen, "sha256 failed");
        if (r->sink && r->sink(r->sink_ctx, out.dst, out.pos, err, errlen) != 0)
            return -1;
        if (left == 0) {
            r->frame_done = true;
            break;
        }
    }
    if (in.pos < in.size)
        return reader_fail_corrupt(r, err, errlen, "trailing data after the zstd frame");
    return 0;
}

static int reader_run(struct reader *r, const struct store_loc *loc, const char *id, char *err,
                      size_t errlen)
{
    char actual[BBIT_STORE_ID_LEN + 1];
    uint64_t at = loc->offset, end = loc->offset + loc->length;
    while (at < end) {
        size_t want = end - at < r->in_size ? (size_t)(end - at) : r->in_size;
        ssize_t n;
        do
            n = pread(loc->fd, r->in_buf, want, (off_t)at);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return store_fail_errno(err, errlen, r->path, "read");
        if (n == 0)
            break; /* a loose file that shrank: the frame check below reports it */
        at += (uint64_t)n;
        if (reader_chunk(r, (size_t)n, err, errlen) != 0)
            return -1;
    }
    if (!r->frame_done)
        return store_fail(err, errlen, "%s: truncated zstd frame", r->path);
    if (store_sha256_hex(r->sha, actual) != 0)
        return store_fail(err, errlen, "sha256 failed");
    if (strcmp(actual, id) != 0)
        return store_fail(err, errlen, "%s: corrupt object (content hash is %s, expected %s)",
                          r->path, actual, id);
    return 0;
}

/* Finds object id: 1 with loc filled (close loc->fd when loc->owned), 0 when
 * the store lacks it, -1 on an error. */
static int locate(const bbit_store *store, const char *id, struct store_loc *loc, char *err,
                  size_t errlen)
{
    if (!bbit_store_is_id(id))
        return fail_invalid_id(err, errlen, id);
    if (store_pack_find(store, id, loc))
        return 1;
    bbit_store_object_path(store, id, loc->path, sizeof loc->path, NULL, 0);
    loc->fd = open(loc->path, O_RDONLY | O_CLOEXEC);
    if (loc->fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0
                                                   : store_fail_errno(err, errlen, loc->path, NULL);
    struct stat st;
    if (fstat(loc->fd, &st) != 0) {
        store_fail_errno(err, errlen, loc->path, "stat");
        close(loc->fd);
        return -1;
    }
    loc->owned = true;
    loc->offset = 0;
    loc->length = (uint64_t)st.st_size;
    return 1;
}

/* locate, with a missing object as an error. A miss first reads the pack
 * folder again when it changed since the store was opened: packs another
 * process committed meanwhile (a `bbit show` racing a tag). The store's pack
 * list is a cache: refreshing it does not change what `store` means. */
static int locate_existing(const bbit_store *store, const char *id, struct store_loc *loc,
                           char *err, size_t errlen)
{
    int found = locate(store, id, loc, err, errlen);
    if (found == 0 && store_packs_refresh(store))
        found = locate(store, id, loc, err, errlen);
    return found == 1 ? 0 : found == 0 ? fail_missing(store, id, err, errlen) : -1;
}

static void loc_close(struct store_loc *loc)
{
    if (loc->owned)
        close(loc->fd);
}

/* Streams object id through sink, then verifies its hash. */
static int read_object(const bbit_store *store, const char *id, uint64_t max_size, sink_fn sink,
                       void *sink_ctx, uint64_t *size_out, char *err, size_t errlen)
{
    struct store_loc loc;
    if (locate_existing(store, id, &loc, err, errlen) != 0)
        return -1;
    struct reader r = {.path = loc.path, .max_size = max_size, .sink = sink, .sink_ctx = sink_ctx};
    r.in_size = ZSTD_DStreamInSize();
    if (loc.length < r.in_size)
        r.in_size = (size_t)loc.length + 1; /* a small object is read in one go */
    r.dstream = dctx_take();
    r.sha = bbit_sha256_new();
    r.in_buf = malloc(r.in_size);
    int rc;
    if (!r.dstream || !r.sha || !r.in_buf ||
        ZSTD_isError(ZSTD_DCtx_setParameter(r.dstream, ZSTD_d_windowLogMax,
                                            BBIT_STORE_WINDOW_LOG_MAX)))
        rc = store_fail(err, errlen, "%s: out of memory", loc.path);
    else
        rc = reader_run(&r, &loc, id, err, errlen);
    if (rc == 0 && size_out)
        *size_out = r.total;
    loc_close(&loc);
    dctx_give(r.dstream);
    bbit_sha256_free(r.sha);
    free(r.in_buf);
    free(r.out_buf);
    return rc;
}

int bbit_store_read(const bbit_store *store, const char *id, uint64_t max_size,
                    bbit_store_sink sink, void *sink_ctx, uint64_t *size_out, char *err,
                    size_t errlen)
{
    if (!bbit_store_is_id(id))
        return fail_invalid_id(err, errlen, id);
    return read_object(store, id, max_size, sink, sink_ctx, size_out, err, errlen);
}

struct memory_sink {
    unsigned char *data;
    size_t len, cap;
};

static int memory_sink(void *ctx, const void *data, size_t len, char *err, size_t errlen)
{
    struct memory_sink *m = ctx;
    if (m->len + len + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len + 1)
            cap *= 2;
        unsigned char *p = realloc(m->data, cap);
        if (p == NULL)
            return store_fail(err, errlen, "out of memory");
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return 0;
}

int bbit_store_get(const bbit_store *store, const char *id, uint64_t max_size, void **data,
                   size_t *len, char *err, size_t errlen)
{
    struct memory_sink m = {0};
    *data = NULL;
    *len = 0;
    if (max_size == 0 || max_size > SIZE_MAX - 1)
        max_size = SIZE_MAX - 1;
    if (read_object(store, id, max_size, memory_sink, &m, NULL, err, errlen) != 0 ||
        memory_sink(&m, "", 0, err, errlen) != 0) {
        free(m.data);
        return -1;
    }
    m.data[m.len] = '\0';
    *data = m.data;
    *len = m.len;
    return 0;
}

struct file_sink {
    int fd;
    const char *path;
};

static int file_sink(void *ctx, const void *data, size_t len, char *err, size_t errlen)
{
    struct file_sink *f = ctx;
    if (store_write_all(f->fd, data, len) != 0)
        return store_fail_errno(err, errlen, f->path, "write");
    return 0;
}

/* Makes the verified temp file tmp the destination dest. */
static int install_file(const bbit_store *store, int fd, const char *tmp, const char *dest,
                        mode_t mode, char *err, size_t errlen)
{
    if (fchmod(fd, mode) != 0)
        return store_fail_errno(err, errlen, tmp, "chmod");
    if (store->fsync && fsync(fd) != 0)
        return store_fail_errno(err, errlen, tmp, "fsync");
    if (rename(tmp, dest) != 0)
        return store_fail_errno(err, errlen, dest, "rename");
    return 0;
}

int bbit_store_get_file(const bbit_store *store, const char *id, const char *dest, mode_t mode,
                        char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    if (!bbit_store_is_id(id))
        return fail_invalid_id(err, errlen, id);
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dest);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return store_fail(err, errlen, "%s: path too long", dest);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return store_fail_errno(err, errlen, dest, "cannot create a temp file");
    struct file_sink f = {fd, tmp};
    int rc = read_object(store, id, 0, file_sink, &f, NULL, err, errlen);
    if (rc == 0)
        rc = install_file(store, fd, tmp, dest, mode, err, errlen);
    if (close(fd) != 0 && rc == 0)
        rc = store_fail_errno(err, errlen, tmp, "close");
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int bbit_store_verify(const bbit_store *store, const char *id, uint64_t *size_out, char *err,
                      size_t errlen)
{
    return read_object(store, id, 0, NULL, NULL, size_out, err, errlen);
}

int bbit_store_size_on_disk(const bbit_store *store, const char *id, uint64_t *size_out,
                            char *err, size_t errlen)
{
    struct store_loc loc;
    if (locate_existing(store, id, &loc, err, errlen) != 0)
        return -1;
    *size_out = loc.length;
    loc_close(&loc);
    return 0;
}

int bbit_store_open_raw(const bbit_store *store, const char *id, uint64_t *offset_out,
                        uint64_t *size_out, char *err, size_t errlen)
{
    struct store_loc loc;
    if (locate_existing(store, id, &loc, err, errlen) != 0)
        return -1;
    int fd = loc.fd;
    if (!loc.owned && (fd = fcntl(loc.fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return store_fail_errno(err, errlen, loc.path, "dup");
    *offset_out = loc.offset;
    if (size_out)
        *size_out = loc.length;
    return fd;
}

int bbit_store_copy_raw(const bbit_store *store, const char *id, int out, char *err,
                        size_t errlen)
{
    struct store_loc loc;
    if (locate_existing(store, id, &loc, err, errlen) != 0)
        return -1;
    int rc = store_copy_range(loc.fd, loc.offset, loc.length, out);
    if (rc != 0)
        store_fail_errno(err, errlen, loc.path, "copy");
    loc_close(&loc);
    return rc;
}
