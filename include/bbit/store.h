/* The object store (SPEC §2.3): content-addressed, immutable objects.
 *
 * An object's id is the lowercase hex SHA-256 of its canonical (uncompressed)
 * bytes; for a file blob that is exactly `sha256sum FILE`. On disk an object
 * is one zstd frame of its bytes (level BBIT_STORE_ZSTD_LEVEL; any valid
 * single frame is accepted from outside, see mode BBIT_STORE_COMPRESSED),
 * either loose in <dir>/objects/<id[0..2]>/<id[2..64]> or in a pack (see
 * Packs below).
 *
 * Writes are atomic: bytes go to a fresh temp file under <dir>/objects/tmp/
 * (mkstemp, O_EXCL), which is renamed into place only after the content hash
 * is known (and matches the expected id, if one was given). When the object
 * already exists the temp file is dropped: an object is never rewritten.
 *
 * Durability: fsync is off by default (BBIT_STORE_FSYNC turns it on). A
 * process crash cannot tear a renamed file, and an object only matters once
 * a ref points at it; the writers of refs fsync those. After a power loss an
 * unsynced object may be missing or empty; a read then reports it (hash
 * verification) instead of returning wrong bytes.
 *
 * Reads verify: every read decompresses and hashes the whole object, and the
 * caller never receives bytes that did not hash to the id (memory reads
 * return only after verification; file reads write a temp file beside the
 * destination and rename it only after verification).
 *
 * Streaming: file-based calls and the writer work in fixed-size chunks
 * (~128 KiB buffers plus the zstd contexts, a few MB), whatever the object
 * size. The decoder refuses frames whose window exceeds 2^BBIT_STORE_WINDOW_LOG_MAX
 * bytes, so a hostile frame cannot demand a large allocation.
 *
 * Errors: functions returning int return 0 on success and -1 on failure, with
 * a message in err (NUL-terminated, truncated to errlen; err may be NULL when
 * errlen is 0). Messages start with "object store: " and name the path or id,
 * e.g. "object store: /s/objects/ab/cd..: corrupt object (content hash is X,
 * expected Y)". Ids from outside are validated (bbit_store_is_id) before any
 * path is built from them.
 *
 * Threads: there is no global state. Without an open pack (see Packs) a
 * bbit_store is read-only after open, so distinct threads may call any
 * function on one store concurrently (a read that misses may load the pack
 * list again: under a lock, the old list kept until close); a writer
 * belongs to one thread at a time.
 */
#ifndef BBIT_STORE_H
#define BBIT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BBIT_STORE_ID_LEN 64          /* hex digits of an id (without NUL) */
#define BBIT_STORE_ZSTD_LEVEL 3       /* compression level of objects written here */
#define BBIT_STORE_WINDOW_LOG_MAX 23  /* largest accepted zstd window: 8 MiB */
#define BBIT_STORE_ERR_SIZE 1024      /* a comfortable size for err buffers */

typedef struct bbit_store bbit_store;
typedef struct bbit_store_writer bbit_store_writer;

/* Flags of bbit_store_open. */
enum {
    BBIT_STORE_CREATE = 1, /* create <dir>, objects/ and objects/tmp/ as needed */
    BBIT_STORE_FSYNC = 2,  /* fsync each new object and its directory before rename returns */
};

/* What a writer is fed. */
enum bbit_store_input {
    BBIT_STORE_RAW,        /* the object's bytes: hashed and compressed */
    BBIT_STORE_COMPRESSED, /* one zstd frame as stored on disk (e.g. received over
                            * HTTP): decompressed only to hash it, stored byte for byte */
};

/* true when s is exactly 64 lowercase hex digits (NUL-terminated). */
bool bbit_store_is_id(const char *s);

/* 0 when id is an id; else -1 with "object store: invalid object id ..." in err. */
int bbit_store_check_id(const char *id, char *err, size_t errlen);

/* Opens the store at dir. Without BBIT_STORE_CREATE, dir/objects must exist.
 * Returns NULL on failure. */
bbit_store *bbit_store_open(const char *dir, unsigned flags, char *err, size_t errlen);

/* Frees the store (NULL is allowed). No writer of it may still be open. */
void bbit_store_close(bbit_store *store);

/* The directory the store was opened at. */
const char *bbit_store_dir(const bbit_store *store);

/* The path object id has, or would have, as a loose object (whether or not
 * it exists, and even when it is in a pack). */
int bbit_store_object_path(const bbit_store *store, const char *id, char *out, size_t outlen,
                           char *err, size_t errlen);

/* 1 when object id exists, 0 when not, -1 on an invalid id or a stat error. */
int bbit_store_has(const bbit_store *store, const char *id, char *err, size_t errlen);

/* --- The incremental writer ------------------------------------------------
 * begin, write any number of chunks, then exactly one of commit or abort
 * (both free the writer). expected_id (may be NULL) makes commit refuse other
 * content: "hash mismatch: received bytes hash to X, expected Y", nothing
 * stored. max_size (0 = no limit) bounds the object's uncompressed size: a
 * write that goes beyond fails ("object exceeds the size limit of N bytes"),
 * which refuses decompression bombs in mode BBIT_STORE_COMPRESSED. After a
 * failed write the writer only accepts abort (commit fails again). */
bbit_store_writer *bbit_store_writer_begin(bbit_store *store, enum bbit_store_input input,
                                           const char *expected_id, uint64_t max_size,
                                           char *err, size_t errlen);
/* Like bbit_store_writer_begin, with the input's size in bytes (the
 * uncompressed size for BBIT_STORE_RAW, the frame's for COMPRESSED): zstd
 * sizes its tables to it, and while a pack is open an object of
 * BBIT_STORE_PACK_OBJECT_MAX bytes or more is stored loose (see Packs). */
bbit_store_writer *bbit_store_writer_begin_sized(bbit_store *store, enum bbit_store_input input,
                                                 const char *expected_id, uint64_t max_size,
                                                 uint64_t size, char *err, size_t errlen);
int bbit_store_writer_write(bbit_store_writer *writer, const void *data, size_t len, char *err,
                            size_t errlen);
/* Stores the object; its id (64 hex + NUL) goes to id_out. Frees the writer. */
int bbit_store_writer_commit(bbit_store_writer *writer, char id_out[BBIT_STORE_ID_LEN + 1],
                             char *err, size_t errlen);
/* Drops everything written (NULL is allowed). Frees the writer. */
void bbit_store_writer_abort(bbit_store_writer *writer);
/* Uncompressed bytes seen so far. */
uint64_t bbit_store_writer_size(const bbit_store_writer *writer);

/* --- Convenience ----------------------------------------------------------- */

/* Stores len bytes of data; id_out gets the id. */
int bbit_store_put(bbit_store *store, const void *data, size_t len,
                   char id_out[BBIT_STORE_ID_LEN + 1], char *err, size_t errlen);

/* Stores the contents of file path (streamed); size_out (may be NULL) gets
 * its uncompressed size. */
int bbit_store_put_file(bbit_store *store, const char *path, char id_out[BBIT_STORE_ID_LEN + 1],
                        uint64_t *size_out, char *err, size_t errlen);

/* Stores a compressed object file as found on disk or received from a
 * server (mode BBIT_STORE_COMPRESSED); expected_id may be NULL. max_size as
 * for the writer (0 = no limit). */
int bbit_store_put_raw_file(bbit_store *store, const char *path, const char *expected_id,
                            uint64_t max_size, char id_out[BBIT_STORE_ID_LEN + 1], char *err,
                            size_t errlen);

/* Reads object id into a malloc'ed buffer (*data, *len; the caller frees
 * *data; one extra NUL byte follows the data). Fails when the object is
 * larger than max_size bytes (0 = no limit). Nothing is returned unless the
 * content hash matched. */
int bbit_store_get(const bbit_store *store, const char *id, uint64_t max_size, void **data,
                   size_t *len, char *err, size_t errlen);

/* Where bbit_store_read sends the content: 0 to go on, -1 (err filled) to stop. */
typedef int (*bbit_store_sink)(void *ctx, const void *data, size_t len, char *err,
                               size_t errlen);

/* Streams object id through sink in chunks, then verifies its hash: a
 * sink sees the bytes before they are verified, so it must not trust them
 * until this returns 0. size_out (may be NULL) gets the size. */
int bbit_store_read(const bbit_store *store, const char *id, uint64_t max_size,
                    bbit_store_sink sink, void *sink_ctx, uint64_t *size_out, char *err,
                    size_t errlen);

/* Writes object id to dest with permissions mode: through a temp file in
 * dest's directory, renamed over dest only after the hash matched. On
 * failure dest is untouched. */
int bbit_store_get_file(const bbit_store *store, const char *id, const char *dest, mode_t mode,
                        char *err, size_t errlen);

/* Reads and hashes the whole object; size_out (may be NULL) gets its
 * uncompressed size. */
int bbit_store_verify(const bbit_store *store, const char *id, uint64_t *size_out, char *err,
                      size_t errlen);

/* Size in bytes of the compressed object file. */
int bbit_store_size_on_disk(const bbit_store *store, const char *id, uint64_t *size_out,
                            char *err, size_t errlen);

/* Opens the object's stored bytes (one zstd frame) read-only (O_CLOEXEC) to
 * send them as they are: returns an fd (the caller closes it) or -1. The
 * bytes are at *offset_out (0 for a loose object, the object's place in a
 * pack otherwise) and are size_out bytes long (size_out may be NULL). Read
 * with pread or from that offset: the fd's file position is unspecified. The
 * bytes are NOT verified here: the receiver verifies them
 * (bbit_store_put_raw_file / a BBIT_STORE_COMPRESSED writer). */
int bbit_store_open_raw(const bbit_store *store, const char *id, uint64_t *offset_out,
                        uint64_t *size_out, char *err, size_t errlen);

/* Appends the object's stored bytes (bbit_store_size_on_disk of them, not
 * verified) at out's current position. */
int bbit_store_copy_raw(const bbit_store *store, const char *id, int out, char *err,
                        size_t errlen);

/* --- Packs -----------------------------------------------------------------
 * Many objects written at once (a tag of many components, a large upload on
 * the server) go into one pack instead of one file each: creating thousands
 * of small files is what such writes cost on most filesystems.
 *
 * A pack is objects/pack/pack-<name>.pack (the magic "BBITPCK1", then the
 * objects' stored bytes, back to back) with objects/pack/pack-<name>.idx
 * ("BBITIDX1", u32 count, u32 0, then count entries sorted by id: 32 bytes of
 * id, u64 offset, u64 length, all little-endian; then the SHA-256 of all
 * that). <name> is the SHA-256 of the sorted ids (its last 16 digits random
 * when that name is taken by a pack still being installed or left half-way).
 * The .idx appears last (by rename, never replacing a file), so a pack is
 * either complete or invisible; a .pack left without its .idx (a commit
 * killed between the two renames) is removed by the first store that lists
 * the folder an hour later. Every read still hashes what it returns.
 * A pack that cannot be used (a corrupt index, a .pack missing or damaged)
 * does not stop the store from opening: it is skipped, and a lookup that
 * misses says so ("no object X (a pack could not be read: <file>: <why>)").
 *
 * bbit_store_pack_begin makes every later write of this store (the writer,
 * put, put_file, put_raw_file) go into one new pack, until commit or abort.
 * The objects are readable through this store meanwhile, not through others.
 * A store loads the packs there are when it is opened, and adds those it
 * commits itself. A read (get, read, verify, open_raw, ...) of an object it
 * cannot find lists the pack folder again when the folder changed since
 * (packs another process committed or merged): a reader racing a tag finds
 * the tag's objects. bbit_store_has does not, it answers from what is
 * loaded. Loose objects are seen at once.
 * While a pack is open the store belongs to one thread, and it takes one
 * writer at a time. An object known to be BBIT_STORE_PACK_OBJECT_MAX bytes
 * or more (put, put_file, put_raw_file, bbit_store_writer_begin_sized) is
 * stored loose even then: packing saves nothing on it, and merges would copy
 * it. Commit installs the objects: as a pack when there are at least
 * BBIT_STORE_PACK_MIN_OBJECTS of them, else as loose objects (a small pack
 * would only add a file to every later store open). bbit_store_close aborts
 * a pack still open.
 *
 * Packs are merged as they accumulate: when a commit that installs a pack
 * leaves more than BBIT_STORE_PACKS_MAX packs, the BBIT_STORE_PACKS_MERGED smallest become one
 * (as git gc --auto does past gc.autoPackLimit), so a store open reads a
 * bounded number of indexes and each byte is rewritten O(log n) times. A
 * merge only reads indexes that match their checksum and entries inside
 * their pack (else it stops, keeping every source), writes and syncs the new
 * pack before it removes the old ones, and leaves another process's merge in
 * progress alone. */
#define BBIT_STORE_PACK_MIN_OBJECTS 64
#define BBIT_STORE_PACK_OBJECT_MAX (1u << 20)
#define BBIT_STORE_PACKS_MAX 16
#define BBIT_STORE_PACKS_MERGED 9

struct bbit_store_pack_result {
    uint64_t objects; /* new objects installed */
    bool packed;      /* as a pack (else loose) */
    unsigned merged;  /* packs merged into one afterwards (0: none) */
};

int bbit_store_pack_begin(bbit_store *store, char *err, size_t errlen);

/* Installs the pending objects. sync: make them durable before returning
 * (fsync of the pack, its index and folder; syncfs for loose objects, also
 * for the big ones stored loose while the pack was open). While
 * a writer is open, commit fails and the pack stays open; any other failed
 * commit installs nothing and leaves no pack open. A merge that fails only
 * leaves the packs as they were (out->merged 0). out may be NULL. */
int bbit_store_pack_commit(bbit_store *store, bool sync, struct bbit_store_pack_result *out,
                           char *err, size_t errlen);

/* Drops the pending objects (nothing open is allowed). */
void bbit_store_pack_abort(bbit_store *store);

#endif
