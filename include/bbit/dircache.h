/* The folder-listing cache of the status walk (core.fs.walk_digests): for
 * each folder, the names it held the last time it was read, with the
 * folder's inode, mtime, ctime and size then. Adding, removing or renaming
 * an entry changes the folder's mtime, so while those four are the same the
 * names are too, and the walk stats them without opening the folder and
 * reading it (open, getdents twice, close: a third of its system calls).
 * git's untracked cache rests on the same rule.
 *
 * A folder changed at or after the walk's `recent_ns` is not recorded: a
 * second change within the filesystem's timestamp granularity could keep
 * its mtime. The file is only a cache: missing, damaged or from another
 * version, it reads as empty; it is written whole (temp file + rename, not
 * synced).
 *
 * The walk does not use it on network and FUSE filesystems, whose folder
 * stats may come from a client-side cache while another machine changes
 * them (runtime/lua/fs.c, remote_fs).
 *
 * Names are "type byte, name, NUL" back to back; the type is a DT_* value.
 * Lookups may run on many threads at once (the cache is read-only then). */
#ifndef BBIT_DIRCACHE_H
#define BBIT_DIRCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct bbit_dircache bbit_dircache;

/* Reads the cache file at path (an empty cache when it is missing or not
 * valid); NULL only when out of memory. */
bbit_dircache *bbit_dircache_load(const char *path);

/* The names recorded for folder `dir` (an absolute path) if its stat `st`
 * still matches; NULL otherwise. *len gets the size of the names block. */
const char *bbit_dircache_lookup(const bbit_dircache *c, const char *dir, const struct stat *st,
                                 size_t *len);

/* How many folders the loaded file held. */
size_t bbit_dircache_count(const bbit_dircache *c);

void bbit_dircache_free(bbit_dircache *c);

/* A growing buffer of records, one per folder, in the file's format: the
 * records of a walk, to save. */
struct bbit_dircache_out {
    char *data;
    size_t len, cap;
    size_t count;
};

/* Appends folder `dir`'s record (its names block: see above); -1 (ENOMEM). */
int bbit_dircache_record(struct bbit_dircache_out *out, const char *dir, const struct stat *st,
                         const char *names, size_t names_len);

/* Writes the records of outs[0..n) as the cache file at path (temp file +
 * rename in its folder, created if missing); -1 with errno on failure. */
int bbit_dircache_save(const char *path, const struct bbit_dircache_out *outs, size_t n);

#endif
