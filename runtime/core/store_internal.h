/* Shared between store.c (loose objects, the writer, reads) and
 * store_pack.c (pack files). Not part of the public API (bbit/store.h). */
#ifndef BBIT_STORE_INTERNAL_H
#define BBIT_STORE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "bbit/sha256.h"
#include "bbit/store.h"

struct store_pack;    /* a committed pack: store_pack.c */
struct store_pending; /* the pack being written: store_pack.c */

struct bbit_store {
    char *dir;     /* as given, without trailing slashes */
    char *objects; /* <dir>/objects */
    char *tmp;     /* <dir>/objects/tmp */
    char *packdir; /* <dir>/objects/pack */
    bool fsync;
    struct store_pack *packs; /* loaded at open (and as this store adds packs) */
    size_t npacks;
    struct store_pending *pending; /* NULL unless bbit_store_pack_begin */
    char *skipped; /* why a pack was not loaded (the first one), or NULL */
    struct timespec packdir_mtime; /* of objects/pack when the packs were loaded (0: none) */
    bool packdir_racy;             /* ... and that was too recent to tell a later change */
    /* A read that misses may load the packs again (store_packs_refresh) while
     * other threads read: lookups and that refresh hold this lock, and a
     * replaced pack list is kept (fds and mappings valid) until close. */
    pthread_mutex_t lock;
    struct retired_packs *retired;
};

/* Where an object's stored bytes (one zstd frame) are: a loose file (owned
 * fd, offset 0) or a range of a pack (the pack's fd, not owned). */
struct store_loc {
    int fd;
    bool owned;
    uint64_t offset, length;
    char path[PATH_MAX]; /* the file, for messages */
};

/* Errors and files (store.c) */
int store_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int store_fail_errno(char *err, size_t errlen, const char *subject, const char *what);
int store_sha256_hex(bbit_sha256 *h, char hex[BBIT_STORE_ID_LEN + 1]);
int store_write_all(int fd, const void *data, size_t len);
int store_mkdir(const char *path, mode_t mode);
int store_fsync_dir(const char *path);
int store_rename_new(const char *tmp, const char *final); /* -1 with EEXIST when final exists */
int store_rename_no_replace(const char *tmp, const char *final);  /* drops tmp when final exists */
/* Copies len bytes at offset of file in to out's current position (errno set
 * on failure). store_pack.c. */
int store_copy_range(int in, uint64_t offset, uint64_t len, int out);
/* Makes the complete temp file tmp (fd, closed here) loose object id. */
int store_install_loose(bbit_store *store, int fd, const char *tmp, const char *id, char *err,
                        size_t errlen);

/* Packs (store_pack.c) */
int store_packs_load(bbit_store *store, char *err, size_t errlen);
/* A read missed: loads the packs again when objects/pack changed since they
 * were loaded (another process committed or merged packs). True when it did
 * (the read should look again). Thread-safe; failures keep what was loaded. */
bool store_packs_refresh(const bbit_store *store);
/* The reason a pack was skipped (see bbit_store skipped) into out, or "". */
void store_packs_skipped(const bbit_store *store, char *out, size_t outlen);
void store_packs_free(bbit_store *store);
/* 1 and loc (fd not owned) when a pack or the pending pack has id, else 0. */
int store_pack_find(const bbit_store *store, const char *id, struct store_loc *loc);
/* The pending pack's writer slot: claim gives its fd and the offset new
 * bytes start at; release either keeps [start, end) as object id or
 * truncates the pack back to start. */
int store_pending_claim(bbit_store *store, int *fd, uint64_t *start, char *path, size_t pathlen,
                        char *err, size_t errlen);
/* A big object was stored loose while the pack is open: a synced commit
 * flushes it too. */
void store_pending_note_loose(bbit_store *store);
int store_pending_release(bbit_store *store, const char *id, uint64_t start, bool keep,
                          char *err, size_t errlen);

#endif
