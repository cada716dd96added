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
