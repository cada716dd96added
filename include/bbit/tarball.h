/* Deterministic tar archives (same entries, same bytes), shared by
 * archive.create (runtime/lua/archive.c) and the server, which rebuilds an
 * artifact from its recipe (the blobs it is made of) instead of receiving it. */
#ifndef BBIT_TARBALL_H
#define BBIT_TARBALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bbit/store.h"

struct archive;
struct archive_entry;

/* Every entry's mtime: 1985-10-26T08:15:00Z, the date npm pack uses. */
#define BBIT_TAR_MTIME 499162500

/* "tar.gz", "tar.zst" or "tar". */
int bbit_tar_valid_format(const char *format);

/* Sets the format, filter and options of a new archive writer (before it is
 * opened): pax restricted, fixed compression levels, no gzip timestamp, the
 * last block unpadded. ARCHIVE_OK or the failing libarchive status. */
int bbit_tar_configure(struct archive *a, const char *format);

/* 0644, or 0755 when any execute bit is set: nothing else survives. */
int bbit_tar_perm(mode_t mode);

/* A header with the fixed fields (mtime, uid, gid); NULL when out of memory. */
struct archive_entry *bbit_tar_entry(const char *name, mode_t type, int perm, int64_t size);

/* ---- the native writer ----------------------------------------------------
 * Writes what libarchive writes (with bbit_tar_configure) for entries that
 * need no pax extension, without loading libarchive (~6 ms of dynamic
 * linking with libxml2 and ICU, once per command that packages). An entry it
 * cannot write as libarchive would is BBIT_TARW_UNSUPPORTED: the caller
 * starts the archive over with libarchive. */
typedef struct bbit_tarw bbit_tarw;

/* Receives the archive's bytes: 0, or -1 with err filled. */
typedef int (*bbit_tarw_sink)(void *ctx, const void *buf, size_t len, char *err, size_t errlen);

enum { BBIT_TARW_UNSUPPORTED = 1 };

/* "tar.gz" and "tar" are written natively; "tar.zst" only by libarchive. */
int bbit_tarw_native_format(const char *format);

/* NULL when the format is not native, or out of memory. */
bbit_tarw *bbit_tarw_open(const char *format, bbit_tarw_sink sink, void *ctx);

/* The next entry: a file (perm 0644 or 0755) of `size` bytes, or a folder.
 * 0, -1 with err filled, or BBIT_TARW_UNSUPPORTED (nothing written): a name
 * not printable ASCII or longer than 100 bytes, a size of 8 GiB or more. */
int bbit_tarw_header(bbit_tarw *w, const char *name, int is_dir, int perm, uint64_t size,
                     char *err, size_t errlen);

/* The current file's next bytes (at most what its header announced). */
int bbit_tarw_data(bbit_tarw *w, const void *buf, size_t len, char *err, size_t errlen);

/* Ends the archive (every file must have all its bytes) and flushes it. */
int bbit_tarw_finish(bbit_tarw *w, char *err, size_t errlen);

void bbit_tarw_free(bbit_tarw *w);

/* One regular file of a recipe: its name in the archive, 0644 or 0755, and
 * its content, a store object of `size` bytes. */
struct bbit_tar_member {
    const char *name;
    int perm;
    const char *blob;
    uint64_t size;
};

/* Builds the archive of members (in this order) from the store's objects
 * and stores it as an object; with expected_id (may be NULL) it must hash
 * to that (else nothing is stored: "hash mismatch ..."). max_size bounds the
 * archive (0 = none). id_out (may be NULL) gets the archive's id. */
int bbit_tar_build(bbit_store *store, const char *format, const struct bbit_tar_member *members,
                   size_t n, const char *expected_id, uint64_t max_size,
                   char id_out[BBIT_STORE_ID_LEN + 1], char *err, size_t errlen);

#endif
