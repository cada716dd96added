/* Deterministic tar archives: see include/bbit/tarball.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bbit/lazylibs.h" /* libarchive, loaded on first use */
#include "bbit/tarball.h"

#define ZSTD_LEVEL "3"
#define GZIP_LEVEL "6"

int bbit_tar_valid_format(const char *f)
{
    return strcmp(f, "tar.gz") == 0 || strcmp(f, "tar.zst") == 0 || strcmp(f, "tar") == 0;
}

int bbit_tar_configure(struct archive *a, const char *format)
{
    int r = archive_write_set_format_pax_restricted(a);
    /* libarchive pads the last block unless it writes to a regular file:
     * fixed here so a file and a callback get the same bytes */
    if (r == ARCHIVE_OK)
        r = archive_write_set_bytes_in_last_block(a, 1);
    if (r != ARCHIVE_OK)
        return r;
    if (strcmp(format, "tar.gz") == 0) {
        if ((r = archive_write_add_filter_gzip(a)) != ARCHIVE_OK)
            return r;
        return archive_write_set_options(a, "gzip:!timestamp,gzip:compression-level=" GZIP_LEVEL);
    }
    if (strcmp(format, "tar.zst") == 0) {
        if ((r = archive_write_add_filter_zstd(a)) != ARCHIVE_OK)
            return r;
        return archive_write_set_options(a, "zstd:compression-level=" ZSTD_LEVEL);
    }
    return archive_write_add_filter_none(a);
}

int bbit_tar_perm(mode_t mode)
{
    return (mode & 0111) ? 0755 : 0644;
}

struct archive_entry *bbit_tar_entry(const char *name, mode_t type, int perm, int64_t size)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return NULL;
    archive_entry_set_pathname_utf8(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, BBIT_TAR_MTIME, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    return e;
}

/* ---- building from the store -------------------------------------------- */

struct build {
    bbit_store_writer *out;
    struct archive *a;  /* libarchive's writer, or NULL: */
    bbit_tarw *native;  /* the native one */
    char *err;
    size_t errlen;
    uint64_t left; /* bytes the current member may still write */
};

/* The archive's bytes: into the store writer (which hashes and compresses). */
static int store_sink(void *ctx, const void *buf, size_t len, char *err, size_t errlen)
{
    struct build *b = ctx;
    return bbit_store_writer_write(b->out, buf, len, err, errlen);
}

/* libarchive's output callback. */
static la_ssize_t out_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct build *b = ctx;
    if (store_sink(b, buf, len, b->err, b->errlen) != 0) {
        archive_set_error(a, EIO, "%s", b->err);
        return -1;
    }
    return (la_ssize_t)len;
}

/* A member's content, from the store into the archive. */
static int member_sink(void *ctx, const void *data, size_t len, char *err, size_t errlen)
{
    struct build *b = ctx;
    if (len > b->left) {
        snprintf(err, errlen, "the object is larger than the recipe says");
        return -1;
    }
    b->left -= len;
    if (b->native)
        return len ? bbit_tarw_data(b->native, data, len, err, errlen) : 0;
    if (len && archive_write_data(b->a, data, len) != (la_ssize_t)len) {
        snprintf(err, errlen, "%s", archive_error_string(b->a));
        return -1;
    }
    return 0;
}

/* The member's header; 0, -1, or BBIT_TARW_UNSUPPORTED (native only). */
static int member_header(struct build *b, const struct bbit_tar_member *m)
{
    if (b->native) {
        char why[256];
        int r = bbit_tarw_header(b->native, m->name, 0, m->perm, m->size, why, sizeof why);
        if (r < 0)
            snprintf(b->err, b->errlen, "%s: %s", m->name, why);
        return r;
    }
    struct archive_entry *e = bbit_tar_entry(m->name, AE_IFREG, m->perm, (int64_t)m->size);
    if (!e) {
        snprintf(b->err, b->errlen, "out of memory");
        return -1;
    }
    int r = archive_write_header(b->a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) {
        snprintf(b->err, b->errlen, "%s: %s", m->name, archive_error_string(b->a));
        return -1;
    }
    return 0;
}

static int add_member(struct build *b, bbit_store *store, const struct bbit_tar_member *m)
{
    if (m->perm != 0644 && m->perm != 0755) {
        snprintf(b->err, b->errlen, "%s: mode must be 644 or 755", m->name);
        return -1;
    }
    int r = member_header(b, m);
    if (r != 0)
        return r;
    b->left = m->size;
    char why[BBIT_STORE_ERR_SIZE];
    if (bbit_store_read(store, m->blob, m->size, member_sink, b, NULL, why, sizeof why) != 0) {
        snprintf(b->err, b->errlen, "%s: %s", m->name, why);
        return -1;
    }
    if (b->left != 0) {
        snprintf(b->err, b->errlen, "%s: object %s is smaller than the recipe says", m->name,
                 m->blob);
        return -1;
    }
    return 0;
}

/* One attempt: natively, or with libarchive. 0, -1, or BBIT_TARW_UNSUPPORTED. */
static int build_with(struct build *b, bbit_store *store, const char *format, int native,
                      const struct bbit_tar_member *members, size_t n)
{
    int rc = -1;
    if (native) {
        if (!(b->native = bbit_tarw_open(format, store_sink, b))) {
            snprintf(b->err, b->errlen, "out of memory");
            return -1;
        }
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = add_member(b, store, &members[i]);
        if (rc == 0)
            rc = bbit_tarw_finish(b->native, b->err, b->errlen);
        bbit_tarw_free(b->native);
        b->native = NULL;
        return rc;
    }
    b->a = archive_write_new();
    if (!b->a) {
        snprintf(b->err, b->errlen, "out of memory");
    } else if (bbit_tar_configure(b->a, format) != ARCHIVE_OK ||
               archive_write_open(b->a, b, NULL, out_write, NULL) != ARCHIVE_OK) {
        snprintf(b->err, b->errlen, "%s", archive_error_string(b->a));
    } else {
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = add_member(b, store, &members[i]);
        if (rc == 0 && archive_write_close(b->a) != ARCHIVE_OK) {
            snprintf(b->err, b->errlen, "%s", archive_error_string(b->a));
            rc = -1;
        }
    }
    if (b->a)
        archive_write_free(b->a);
    b->a = NULL;
    return rc;
}

int bbit_tar_build(bbit_store *store, const char *format, const struct bbit_tar_member *members,
                   size_t n, const char *expected_id, uint64_t max_size,
                   char id_out[BBIT_STORE_ID_LEN + 1], char *err, size_t errlen)
{
    if (!bbit_tar_valid_format(format)) {
        snprintf(err, errlen, "unknown archive format '%.40s'", format);
        return -1;
    }
    struct build b = {.err = err, .errlen = errlen};
    /* natively first; a member only libarchive writes starts it over with libarchive */
    for (int native = bbit_tarw_native_format(format);; native = 0) {
        b.out = bbit_store_writer_begin(store, BBIT_STORE_RAW, expected_id, max_size, err, errlen);
        if (!b.out)
            return -1;
        int rc = build_with(&b, store, format, native, members, n);
        if (rc == 0)
            break;
        bbit_store_writer_abort(b.out);
        if (rc != BBIT_TARW_UNSUPPORTED)
            return -1;
    }
    char id[BBIT_STORE_ID_LEN + 1];
    return bbit_store_writer_commit(b.out, id_out ? id_out : id, err, errlen);
}
