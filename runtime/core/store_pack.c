/* Pack files of the object store: the format, the pending pack a store
 * writes into, lookups and merging. See "Packs" in include/bbit/store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

#define PACK_MAGIC "BBITPCK1"
#define IDX_MAGIC "BBITIDX1"
#define MAGIC_LEN 8
#define IDX_HEADER 16 /* magic, u32 count, u32 reserved */
#define IDX_ENTRY 48  /* 32 bytes of id, u64 offset, u64 length */
#define ID_BIN 32
#define LOAD_TRIES 6 /* a pack removed by a merge while listed: list again */
#define COPY_CHUNK (128 * 1024)

struct pack_entry {
    unsigned char id[ID_BIN];
    uint64_t offset, length;
};

struct store_pack {
    char *path; /* the .pack */
    int fd;
    uint64_t size;      /* of the .pack */
    unsigned char *idx; /* the mapped .idx */
    size_t idx_len;
    uint32_t count;
};

struct store_pending {
    int fd;
    char path[PATH_MAX]; /* the temp file under objects/tmp */
    uint64_t size;       /* bytes written so far */
    bool claimed;        /* a writer is writing at the end */
    bool loose_written;  /* a big object went loose meanwhile (see store_pending_note_loose) */
    struct pack_entry *entries;
    size_t count, cap;
    uint32_t *slots; /* open addressing over entries: index + 1, 0 = free */
    size_t nslots;   /* a power of two, more than twice count */
};

/* ------------------------------------------------------------------------ */
/* Bytes */

static int hex_value(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* id must be valid (bbit_store_is_id). */
static void id_to_bin(const char *id, unsigned char out[ID_BIN])
{
    for (int i = 0; i < ID_BIN; i++)
        out[i] = (unsigned char)(hex_value(id[2 * i]) << 4 | hex_value(id[2 * i + 1]));
}

static void id_to_hex(const unsigned char bin[ID_BIN], char out[BBIT_STORE_ID_LEN + 1])
{
    bbit_sha256_hex(bin, out);
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t hash_of(const unsigned char id[ID_BIN])
{
    return get_le64(id); /* ids are SHA-256 digests: any 8 bytes are uniform */
}

int store_copy_range(int in, uint64_t offset, uint64_t len, int out)
{
    loff_t at = (loff_t)offset;
    while (len > 0) {
        ssize_t n = copy_file_range(in, &at, out, NULL, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                      errno == EOPNOTSUPP || errno == EBADF))
            break; /* copied below, through a buffer (EBADF: out has O_APPEND) */
        if (n <= 0)
            return n == 0 ? (errno = EIO, -1) : -1;
        len -= (uint64_t)n;
    }
    char buf[COPY_CHUNK];
    while (len > 0) {
        ssize_t n = pread(in, buf, len < sizeof buf ? (size_t)len : sizeof buf, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? (errno = EIO, -1) : -1;
        if (store_write_all(out, buf, (size_t)n) != 0)
            return -1;
        at += n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Loading */

static void pack_unload(struct store_pack *p)
{
    if (p->idx)
        munmap(p->idx, p->idx_len);
    if (p->fd >= 0)
        close(p->fd);
    free(p->path);
}

static void packs_unload(struct store_pack *packs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pack_unload(&packs[i]);
    free(packs);
}

/* Opens the pack of index idx_path: 0, 1 when it vanished meanwhile (a merge
 * removed it), -1 on an error. */
static int pack_open(const char *idx_path, struct store_pack *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    int fd = open(idx_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : store_fail_errno(err, errlen, idx_path, NULL);
    struct stat st;
    int rc = fstat(fd, &st);
    size_t len = rc == 0 ? (size_t)st.st_size : 0;
    if (rc != 0) {
        rc = store_fail_errno(err, errlen, idx_path, "stat");
    } else if (len < IDX_HEADER + ID_BIN || (len - IDX_HEADER - ID_BIN) % IDX_ENTRY != 0) {
        rc = store_fail(err, errlen, "%s: corrupt pack index (size %zu)", idx_path, len);
    } else if ((p->idx = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        p->idx = NULL;
        rc = store_fail_errno(err, errlen, idx_path, "mmap");
    } else {
        p->idx_len = len;
        p->count = (uint32_t)((len - IDX_HEADER - ID_BIN) / IDX_ENTRY);
        uint32_t stated = (uint32_t)get_le64(p->idx + MAGIC_LEN); /* u32 count, u32 0 */
        if (memcmp(p->idx, IDX_MAGIC, MAGIC_LEN) != 0 || stated != p->count)
            rc = store_fail(err, errlen, "%s: corrupt pack index (bad header)", idx_path);
    }
    close(fd);
    if (rc != 0) {
        pack_unload(p);
        return -1;
    }
    size_t n = strlen(idx_path) - 4; /* without ".idx" */
    p->path = malloc(n + sizeof ".pack");
    if (!p->path) {
        pack_unload(p);
        return store_fail(err, errlen, "%s: out of memory", idx_path);
    }
    memcpy(p->path, idx_path, n);
    memcpy(p->path + n, ".pack", sizeof ".pack");
    char magic[MAGIC_LEN];
    p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
    if (p->fd < 0) {
        /* vanished with its index (a merge), or an index left without its pack */
        rc = errno == ENOENT && access(idx_path, F_OK) != 0
                 ? 1
                 : store_fail_errno(err, errlen, p->path, NULL);
    } else if (fstat(p->fd, &st) != 0) {
        rc = store_fail_errno(err, errlen, p->path, "stat");
    } else if (pread(p->fd, magic, MAGIC_LEN, 0) != MAGIC_LEN ||
               memcmp(magic, PACK_MAGIC, MAGIC_LEN) != 0) {
        rc = store_fail(err, errlen, "%s: not a bbit pack (bad magic)", p->path);
    }
    p->size = (uint64_t)st.st_size;
    if (rc != 0)
        pack_unload(p);
    return rc;
}

static bool is_index_name(const char *name)
{
    size_t n = strlen(name);
    return n > 9 && strncmp(name, "pack-", 5) == 0 && strcmp(name + n - 4, ".idx") == 0;
}

static bool is_pack_name(const char *name)
{
    size_t n = strlen(name);
    return n > 10 && strncmp(name, "pack-", 5) == 0 && strcmp(name + n - 5, ".pack") == 0;
}

/* A .pack without its .idx is invisible: a commit between its two renames
 * (milliseconds), or an orphan a killed one left. Orphans older than this
 * are removed when the folder is listed. */
enum { ORPHAN_PACK_AGE = 3600 };

static void remove_if_orphan(const char *packdir, const char *pack_name)
{
    char idx[PATH_MAX], pack[PATH_MAX];
    size_t stem = strlen(pack_name) - strlen(".pack");
    if (snprintf(idx, sizeof idx, "%s/%.*s.idx", packdir, (int)stem, pack_name) >= (int)sizeof idx ||
        snprintf(pack, sizeof pack, "%s/%s", packdir, pack_name) >= (int)sizeof pack)
        return;
    struct stat st;
    if (access(idx, F_OK) != 0 && errno == ENOENT && stat(pack, &st) == 0 &&
        time(NULL) - st.st_mtime > ORPHAN_PACK_AGE)
        unlink(pack); /* best effort: a read-only store keeps it */
}

/* Loads every usable pack of packdir into *out: 0, 1 when one vanished (a
 * merge removed it: list again), -1 on an error listing the folder. A pack
 * that cannot be used (a corrupt index, a .pack missing or without its
 * magic) is skipped, its reason kept in *skipped (the first one): the
 * other packs and loose objects stay readable, and a lookup that misses
 * names it. */
static int load_dir(const char *packdir, struct store_pack **out, size_t *nout, char **skipped,
                    char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    DIR *d = opendir(packdir);
    if (!d)
        return errno == ENOENT ? 0 : store_fail_errno(err, errlen, packdir, NULL);
    struct store_pack *packs = NULL;
    size_t n = 0, cap = 0, npack_files = 0;
    int rc = 0;
    bool vanished = false;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        npack_files += is_pack_name(e->d_name);
        if (!is_index_name(e->d_name))
            continue;
        char path[PATH_MAX], why[BBIT_STORE_ERR_SIZE];
        if (snprintf(path, sizeof path, "%s/%s", packdir, e->d_name) >= (int)sizeof path)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            struct store_pack *grown = realloc(packs, cap * sizeof *packs);
            if (!grown) {
                rc = store_fail(err, errlen, "%s: out of memory", packdir);
                break;
            }
            packs = grown;
        }
        int opened = pack_open(path, &packs[n], why, sizeof why);
        if (opened == 0)
            n++;
        else if (opened == 1)
            vanished = true;
        else if (!*skipped)
            *skipped = strdup(why + strlen("object store: "));
    }
    if (rc == 0 && npack_files > n) { /* more .pack than loaded .idx files */
        rewinddir(d);
        while ((e = readdir(d)) != NULL)
            if (is_pack_name(e->d_name))
                remove_if_orphan(packdir, e->d_name);
    }
    closedir(d);
    if (rc != 0) {
        packs_unload(packs, n);
        return rc;
    }
    *out = packs;
    *nout = n;
    return vanished ? 1 : 0;
}

/* The pack folder's mtime, and whether it is too recent to tell a later
 * change (timestamps are coarse: one within the same second may keep it). */
static void packdir_stamp(const char *packdir, struct timespec *mtime, bool *racy)
{
    struct stat st;
    struct timespec now;
    memset(mtime, 0, sizeof *mtime);
    *racy = false;
    if (stat(packdir, &st) != 0)
        return;
    *mtime = st.st_mtim;
    *racy = clock_gettime(CLOCK_REALTIME, &now) != 0 || now.tv_sec - st.st_mtim.tv_sec < 2;
}

struct retired_packs {
    struct store_pack *packs;
    size_t n;
    struct retired_packs *next;
};

/* Installs a loaded pack list; the one it replaces is kept until close (a
 * lookup on another thread may be using its fds). Called with store->lock. */
static void install_list(bbit_store *store, struct store_pack *packs, size_t n, char *skipped,
                         struct timespec mtime, bool racy)
{
    struct retired_packs *r = malloc(sizeof *r);
    if (r) {
        r->packs = store->packs;
        r->n = store->npacks;
        r->next = store->retired;
        store->retired = r;
    } else {
        packs_unload(store->packs, store->npacks); /* out of memory: single-threaded use only */
    }
    free(store->skipped);
    store->skipped = skipped;
    store->packs = packs;
    store->npacks = n;
    store->packdir_mtime = mtime;
    store->packdir_racy = racy;
}

/* Lists the pack folder into *packs (retrying while packs vanish: a merge
 * removing its sources). 0, or -1 on an error listing it. */
static int load_packs(const char *packdir, struct store_pack **packs, size_t *n, char **skipped,
                      char *err, size_t errlen)
{
    int rc = 1;
    *packs = NULL;
    *n = 0;
    *skipped = NULL;
    for (int i = 0; i < LOAD_TRIES && rc == 1; i++) {
        if (i > 0) {
            packs_unload(*packs, *n);
            free(*skipped);
            *skipped = NULL;
            usleep(10000u << i); /* a merge removing its sources: let it finish */
        }
        rc = load_dir(packdir, packs, n, skipped, err, errlen);
    }
    if (rc < 0) {
        free(*skipped);
        *skipped = NULL;
        return -1;
    }
    /* still vanishing after the retries: what was loaded (a merged pack
     * listed after its sources went) is used */
    return 0;
}

static int reload(bbit_store *store, char *err, size_t errlen)
{
    struct store_pack *packs;
    size_t n;
    char *skipped;
    struct timespec mtime;
    bool racy;
    packdir_stamp(store->packdir, &mtime, &racy); /* before listing: a later change shows */
    if (load_packs(store->packdir, &packs, &n, &skipped, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&store->lock);
    install_list(store, packs, n, skipped, mtime, racy);
    pthread_mutex_unlock(&store->lock);
    return 0;
}

bool store_packs_refresh(const bbit_store *cstore)
{
    bbit_store *store = (bbit_store *)cstore; /* its pack list is a cache of the folder */
    struct timespec mtime;
    bool racy, refreshed = false;
    pthread_mutex_lock(&store->lock);
    packdir_stamp(store->packdir, &mtime, &racy);
    if (store->packdir_racy || mtime.tv_sec != store->packdir_mtime.tv_sec ||
        mtime.tv_nsec != store->packdir_mtime.tv_nsec) {
        struct store_pack *packs;
        size_t n;
        char *skipped, err[BBIT_STORE_ERR_SIZE];
        if (load_packs(store->packdir, &packs, &n, &skipped, err, sizeof err) == 0) {
            install_list(store, packs, n, skipped, mtime, racy);
            refreshed = true;
        }
    }
    pthread_mutex_unlock(&store->lock);
    return refreshed;
}

void store_packs_skipped(const bbit_store *cstore, char *out, size_t outlen)
{
    bbit_store *store = (bbit_store *)cstore;
    pthread_mutex_lock(&store->lock);
    snprintf(out, outlen, "%s", store->skipped ? store->skipped : "");
    pthread_mutex_unlock(&store->lock);
}

int store_packs_load(bbit_store *store, char *err, size_t errlen)
{
    return reload(store, err, errlen);
}

static void pending_free(struct store_pending *p)
{
    if (!p)
        return;
    if (p->fd >= 0) {
        close(p->fd);
        unlink(p->path);
    }
    free(p->entries);
    free(p->slots);
    free(p);
}

void store_packs_free(bbit_store *store)
{
    while (store->retired) {
        struct retired_packs *r = store->retired;
        store->retired = r->next;
        packs_unload(r->packs, r->n);
        free(r);
    }
    pending_free(store->pending);
    store->pending = NULL;
    packs_unload(store->packs, store->npacks);
    store->packs = NULL;
    store->npacks = 0;
    free(store->skipped);
    store->skipped = NULL;
}

/* ------------------------------------------------------------------------ */
/* Lookups */

/* Binary search of a pack's index; fills offset and length when found. An
 * entry pointing outside the pack gets length 0 (its read reports it). */
static bool pack_search(const struct store_pack *p, const unsigned char id[ID_BIN],
                        uint64_t *offset, uint64_t *length)
{
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unsigned char *e = p->idx + IDX_HEADER + mid * IDX_ENTRY;
        int c = memcmp(id, e, ID_BIN);
        if (c == 0) {
            *offset = get_le64(e + ID_BIN);
            *length = get_le64(e + ID_BIN + 8);
            if (*offset < MAGIC_LEN || *offset > p->size || *length > p->size - *offset)
                *length = 0;
            return true;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/* The pending entry with id, or NULL. */
static const struct pack_entry *pending_search(const struct store_pending *p,
                                               const unsigned char id[ID_BIN])
{
    if (!p->nslots)
        return NULL;
    for (size_t i = hash_of(id) & (p->nslots - 1);; i = (i + 1) & (p->nslots - 1)) {
        uint32_t slot = p->slots[i];
        if (slot == 0)
            return NULL;
        if (memcmp(p->entries[slot - 1].id, id, ID_BIN) == 0)
            return &p->entries[slot - 1];
    }
}

int store_pack_find(const bbit_store *store, const char *id, struct store_loc *loc)
{
    if (!store->pending && store->npacks == 0)
        return 0;
    unsigned char bin[ID_BIN];
    id_to_bin(id, bin);
    loc->owned = false;
    if (store->pending) {
        const struct pack_entry *e = pending_search(store->pending, bin);
        if (e) {
            loc->fd = store->pending->fd;
            loc->offset = e->offset;
            loc->length = e->length;
            snprintf(loc->path, sizeof loc->path, "%s", store->pending->path);
            return 1;
        }
    }
    int found = 0;
    pthread_mutex_lock((pthread_mutex_t *)&store->lock); /* a refresh may replace the list */
    for (size_t i = store->npacks; i-- > 0 && !found;) {
        const struct store_pack *p = &store->packs[i];
        if (pack_search(p, bin, &loc->offset, &loc->length)) {
            loc->fd = p->fd; /* stays open: a replaced list is kept until close */
            snprintf(loc->path, sizeof loc->path, "%s", p->path);
            found = 1;
        }
    }
    pthread_mutex_unlock((pthread_mutex_t *)&store->lock);
    return found;
}

/* ------------------------------------------------------------------------ */
/* The pending pack */

static int pending_new(bbit_store *store, struct store_pending **out, char *err, size_t errlen)
{
    struct store_pending *p = calloc(1, sizeof *p);
    if (!p)
        return store_fail(err, errlen, "%s: out of memory", store->tmp);
    snprintf(p->path, sizeof p->path, "%s/pack-XXXXXX", store->tmp);
    p->fd = mkostemp(p->path, O_CLOEXEC);
    if (p->fd < 0) {
        store_fail_errno(err, errlen, store->tmp, "cannot create a temp file");
        free(p);
        return -1;
    }
    if (store_write_all(p->fd, PACK_MAGIC, MAGIC_LEN) != 0) {
        store_fail_errno(err, errlen, p->path, "write");
        pending_free(p);
        return -1;
    }
    p->size = MAGIC_LEN;
    *out = p;
    return 0;
}

/* Adds an entry (its id not yet in p). */
static int pending_add(struct store_pending *p, const unsigned char id[ID_BIN], uint64_t offset,
                       uint64_t length)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct pack_entry *grown = realloc(p->entries, cap * sizeof *grown);
        if (!grown)
            return -1;
        p->entries = grown;
        p->cap = cap;
    }
    if (2 * (p->count + 1) >= p->nslots) {
        size_t nslots = p->nslots ? p->nslots * 2 : 1024;
        uint32_t *slots = calloc(nslots, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t k = 0; k < p->count; k++) {
            size_t i = hash_of(p->entries[k].id) & (nslots - 1);
            while (slots[i])
                i = (i + 1) & (nslots - 1);
            slots[i] = (uint32_t)(k + 1);
        }
        free(p->slots);
        p->slots = slots;
        p->nslots = nslots;
    }
    struct pack_entry *e = &p->entries[p->count];
    memcpy(e->id, id, ID_BIN);
    e->offset = offset;
    e->length = length;
    size_t i = hash_of(id) & (p->nslots - 1);
    while (p->slots[i])
        i = (i + 1) & (p->nslots - 1);
    p->slots[i] = (uint32_t)(++p->count);
    return 0;
}

int bbit_store_pack_begin(bbit_store *store, char *err, size_t errlen)
{
    if (store->pending)
        return store_fail(err, errlen, "%s: a pack is already being written", store->dir);
    return pending_new(store, &store->pending, err, errlen);
}

int store_pending_claim(bbit_store *store, int *fd, uint64_t *start, char *path, size_t pathlen,
                        char *err, size_t errlen)
{
    struct store_pending *p = store->pending;
    if (p->claimed)
        return store_fail(err, errlen, "%s: the pack being written takes one writer at a time",
                          store->dir);
    if (lseek(p->fd, (off_t)p->size, SEEK_SET) < 0)
        return store_fail_errno(err, errlen, p->path, "seek");
    p->claimed = true;
    *fd = p->fd;
    *start = p->size;
    snprintf(path, pathlen, "%s", p->path);
    return 0;
}

void store_pending_note_loose(bbit_store *store)
{
    store->pending->loose_written = true;
}

int store_pending_release(bbit_store *store, const char *id, uint64_t start, bool keep,
                          char *err, size_t errlen)
{
    struct store_pending *p = store->pending;
    p->claimed = false;
    off_t end = lseek(p->fd, 0, SEEK_CUR);
    if (keep && end < (off_t)start)
        store_fail_errno(err, errlen, p->path, "seek");
    if (keep && end >= (off_t)start) {
        unsigned char bin[ID_BIN];
        id_to_bin(id, bin);
        if (pending_add(p, bin, start, (uint64_t)end - start) == 0) {
            p->size = (uint64_t)end;
            return 0;
        }
        store_fail(err, errlen, "%s: out of memory", p->path);
    }
    /* dropped: the next object overwrites these bytes */
    p->size = start;
    if (ftruncate(p->fd, (off_t)start) != 0 && keep)
        return store_fail_errno(err, errlen, p->path, "truncate");
    return keep ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Committing */

static int compare_entries(const void *a, const void *b)
{
    return memcmp(((const struct pack_entry *)a)->id, ((const struct pack_entry *)b)->id, ID_BIN);
}

/* Writes p's index into temp file tmp (synced when sync); name gets the
 * pack's name. */
static int write_index(bbit_store *store, struct store_pending *p, bool sync, char tmp[PATH_MAX],
                       char name[BBIT_STORE_ID_LEN + 1], char *err, size_t errlen)
{
    qsort(p->entries, p->count, sizeof *p->entries, compare_entries);
    size_t len = IDX_HEADER + p->count * IDX_ENTRY + ID_BIN;
    unsigned char *buf = calloc(1, len);
    bbit_sha256 *names = bbit_sha256_new(), *sum = bbit_sha256_new();
    int rc = -1;
    if (!buf || !names || !sum) {
        store_fail(err, errlen, "%s: out of memory", p->path);
        goto out;
    }
    memcpy(buf, IDX_MAGIC, MAGIC_LEN);
    put_le64(buf + MAGIC_LEN, p->count); /* u32 count, u32 0 */
    for (size_t i = 0; i < p->count; i++) {
        unsigned char *e = buf + IDX_HEADER + i * IDX_ENTRY;
        memcpy(e, p->entries[i].id, ID_BIN);
        put_le64(e + ID_BIN, p->entries[i].offset);
        put_le64(e + ID_BIN + 8, p->entries[i].length);
        bbit_sha256_update(names, p->entries[i].id, ID_BIN);
    }
    unsigned char digest[BBIT_SHA256_LEN];
    if (bbit_sha256_update(sum, buf, len - ID_BIN) != 0 || bbit_sha256_final(sum, digest) != 0 ||
        store_sha256_hex(names, name) != 0) {
        store_fail(err, errlen, "sha256 failed");
        goto out;
    }
    memcpy(buf + len - ID_BIN, digest, ID_BIN);
    snprintf(tmp, PATH_MAX, "%s/idx-XXXXXX", store->tmp);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        store_fail_errno(err, errlen, store->tmp, "cannot create a temp file");
        goto out;
    }
    if (store_write_all(fd, buf, len) != 0 || fchmod(fd, 0444) != 0 ||
        (sync && fdatasync(fd) != 0)) {
        store_fail_errno(err, errlen, tmp, "write");
        close(fd);
        unlink(tmp);
        goto out;
    }
    rc = close(fd) == 0 ? 0 : store_fail_errno(err, errlen, tmp, "close");
    if (rc != 0)
        unlink(tmp);
out:
    free(buf);
    bbit_sha256_free(names);
    bbit_sha256_free(sum);
    return rc;
}

/* Makes p (complete, its entries unsorted) a pack of the store: the .pack
 * renamed into objects/pack/ first, the .idx last. p's temp file is gone
 * afterwards (renamed or removed). name gets the pack's name. */
static int install_pack(bbit_store *store, struct store_pending *p, bool sync,
                        char name[BBIT_STORE_ID_LEN + 1], char *err, size_t errlen)
{
    char idx_tmp[PATH_MAX], pack_path[PATH_MAX], idx_path[PATH_MAX];
    if (sync && fdatasync(p->fd) != 0)
        return store_fail_errno(err, errlen, p->path, "fsync");
    if (fchmod(p->fd, 0444) != 0)
        return store_fail_errno(err, errlen, p->path, "chmod");
    /* its mtime is now: the orphan check (remove_if_orphan) must not take a
     * pack whose last object was written long ago for one left by a crash */
    if (futimens(p->fd, NULL) != 0)
        return store_fail_errno(err, errlen, p->path, "touch");
    if (write_index(store, p, sync, idx_tmp, name, err, errlen) != 0)
        return -1;
    int rc = 0;
    if (store_mkdir(store->packdir, 0755) != 0)
        rc = store_fail_errno(err, errlen, store->packdir, "mkdir");
    for (int attempt = 0; rc == 0; attempt++) {
        if (attempt > 0) { /* a name of our own: the last 16 hex digits random */
            uint64_t r = 0;
            if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
                r = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
            snprintf(name + 48, 17, "%016llx", (unsigned long long)r);
        }
        snprintf(pack_path, sizeof pack_path, "%s/pack-%s.pack", store->packdir, name);
        snprintf(idx_path, sizeof idx_path, "%s/pack-%s.idx", store->packdir, name);
        if (store_rename_new(p->path, pack_path) != 0) {
            if (errno == EEXIST && access(idx_path, F_OK) == 0)
                break; /* the same objects are packed already: ours is dropped */
            if (errno == EEXIST && attempt == 0)
                continue; /* another commit between its renames, or an orphan */
            rc = store_fail_errno(err, errlen, pack_path, "cannot store the pack");
        } else if (store_rename_new(idx_tmp, idx_path) != 0) {
            /* an index left by a merge or a crash: take our pack back */
            if (errno == EEXIST && attempt == 0 && rename(pack_path, p->path) == 0)
                continue;
            rc = store_fail_errno(err, errlen, idx_path, "cannot store the pack index");
        }
        break;
    }
    if (rc == 0 && sync && store_fsync_dir(store->packdir) != 0)
        rc = store_fail_errno(err, errlen, store->packdir, "fsync");
    unlink(idx_tmp);
    unlink(p->path);
    close(p->fd);
    p->fd = -1;
    return rc;
}

/* One flush of the store's filesystem (loose objects written unsynced). */
static int flush_filesystem(bbit_store *store, char *err, size_t errlen)
{
    int fd = open(store->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && syncfs(fd) == 0 ? 0 : store_fail_errno(err, errlen, store->dir, "syncfs");
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Installs p's objects as loose objects (a pack too small to be worth one). */
static int install_loose(bbit_store *store, struct store_pending *p, bool sync, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < p->count; i++) {
        char id[BBIT_STORE_ID_LEN + 1], tmp[PATH_MAX];
        id_to_hex(p->entries[i].id, id);
        snprintf(tmp, sizeof tmp, "%s/obj-XXXXXX", store->tmp);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
            return store_fail_errno(err, errlen, store->tmp, "cannot create a temp file");
        if (store_copy_range(p->fd, p->entries[i].offset, p->entries[i].length, fd) != 0) {
            store_fail_errno(err, errlen, tmp, "write");
            close(fd);
            unlink(tmp);
            return -1;
        }
        if (store_install_loose(store, fd, tmp, id, err, errlen) != 0)
            return -1;
    }
    /* one flush for all of them instead of one fsync each */
    return sync && !store->fsync ? flush_filesystem(store, err, errlen) : 0;
}

/* Which packs to merge: none while there are at most BBIT_STORE_PACKS_MAX,
 * else the BBIT_STORE_PACKS_MERGED smallest. Fills order (the packs by size,
 * ascending) and returns how many of its first ones to merge. */
static size_t merge_plan(const bbit_store *store, size_t *order)
{
    size_t n = store->npacks;
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && store->packs[order[j - 1]].size > store->packs[i].size; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    return n > BBIT_STORE_PACKS_MAX ? BBIT_STORE_PACKS_MERGED : 0;
}

/* Does the pack's index match its trailing SHA-256? */
static bool index_intact(const struct store_pack *src)
{
    unsigned char digest[BBIT_SHA256_LEN];
    return bbit_sha256_buffer(src->idx, src->idx_len - ID_BIN, digest) == 0 &&
           memcmp(digest, src->idx + src->idx_len - ID_BIN, ID_BIN) == 0;
}

/* Merges packs as the plan says, under objects/pack/merge.lock (skipped while
 * another process merges). merged gets how many packs became one. */
static int merge_packs(bbit_store *store, unsigned *merged, char *err, size_t errlen)
{
    char lock_path[PATH_MAX];
    *merged = 0;
    snprintf(lock_path, sizeof lock_path, "%s/merge.lock", store->packdir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0)
        return store_fail_errno(err, errlen, lock_path, NULL);
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        close(lock);
        return 0;
    }
    int rc = reload(store, err, errlen); /* another merge may have run before the lock */
    size_t *order = rc == 0 ? malloc((store->npacks + 1) * sizeof *order) : NULL;
    size_t m = order ? merge_plan(store, order) : 0;
    struct store_pending *p = NULL;
    if (rc == 0 && !order)
        rc = store_fail(err, errlen, "%s: out of memory", store->packdir);
    if (rc == 0 && m >= 2)
        rc = pending_new(store, &p, err, errlen);
    for (size_t k = 0; rc == 0 && m >= 2 && k < m; k++) {
        const struct store_pack *src = &store->packs[order[k]];
        /* sources are deleted afterwards: only an intact index is merged */
        if (!index_intact(src)) {
            rc = store_fail(err, errlen, "%s: the pack index does not match its checksum: not merged",
                            src->path);
            break;
        }
        for (uint32_t i = 0; rc == 0 && i < src->count; i++) {
            const unsigned char *e = src->idx + IDX_HEADER + (size_t)i * IDX_ENTRY;
            uint64_t offset = get_le64(e + ID_BIN), length = get_le64(e + ID_BIN + 8);
            if (offset < MAGIC_LEN || offset > src->size || length > src->size - offset) {
                rc = store_fail(err, errlen, "%s: an index entry points outside the pack: not merged",
                                src->path);
                break;
            }
            if (pending_search(p, e))
                continue;
            if (store_copy_range(src->fd, offset, length, p->fd) != 0)
                rc = store_fail_errno(err, errlen, p->path, "write");
            else if (pending_add(p, e, p->size, length) != 0)
                rc = store_fail(err, errlen, "%s: out of memory", p->path);
            p->size += length;
        }
    }
    char name[BBIT_STORE_ID_LEN + 1];
    if (rc == 0 && m >= 2 && (rc = install_pack(store, p, true, name, err, errlen)) == 0) {
        /* the merged pack is durable: remove its sources, each index first */
        for (size_t k = 0; k < m; k++) {
            char *path = store->packs[order[k]].path;
            size_t n = strlen(path);
            if (strstr(path, name))
                continue;
            memcpy(path + n - 4, "idx\0", 4);
            unlink(path);
            memcpy(path + n - 4, "pack", 4);
            unlink(path);
        }
        *merged = (unsigned)m;
        rc = reload(store, err, errlen);
    }
    pending_free(p);
    free(order);
    close(lock);
    return rc;
}

int bbit_store_pack_commit(bbit_store *store, bool sync, struct bbit_store_pack_result *out,
                           char *err, size_t errlen)
{
    struct store_pending *p = store->pending;
    struct bbit_store_pack_result result = {0};
    if (!p)
        return store_fail(err, errlen, "%s: no pack is being written", store->dir);
    if (p->claimed)
        return store_fail(err, errlen, "%s: a writer of the pack is still open", store->dir);
    store->pending = NULL;
    char name[BBIT_STORE_ID_LEN + 1];
    int rc = 0;
    result.objects = p->count;
    if (p->count >= BBIT_STORE_PACK_MIN_OBJECTS) {
        result.packed = true;
        rc = install_pack(store, p, sync || store->fsync, name, err, errlen);
        if (rc != 0)
            result.objects = 0;
        /* the objects are installed: a failed merge leaves the packs as they were */
        else if ((rc = reload(store, err, errlen)) == 0 && store->npacks > BBIT_STORE_PACKS_MAX &&
                 merge_packs(store, &result.merged, NULL, 0) != 0)
            result.merged = 0;
    } else if (p->count > 0) {
        rc = install_loose(store, p, sync, err, errlen); /* a syncfs covers every loose one */
        p->loose_written = false;
    }
    if (rc == 0 && sync && !store->fsync && p->loose_written)
        rc = flush_filesystem(store, err, errlen);
    pending_free(p);
    if (out)
        *out = result;
    return rc;
}

void bbit_store_pack_abort(bbit_store *store)
{
    pending_free(store->pending);
    store->pending = NULL;
}
