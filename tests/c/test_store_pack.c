/* Unit tests of the object store's packs (runtime/core/store_pack.c and the
 * pack paths of runtime/core/store.c): see "Packs" in include/bbit/store.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "bbit/store.h"
#include "store_test_util.h"

#define IDX_SIZE(count) (16 + 48 * (uint64_t)(count) + 32)
#define MIN_OBJECTS BBIT_STORE_PACK_MIN_OBJECTS

/* ------------------------------------------------------------------------ */
/* Helpers */

struct fixture {
    char dir[1024];          /* the test's temp dir */
    char sdir[1100];         /* <dir>/store */
    char objects[1200];      /* <sdir>/objects */
    char tmp[1200];          /* <sdir>/objects/tmp */
    char packdir[1200];      /* <sdir>/objects/pack */
    bbit_store *store;
    int fds_at_setup; /* open fds, to catch fd leaks */
    char err[BBIT_STORE_ERR_SIZE];
};

/* One object of a test: random_bytes(len, seed) (or other bytes), and its id. */
struct obj {
    char id[65];
    uint64_t seed;
    size_t len;
};

static void make_tmpdir(char *out, size_t outlen)
{
    const char *base = getenv("BBIT_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(out, outlen, "%s/c-store-pack.XXXXXX", base);
    assert_non_null(mkdtemp(out));
}

static void remove_tree(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static bbit_store *open_store(const char *dir, unsigned flags)
{
    char err[BBIT_STORE_ERR_SIZE];
    bbit_store *s = bbit_store_open(dir, flags, err, sizeof err);
    if (s == NULL)
        fail_msg("open %s: %s", dir, err);
    return s;
}

static int setup_flags(void **state, unsigned flags)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->fds_at_setup = count_open_fds();
    make_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->sdir, sizeof f->sdir, "%s/store", f->dir);
    snprintf(f->objects, sizeof f->objects, "%s/objects", f->sdir);
    snprintf(f->tmp, sizeof f->tmp, "%s/objects/tmp", f->sdir);
    snprintf(f->packdir, sizeof f->packdir, "%s/objects/pack", f->sdir);
    f->store = open_store(f->sdir, BBIT_STORE_CREATE | flags);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_flags(state, 0);
}

static int setup_fsync(void **state)
{
    return setup_flags(state, BBIT_STORE_FSYNC);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bbit_store_close(f->store);
    /* every fd the store (and the tests) opened is closed again */
    int fds = count_open_fds();
    remove_tree(f->dir);
    int before = f->fds_at_setup;
    free(f);
    assert_int_equal(fds, before);
    return 0;
}

/* Compressible text-like bytes, distinct per seed. */
static unsigned char *text_bytes(size_t len, uint64_t seed)
{
    unsigned char *p = malloc(len + 32);
    int n = snprintf((char *)p, 32, "text object %llu\n", (unsigned long long)seed);
    for (size_t i = (size_t)n; i < len; i++)
        p[i] = (unsigned char)("component versions and exports\n"[i % 31] + (i / 4096) % 3);
    return p;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        fail_msg("cannot read %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return p;
}

/* Entries of dir (0 when it does not exist). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        assert_int_equal(errno, ENOENT);
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

/* Loose object files under objects/<2 hex>/ (pack/ and tmp/ are not counted). */
static int count_loose(const char *objects)
{
    DIR *d = opendir(objects);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "tmp") == 0 ||
            strcmp(e->d_name, "pack") == 0)
            continue;
        if (strlen(e->d_name) != 2)
            fail_msg("unexpected entry objects/%s", e->d_name);
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", objects, e->d_name);
        n += count_entries(sub);
    }
    closedir(d);
    return n;
}

/* The packs of packdir: their names (the 64 hex of pack-<name>.idx) into
 * names (may be NULL, room for max); every .idx has its .pack and vice versa
 * (merge.lock may exist); returns how many. */
static int list_packs(const char *packdir, char (*names)[65], int max)
{
    DIR *d = opendir(packdir);
    if (d == NULL) {
        assert_int_equal(errno, ENOENT);
        return 0;
    }
    int idx = 0, packs = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t n = strlen(name);
        if (name[0] == '.' || strcmp(name, "merge.lock") == 0)
            continue;
        if (n != 5 + 64 + 4 && n != 5 + 64 + 5)
            fail_msg("unexpected entry objects/pack/%s", name);
        assert_memory_equal(name, "pack-", 5);
        char hex[65];
        memcpy(hex, name + 5, 64);
        hex[64] = '\0';
        assert_true(bbit_store_is_id(hex));
        char other[PATH_MAX];
        if (strcmp(name + 69, ".idx") == 0) {
            snprintf(other, sizeof other, "%s/pack-%s.pack", packdir, hex);
            assert_true(exists(other));
            if (names && idx < max)
                memcpy(names[idx], hex, 65);
            idx++;
        } else {
            assert_string_equal(name + 69, ".pack");
            snprintf(other, sizeof other, "%s/pack-%s.idx", packdir, hex);
            assert_true(exists(other));
            packs++;
        }
    }
    closedir(d);
    assert_int_equal(idx, packs);
    return idx;
}

static void pack_paths(const char *packdir, const char *name, char *pack, char *idx)
{
    snprintf(pack, PATH_MAX, "%s/pack-%s.pack", packdir, name);
    snprintf(idx, PATH_MAX, "%s/pack-%s.idx", packdir, name);
}

/* How many entries the .idx of pack name lists (checked against its size). */
static uint64_t idx_count(const char *packdir, const char *name)
{
    char pack[PATH_MAX], idx[PATH_MAX];
    pack_paths(packdir, name, pack, idx);
    uint64_t size = file_size(idx);
    assert_true(size >= IDX_SIZE(0));
    assert_int_equal((size - IDX_SIZE(0)) % 48, 0);
    return (size - IDX_SIZE(0)) / 48;
}

/* Puts n random objects of len bytes (seeds seed0, seed0+1, ...) into objs. */
static void put_random(bbit_store *s, struct obj *objs, int n, size_t len, uint64_t seed0)
{
    char err[BBIT_STORE_ERR_SIZE], want[65];
    for (int i = 0; i < n; i++) {
        unsigned char *data = random_bytes(len, seed0 + (uint64_t)i);
        objs[i].seed = seed0 + (uint64_t)i;
        objs[i].len = len;
        if (bbit_store_put(s, data, len, objs[i].id, err, sizeof err) != 0)
            fail_msg("put: %s", err);
        sha256_hex(data, len, want);
        assert_string_equal(objs[i].id, want);
        free(data);
    }
}

/* Object o reads back byte-identical through s (get and verify). */
static void assert_object(const bbit_store *s, const struct obj *o)
{
    char err[BBIT_STORE_ERR_SIZE];
    unsigned char *want = random_bytes(o->len, o->seed);
    void *got = NULL;
    size_t len = 0;
    assert_int_equal(bbit_store_has(s, o->id, err, sizeof err), 1);
    if (bbit_store_get(s, o->id, 0, &got, &len, err, sizeof err) != 0)
        fail_msg("get %s: %s", o->id, err);
    assert_int_equal(len, o->len);
    assert_memory_equal(got, want, o->len);
    free(got);
    free(want);
    uint64_t size = 0;
    if (bbit_store_verify(s, o->id, &size, err, sizeof err) != 0)
        fail_msg("verify %s: %s", o->id, err);
    assert_int_equal(size, o->len);
}

/* A fresh store on dir reads every object of objs. */
static void assert_fresh_reads(const char *dir, const struct obj *objs, int n)
{
    bbit_store *s = open_store(dir, 0);
    for (int i = 0; i < n; i++)
        assert_object(s, &objs[i]);
    bbit_store_close(s);
}

/* Sum of the stored sizes of objs (what their pack holds after the magic). */
static uint64_t stored_bytes(const bbit_store *s, const struct obj *objs, int n)
{
    char err[BBIT_STORE_ERR_SIZE];
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        uint64_t size = 0;
        assert_int_equal(bbit_store_size_on_disk(s, objs[i].id, &size, err, sizeof err), 0);
        total += size;
    }
    return total;
}

static void begin(struct fixture *f)
{
    if (bbit_store_pack_begin(f->store, f->err, sizeof f->err) != 0)
        fail_msg("pack_begin: %s", f->err);
}

static struct bbit_store_pack_result commit(bbit_store *s, bool sync)
{
    char err[BBIT_STORE_ERR_SIZE];
    struct bbit_store_pack_result r = {99, true, 99};
    if (bbit_store_pack_commit(s, sync, &r, err, sizeof err) != 0)
        fail_msg("pack_commit: %s", err);
    return r;
}

/* Commits a pack of n random objects of len bytes through s. */
static struct bbit_store_pack_result pack_random(bbit_store *s, struct obj *objs, int n,
                                                 size_t len, uint64_t seed0)
{
    char err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_pack_begin(s, err, sizeof err) != 0)
        fail_msg("pack_begin: %s", err);
    put_random(s, objs, n, len, seed0);
    return commit(s, false);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hex_digit(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* The name a pack of these ids has: SHA-256 of the sorted 32-byte ids. */
static void pack_name_of(char **ids, size_t n, char out[65])
{
    qsort(ids, n, sizeof *ids, compare_ids);
    unsigned char *bin = malloc(n * 32 + 1);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 32; k++)
            bin[i * 32 + k] = (unsigned char)(hex_digit(ids[i][2 * k]) << 4 |
                                              hex_digit(ids[i][2 * k + 1]));
    sha256_hex(bin, n * 32, out);
    free(bin);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Checks the .idx of pack name byte by byte against the format of store.h:
 * magic, count, sorted entries inside the .pack, trailing SHA-256. */
static void assert_index_format(const char *packdir, const char *name, uint64_t count)
{
    char pack[PATH_MAX], idx[PATH_MAX], sum[65], stored_sum[65];
    pack_paths(packdir, name, pack, idx);
    size_t len, pack_len;
    unsigned char *buf = read_whole(idx, &len);
    unsigned char *pbuf = read_whole(pack, &pack_len);
    assert_int_equal(len, IDX_SIZE(count));
    assert_memory_equal(buf, "BBITIDX1", 8);
    assert_int_equal(le64(buf + 8), count); /* u32 count, u32 0 */
    assert_memory_equal(pbuf, "BBITPCK1", 8);
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = buf + 16 + 48 * i;
        if (i > 0)
            assert_true(memcmp(e - 48, e, 32) < 0);
        uint64_t offset = le64(e + 32), length = le64(e + 40);
        assert_true(offset >= 8 && length > 0 && offset + length <= pack_len);
        /* each entry is exactly one zstd frame */
        assert_int_equal(ZSTD_findFrameCompressedSize(pbuf + offset, length), length);
    }
    sha256_hex(buf, len - 32, sum);
    for (int k = 0; k < 32; k++)
        sprintf(stored_sum + 2 * k, "%02x", buf[len - 32 + k]);
    assert_string_equal(stored_sum, sum);
    free(buf);
    free(pbuf);
}

/* The store holds exactly one pack: n objects whose stored bytes total
 * `bytes` (after the magic), with a well-formed index. */
static void assert_one_pack(const struct fixture *f, uint64_t n, uint64_t bytes)
{
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    assert_int_equal(file_size(pack), 8 + bytes);
    assert_index_format(f->packdir, names[0], n);
}

/* Flips one byte of file path at offset (read-only files made writable first). */
static void flip_byte(const char *path, uint64_t offset)
{
    assert_int_equal(chmod(path, 0644), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)offset), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)offset), 1);
    close(fd);
}

/* The single pending pack's temp file under objects/tmp. */
static void pending_path(struct fixture *f, char *out)
{
    assert_int_equal(count_entries(f->tmp), 1);
    DIR *d = opendir(f->tmp);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && e->d_name[0] == '.')
        ;
    assert_non_null(e);
    snprintf(out, PATH_MAX, "%s/%s", f->tmp, e->d_name);
    closedir(d);
}

/* ------------------------------------------------------------------------ */
/* What objects/pack should hold (a model of the merge policy of store.h) */

#define MODEL_MAX 32

struct model_pack {
    char name[65];
    uint64_t size;           /* of the .pack */
    size_t count;            /* objects in it */
    const struct obj **objs; /* malloc'ed: the count objects it holds */
};

struct model {
    struct model_pack packs[MODEL_MAX];
    int n;
};

/* p's name: the SHA-256 of its sorted ids. */
static void model_name(struct model_pack *p)
{
    char **ids = malloc(p->count * sizeof *ids);
    for (size_t i = 0; i < p->count; i++)
        ids[i] = (char *)p->objs[i]->id;
    pack_name_of(ids, p->count, p->name);
    for (size_t i = 1; i < p->count; i++) /* the model holds each object once */
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    free(ids);
}

/* A pack of objs[0..n) (new objects) was committed through s: the model gets
 * it; name_out (may be NULL) gets its name. */
static void model_add(struct model *m, const bbit_store *s, const struct obj *objs, int n,
                      char *name_out)
{
    assert_true(m->n < MODEL_MAX);
    struct model_pack *p = &m->packs[m->n++];
    p->count = (size_t)n;
    p->objs = malloc((size_t)n * sizeof *p->objs);
    for (int i = 0; i < n; i++)
        p->objs[i] = &objs[i];
    p->size = 8 + stored_bytes(s, objs, n);
    model_name(p);
    if (name_out)
        memcpy(name_out, p->name, 65);
}

/* The merge store.h promises past BBIT_STORE_PACKS_MAX packs: the
 * BBIT_STORE_PACKS_MERGED smallest .pack files become one pack holding
 * exactly their objects, back to back. removed gets their names. */
static void model_merge(struct model *m, char removed[BBIT_STORE_PACKS_MERGED][65])
{
    int order[MODEL_MAX];
    assert_true(m->n > BBIT_STORE_PACKS_MAX);
    for (int i = 0; i < m->n; i++) {
        int j = i;
        for (; j > 0 && m->packs[order[j - 1]].size > m->packs[i].size; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    /* the tests make the choice unambiguous: no tie at the border */
    assert_true(m->packs[order[BBIT_STORE_PACKS_MERGED - 1]].size <
                m->packs[order[BBIT_STORE_PACKS_MERGED]].size);
    struct model_pack merged = {.size = 8};
    bool gone[MODEL_MAX] = {false};
    for (int k = 0; k < BBIT_STORE_PACKS_MERGED; k++) {
        const struct model_pack *src = &m->packs[order[k]];
        merged.count += src->count;
        merged.size += src->size - 8;
        gone[order[k]] = true;
        memcpy(removed[k], src->name, 65);
    }
    merged.objs = malloc(merged.count * sizeof *merged.objs);
    size_t at = 0;
    for (int k = 0; k < BBIT_STORE_PACKS_MERGED; k++) {
        const struct model_pack *src = &m->packs[order[k]];
        memcpy(merged.objs + at, src->objs, src->count * sizeof *src->objs);
        at += src->count;
    }
    model_name(&merged);
    int w = 0;
    for (int i = 0; i < m->n; i++) {
        if (gone[i])
            free(m->packs[i].objs);
        else
            m->packs[w++] = m->packs[i];
    }
    m->packs[w++] = merged;
    m->n = w;
}

/* objects/pack holds exactly the model's packs: their names, .pack sizes and
 * index counts. */
static void model_check(const struct model *m, const char *packdir)
{
    char names[MODEL_MAX][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(packdir, names, MODEL_MAX), m->n);
    for (int i = 0; i < m->n; i++) {
        const struct model_pack *p = &m->packs[i];
        pack_paths(packdir, p->name, pack, idx);
        if (!exists(idx))
            fail_msg("expected pack %s (%llu objects) is missing", p->name,
                     (unsigned long long)p->count);
        assert_int_equal(file_size(pack), p->size);
        assert_int_equal(idx_count(packdir, p->name), p->count);
    }
}

static void model_free(struct model *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->packs[i].objs);
    m->n = 0;
}

static bool pack_exists(const char *packdir, const char *name)
{
    char pack[PATH_MAX], idx[PATH_MAX];
    pack_paths(packdir, name, pack, idx);
    assert_int_equal(exists(pack), exists(idx)); /* both or neither */
    return exists(idx);
}

/* Commit result r installed n objects loose: no pack, nothing left in tmp/. */
static void assert_installed_loose(struct fixture *f, struct bbit_store_pack_result r, int n)
{
    assert_false(r.packed);
    assert_int_equal(r.objects, n);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 0);
    assert_int_equal(count_loose(f->objects), n);
    assert_int_equal(count_entries(f->tmp), 0);
}

/* ------------------------------------------------------------------------ */
/* Committing packs */

/* A pack of put and put_file objects is readable before commit (only through
 * its store) and after commit becomes exactly one well-formed pack, no loose files. */
static void test_pack_commit_installs_one_pack(void **state)
{
    struct fixture *f = *state;
    enum { PUTS = 70, FILES = 12, TOTAL = PUTS + FILES + 1 };
    struct obj objs[PUTS];
    char file_ids[FILES + 1][65], path[PATH_MAX];
    unsigned char *file_data[FILES + 1];
    size_t file_len[FILES + 1];
    begin(f);
    for (int i = 0; i < PUTS; i++) {
        /* distinct lengths: small, incompressible, a few multi-chunk ones */
        size_t len = i % 10 == 9 ? 300 * 1000 + (size_t)i : 100 + 37 * (size_t)i;
        unsigned char *data = random_bytes(len, 1000 + (uint64_t)i);
        objs[i].seed = 1000 + (uint64_t)i;
        objs[i].len = len;
        assert_int_equal(bbit_store_put(f->store, data, len, objs[i].id, f->err, sizeof f->err),
                         0);
        free(data);
    }
    for (int i = 0; i <= FILES; i++) {
        /* the last file is large: fed to the pack in several chunks */
        file_len[i] = i == FILES ? 900 * 1000 : 500 + 10 * (size_t)i;
        file_data[i] = text_bytes(file_len[i], (uint64_t)i);
        snprintf(path, sizeof path, "%s/file-%d", f->dir, i);
        write_whole(path, file_data[i], file_len[i]);
        uint64_t size = 0;
        char want[65];
        assert_int_equal(
            bbit_store_put_file(f->store, path, file_ids[i], &size, f->err, sizeof f->err), 0);
        assert_int_equal(size, file_len[i]);
        sha256_hex(file_data[i], file_len[i], want);
        assert_string_equal(file_ids[i], want);
    }
    /* and the empty object */
    char empty_id[65], want_empty[65];
    assert_int_equal(bbit_store_put(f->store, "", 0, empty_id, f->err, sizeof f->err), 0);
    sha256_hex("", 0, want_empty);
    assert_string_equal(empty_id, want_empty);

    /* readable through this store before commit, with nothing installed yet */
    for (int i = 0; i < PUTS; i++)
        assert_object(f->store, &objs[i]);
    for (int i = 0; i <= FILES; i++) {
        void *got;
        size_t len;
        assert_int_equal(
            bbit_store_get(f->store, file_ids[i], 0, &got, &len, f->err, sizeof f->err), 0);
        assert_int_equal(len, file_len[i]);
        assert_memory_equal(got, file_data[i], len);
        free(got);
    }
    assert_int_equal(bbit_store_has(f->store, empty_id, f->err, sizeof f->err), 1);
    assert_int_equal(count_loose(f->objects), 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 0);
    assert_int_equal(count_entries(f->tmp), 1); /* the pending pack */
    /* ... and invisible to another store on the same directory */
    bbit_store *other = open_store(f->sdir, 0);
    assert_int_equal(bbit_store_has(other, objs[1].id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(other, file_ids[0], f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(other, empty_id, f->err, sizeof f->err), 0);
    void *got = (void *)1;
    size_t got_len = 7;
    assert_int_equal(bbit_store_get(other, objs[1].id, 0, &got, &got_len, f->err, sizeof f->err),
                     -1);
    assert_null(got);
    assert_contains(f->err, "no object");
    bbit_store_close(other);

    struct bbit_store_pack_result r = commit(f->store, true);
    assert_true(r.packed);
    assert_int_equal(r.objects, TOTAL + 1); /* + the empty object */
    assert_int_equal(r.merged, 0);

    char names[2][65];
    assert_int_equal(list_packs(f->packdir, names, 2), 1);
    assert_int_equal(idx_count(f->packdir, names[0]), TOTAL + 1);
    assert_index_format(f->packdir, names[0], TOTAL + 1);
    /* the name is the SHA-256 of the sorted ids */
    char *ids[TOTAL + 1], name[65];
    for (int i = 0; i < PUTS; i++)
        ids[i] = objs[i].id;
    for (int i = 0; i <= FILES; i++)
        ids[PUTS + i] = file_ids[i];
    ids[TOTAL] = empty_id;
    pack_name_of(ids, TOTAL + 1, name);
    assert_string_equal(names[0], name);
    /* pack and index are read-only, nothing loose, nothing left in tmp */
    char pack[PATH_MAX], idx[PATH_MAX];
    pack_paths(f->packdir, names[0], pack, idx);
    struct stat st;
    assert_int_equal(stat(pack, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    assert_int_equal(stat(idx, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    assert_int_equal(count_loose(f->objects), 0);
    assert_int_equal(count_entries(f->tmp), 0);
    /* object_path still names the (absent) loose path */
    assert_int_equal(bbit_store_object_path(f->store, objs[1].id, path, sizeof path, f->err,
                                            sizeof f->err), 0);
    assert_false(exists(path));

    /* a fresh store reads everything byte for byte */
    assert_fresh_reads(f->sdir, objs, PUTS);
    bbit_store *fresh = open_store(f->sdir, 0);
    for (int i = 0; i <= FILES; i++) {
        char dest[PATH_MAX];
        snprintf(dest, sizeof dest, "%s/out-%d", f->dir, i);
        assert_int_equal(bbit_store_get_file(fresh, file_ids[i], dest, 0600, f->err,
                                             sizeof f->err), 0);
        size_t len;
        unsigned char *back = read_whole(dest, &len);
        assert_int_equal(len, file_len[i]);
        assert_memory_equal(back, file_data[i], len);
        free(back);
        assert_int_equal(bbit_store_verify(fresh, file_ids[i], NULL, f->err, sizeof f->err), 0);
        free(file_data[i]);
    }
    assert_int_equal(bbit_store_verify(fresh, empty_id, NULL, f->err, sizeof f->err), 0);
    bbit_store_close(fresh);
    /* the committing store reads them too (from the installed pack now) */
    for (int i = 0; i < PUTS; i += 3)
        assert_object(f->store, &objs[i]);
}

/* The same bytes twice, or an object already loose, are stored once: the
 * count, the index size and the pack size only cover new objects. */
static void test_pack_duplicates_not_repeated(void **state)
{
    struct fixture *f = *state;
    enum { N = 80 };
    struct obj objs[N], loose[3], again[N];
    char id[65], path[PATH_MAX];
    /* three objects exist loose before the pack */
    put_random(f->store, loose, 3, 3000, 500);
    assert_int_equal(count_loose(f->objects), 3);

    begin(f);
    put_random(f->store, objs, N, 2000, 0);
    put_random(f->store, again, N, 2000, 0); /* every one a second time */
    put_random(f->store, loose, 3, 3000, 500);
    /* put_file of bytes already pending, and of a loose object */
    unsigned char *data = random_bytes(2000, 7);
    snprintf(path, sizeof path, "%s/dup", f->dir);
    write_whole(path, data, 2000);
    free(data);
    assert_int_equal(bbit_store_put_file(f->store, path, id, NULL, f->err, sizeof f->err), 0);
    assert_string_equal(id, objs[7].id);
    data = random_bytes(3000, 501);
    write_whole(path, data, 3000);
    free(data);
    assert_int_equal(bbit_store_put_file(f->store, path, id, NULL, f->err, sizeof f->err), 0);
    assert_string_equal(id, loose[1].id);
    /* a writer (sized: under BBIT_STORE_PACK_OBJECT_MAX it writes into the
     * pack) fed duplicate bytes */
    bbit_store_writer *w = bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, NULL, 0, 2000,
                                                         f->err, sizeof f->err);
    assert_non_null(w);
    data = random_bytes(2000, 9);
    assert_int_equal(bbit_store_writer_write(w, data, 2000, f->err, sizeof f->err), 0);
    free(data);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), 0);
    assert_string_equal(id, objs[9].id);

    /* the pending pack holds each new object once */
    char pending[PATH_MAX];
    pending_path(f, pending);
    uint64_t bytes = stored_bytes(f->store, objs, N);
    assert_int_equal(file_size(pending), 8 + bytes);

    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);
    assert_int_equal(r.objects, N);
    assert_one_pack(f, N, bytes);
    /* the loose ones stayed loose, nothing else is loose */
    assert_int_equal(count_loose(f->objects), 3);
    assert_fresh_reads(f->sdir, objs, N);
    assert_fresh_reads(f->sdir, loose, 3);

    /* a later pack of objects already packed adds nothing */
    begin(f);
    put_random(f->store, again, N, 2000, 0);
    r = commit(f->store, false);
    assert_int_equal(r.objects, 0);
    assert_false(r.packed);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 1);
    assert_int_equal(count_loose(f->objects), 3);
    assert_int_equal(count_entries(f->tmp), 0);
}

/* Fewer than BBIT_STORE_PACK_MIN_OBJECTS objects (far below
 * BBIT_STORE_PACK_MIN_BYTES) are installed loose, no pack. */
static void test_small_pack_goes_loose(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS - 1 };
    struct obj objs[N];
    char path[PATH_MAX];
    begin(f);
    put_random(f->store, objs, N, 700, 40);
    assert_int_equal(count_loose(f->objects), 0);
    struct bbit_store_pack_result r = {99, true, 99};
    assert_int_equal(bbit_store_pack_commit(f->store, true, &r, f->err, sizeof f->err), 0);
    assert_installed_loose(f, r, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(bbit_store_object_path(f->store, objs[i].id, path, sizeof path, f->err,
                                                sizeof f->err), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0444);
        /* the loose file is the stored frame, offset 0 */
        uint64_t offset = 99, size = 0;
        int fd = bbit_store_open_raw(f->store, objs[i].id, &offset, &size, f->err, sizeof f->err);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(offset, 0);
        assert_int_equal(size, (uint64_t)st.st_size);
    }
    assert_fresh_reads(f->sdir, objs, N);
    /* an empty pack commits nothing; out may be NULL */
    begin(f);
    assert_int_equal(bbit_store_pack_commit(f->store, false, NULL, f->err, sizeof f->err), 0);
    assert_int_equal(count_loose(f->objects), N);
    assert_int_equal(count_entries(f->tmp), 0);
}

/* The path of object id as a loose file, and whether that file exists. */
static bool loose_exists(const bbit_store *s, const char *id)
{
    char err[BBIT_STORE_ERR_SIZE], path[PATH_MAX];
    assert_int_equal(bbit_store_object_path(s, id, path, sizeof path, err, sizeof err), 0);
    return exists(path);
}

/* While a pack is open, an object known to be BBIT_STORE_PACK_OBJECT_MAX
 * bytes or more (put and put_file: its size; put_raw_file: the frame's size;
 * a sized writer: the size given) is stored loose at once, visible to other
 * stores; one byte less goes into the pack. The commit counts and packs only
 * the pack's objects. */
static void test_big_objects_loose_in_pack(void **state)
{
    struct fixture *f = *state;
    const size_t big = BBIT_STORE_PACK_OBJECT_MAX;
    enum { SMALL = MIN_OBJECTS - 1 };
    struct obj small[SMALL], edge, big_put, big_sized;
    char pending[PATH_MAX], path[PATH_MAX], id[65], want[65];
    begin(f);
    put_random(f->store, small, SMALL, 500, 10);
    put_random(f->store, &edge, 1, big - 1, 20); /* the 64th object of the pack */
    pending_path(f, pending);
    const uint64_t in_pack =
        8 + stored_bytes(f->store, small, SMALL) + stored_bytes(f->store, &edge, 1);
    assert_int_equal(file_size(pending), in_pack);
    assert_false(loose_exists(f->store, edge.id));
    assert_int_equal(count_loose(f->objects), 0);

    /* put of exactly OBJECT_MAX bytes: loose, the pack unchanged */
    put_random(f->store, &big_put, 1, big, 30);
    assert_true(loose_exists(f->store, big_put.id));
    assert_int_equal(file_size(pending), in_pack);
    uint64_t offset = 99, size = 0;
    int fd = bbit_store_open_raw(f->store, big_put.id, &offset, &size, f->err, sizeof f->err);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(offset, 0);
    /* put_file of a compressible 2 MiB file: its size counts, not its frame's */
    unsigned char *text = text_bytes(2 * big, 1);
    char text_id[65];
    snprintf(path, sizeof path, "%s/big-text", f->dir);
    write_whole(path, text, 2 * big);
    assert_int_equal(bbit_store_put_file(f->store, path, text_id, NULL, f->err, sizeof f->err),
                     0);
    sha256_hex(text, 2 * big, want);
    assert_string_equal(text_id, want);
    assert_true(loose_exists(f->store, text_id));
    assert_int_equal(file_size(pending), in_pack);
    /* put_raw_file: the frame's size counts. A small frame of 3 MiB of text
     * goes into the pack; a frame of OBJECT_MAX bytes or more stays loose. */
    unsigned char *text3 = text_bytes(3 * big, 2);
    char text3_id[65], frame_path[PATH_MAX];
    size_t bound = ZSTD_compressBound(3 * big);
    unsigned char *frame = malloc(bound);
    size_t flen = ZSTD_compress(frame, bound, text3, 3 * big, 3);
    assert_false(ZSTD_isError(flen));
    assert_true(flen < big);
    snprintf(frame_path, sizeof frame_path, "%s/text3.zst", f->dir);
    write_whole(frame_path, frame, flen);
    assert_int_equal(bbit_store_put_raw_file(f->store, frame_path, NULL, 0, text3_id, f->err,
                                             sizeof f->err), 0);
    sha256_hex(text3, 3 * big, want);
    assert_string_equal(text3_id, want);
    assert_false(loose_exists(f->store, text3_id));
    assert_int_equal(file_size(pending), in_pack + flen); /* stored byte for byte */
    unsigned char *noise = random_bytes(big + 100, 40);
    char noise_id[65];
    bound = ZSTD_compressBound(big + 100);
    free(frame);
    frame = malloc(bound);
    flen = ZSTD_compress(frame, bound, noise, big + 100, 3);
    assert_false(ZSTD_isError(flen));
    assert_true(flen >= big);
    write_whole(frame_path, frame, flen);
    assert_int_equal(bbit_store_put_raw_file(f->store, frame_path, NULL, 0, noise_id, f->err,
                                             sizeof f->err), 0);
    assert_true(loose_exists(f->store, noise_id));
    free(frame);
    free(noise);
    const uint64_t in_pack2 = file_size(pending);
    /* a sized writer: by the size announced */
    unsigned char *data = random_bytes(big, 50);
    big_sized.seed = 50;
    big_sized.len = big;
    bbit_store_writer *w = bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, NULL, 0, big,
                                                         f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, data, big, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w, big_sized.id, f->err, sizeof f->err), 0);
    free(data);
    assert_true(loose_exists(f->store, big_sized.id));
    assert_int_equal(file_size(pending), in_pack2);
    w = bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, NULL, 0, 11, f->err,
                                      sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, "small sized", 11, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), 0);
    assert_false(loose_exists(f->store, id));
    assert_true(file_size(pending) > in_pack2);
    /* an unsized writer (size unknown, e.g. a tarball being built) goes into the pack */
    const uint64_t in_pack3 = file_size(pending);
    char unsized_id[65];
    w = bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 0, f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, "unsized", 7, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w, unsized_id, f->err, sizeof f->err), 0);
    assert_false(loose_exists(f->store, unsized_id));
    assert_true(file_size(pending) > in_pack3);

    /* the big ones are visible to another store before the commit */
    bbit_store *other = open_store(f->sdir, 0);
    assert_object(other, &big_put);
    assert_object(other, &big_sized);
    assert_int_equal(bbit_store_has(other, text_id, f->err, sizeof f->err), 1);
    assert_int_equal(bbit_store_has(other, noise_id, f->err, sizeof f->err), 1);
    assert_int_equal(bbit_store_has(other, edge.id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(other, text3_id, f->err, sizeof f->err), 0);
    bbit_store_close(other);
    assert_int_equal(count_loose(f->objects), 4);

    /* the commit: a pack of the 63 small, the edge one, text3, the small sized
     * one and the unsized one */
    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);
    assert_int_equal(r.objects, MIN_OBJECTS + 3);
    assert_int_equal(r.merged, 0);
    char names[2][65];
    assert_int_equal(list_packs(f->packdir, names, 2), 1);
    assert_int_equal(idx_count(f->packdir, names[0]), MIN_OBJECTS + 3);
    assert_index_format(f->packdir, names[0], MIN_OBJECTS + 3);
    assert_int_equal(count_loose(f->objects), 4);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_fresh_reads(f->sdir, small, SMALL);
    assert_fresh_reads(f->sdir, &edge, 1);
    assert_fresh_reads(f->sdir, &big_put, 1);
    assert_fresh_reads(f->sdir, &big_sized, 1);
    bbit_store *fresh = open_store(f->sdir, 0);
    const char *more[4] = {text_id, text3_id, id, unsized_id};
    for (int i = 0; i < 4; i++)
        assert_int_equal(bbit_store_verify(fresh, more[i], NULL, f->err, sizeof f->err), 0);
    void *got;
    size_t len;
    assert_int_equal(bbit_store_get(fresh, text3_id, 0, &got, &len, f->err, sizeof f->err), 0);
    assert_int_equal(len, 3 * big);
    assert_memory_equal(got, text3, len);
    free(got);
    bbit_store_close(fresh);
    free(text);
    free(text3);
}

/* The commit counts objects, not bytes: fewer than BBIT_STORE_PACK_MIN_OBJECTS
 * objects go loose even when they add up to more than 16 MiB. */
static void test_many_bytes_few_objects_go_loose(void **state)
{
    struct fixture *f = *state;
    enum { N = 17 };
    struct obj objs[N];
    char pending[PATH_MAX];
    begin(f);
    put_random(f->store, objs, N, BBIT_STORE_PACK_OBJECT_MAX - 1, 1); /* each into the pack */
    pending_path(f, pending);
    assert_true(file_size(pending) > (16u << 20));
    assert_int_equal(count_loose(f->objects), 0);
    assert_installed_loose(f, commit(f->store, false), N);
    assert_fresh_reads(f->sdir, objs, N);
}

/* ------------------------------------------------------------------------ */
/* Abort, close, misuse */

/* pack_abort drops every pending object and its temp file. */
static void test_pack_abort_drops_objects(void **state)
{
    struct fixture *f = *state;
    enum { N = 70 };
    struct obj objs[N];
    begin(f);
    put_random(f->store, objs, N, 500, 1);
    assert_int_equal(bbit_store_has(f->store, objs[3].id, f->err, sizeof f->err), 1);
    assert_int_equal(count_entries(f->tmp), 1);
    bbit_store_pack_abort(f->store);
    for (int i = 0; i < N; i++)
        assert_int_equal(bbit_store_has(f->store, objs[i].id, f->err, sizeof f->err), 0);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_int_equal(count_loose(f->objects), 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 0);
    /* abort without a pack is harmless; commit now has none */
    bbit_store_pack_abort(f->store);
    assert_int_equal(bbit_store_pack_commit(f->store, false, NULL, f->err, sizeof f->err), -1);
    assert_contains(f->err, "no pack is being written");
    /* writes go loose again */
    char id[65], path[PATH_MAX];
    assert_int_equal(bbit_store_put(f->store, "after", 5, id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_object_path(f->store, id, path, sizeof path, f->err,
                                            sizeof f->err), 0);
    assert_true(exists(path));
}

/* Closing a store with a pack open drops the pack. */
static void test_close_drops_open_pack(void **state)
{
    struct fixture *f = *state;
    enum { N = 66 };
    struct obj objs[N];
    begin(f);
    put_random(f->store, objs, N, 400, 2);
    assert_int_equal(count_entries(f->tmp), 1);
    bbit_store_close(f->store);
    f->store = NULL;
    assert_int_equal(count_entries(f->tmp), 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 0);
    assert_int_equal(count_loose(f->objects), 0);
    f->store = open_store(f->sdir, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(bbit_store_has(f->store, objs[i].id, f->err, sizeof f->err), 0);
}

/* begin twice and commit without begin fail with a message naming the store. */
static void test_begin_twice_and_commit_without_begin(void **state)
{
    struct fixture *f = *state;
    char want[PATH_MAX + 100];
    f->err[0] = '\0';
    assert_int_equal(bbit_store_pack_commit(f->store, true, NULL, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "object store: %s: no pack is being written", f->sdir);
    assert_string_equal(f->err, want);
    begin(f);
    f->err[0] = '\0';
    assert_int_equal(bbit_store_pack_begin(f->store, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "object store: %s: a pack is already being written", f->sdir);
    assert_string_equal(f->err, want);
    /* the first pack is still open and works */
    assert_int_equal(count_entries(f->tmp), 1);
    struct obj objs[MIN_OBJECTS];
    put_random(f->store, objs, MIN_OBJECTS, 100, 3);
    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);
    assert_int_equal(r.objects, MIN_OBJECTS);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 1);
    assert_fresh_reads(f->sdir, objs, MIN_OBJECTS);
    /* committed: a second commit has nothing open */
    assert_int_equal(bbit_store_pack_commit(f->store, true, NULL, f->err, sizeof f->err), -1);
    assert_contains(f->err, "no pack is being written");
}

/* ------------------------------------------------------------------------ */
/* Writers in a pack */

/* An aborted writer's bytes are cut off the pack: the next object follows
 * directly and the final pack holds no stray bytes. */
static void test_writer_abort_in_pack_truncates(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS };
    struct obj objs[N];
    char pending[PATH_MAX];
    begin(f);
    put_random(f->store, objs, 10, 900, 100);
    pending_path(f, pending);
    uint64_t before = file_size(pending);
    assert_int_equal(before, 8 + stored_bytes(f->store, objs, 10));

    size_t big = 600 * 1000; /* under BBIT_STORE_PACK_OBJECT_MAX: into the pack */
    bbit_store_writer *w = bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, NULL, 0, big,
                                                         f->err, sizeof f->err);
    assert_non_null(w);
    unsigned char *data = random_bytes(big, 77);
    assert_int_equal(bbit_store_writer_write(w, data, big, f->err, sizeof f->err), 0);
    assert_true(file_size(pending) > before + 500 * 1000); /* really written to the pack */
    bbit_store_writer_abort(w);
    assert_int_equal(file_size(pending), before);
    char dropped[65];
    sha256_hex(data, big, dropped);
    free(data);
    assert_int_equal(bbit_store_has(f->store, dropped, f->err, sizeof f->err), 0);

    /* the next object lands where the aborted one started and reads back */
    put_random(f->store, objs + 10, N - 10, 900, 110);
    assert_object(f->store, &objs[10]);
    assert_object(f->store, &objs[0]);
    uint64_t offset = 0;
    int fd = bbit_store_open_raw(f->store, objs[10].id, &offset, NULL, f->err, sizeof f->err);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(offset, before);
    uint64_t bytes = stored_bytes(f->store, objs, N);
    assert_int_equal(file_size(pending), 8 + bytes);

    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);
    assert_int_equal(r.objects, N);
    assert_one_pack(f, N, bytes);
    assert_fresh_reads(f->sdir, objs, N);
    bbit_store *fresh = open_store(f->sdir, 0);
    assert_int_equal(bbit_store_has(fresh, dropped, f->err, sizeof f->err), 0);
    bbit_store_close(fresh);
}

/* A writer whose bytes do not hash to expected_id fails with "hash mismatch",
 * stores nothing and leaves the pack consistent. */
static void test_writer_hash_mismatch_in_pack(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS + 2 };
    struct obj objs[N];
    char pending[PATH_MAX], expected[65], actual[65], id[65] = "untouched";
    begin(f);
    put_random(f->store, objs, N / 2, 1500, 200);
    pending_path(f, pending);
    uint64_t before = file_size(pending);

    sha256_hex("what was promised", 17, expected);
    sha256_hex("what was sent", 13, actual);
    bbit_store_writer *w = bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, expected, 0,
                                                         13, f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, "what was sent", 13, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), -1);
    char want[400];
    snprintf(want, sizeof want, "hash mismatch: received bytes hash to %s, expected %s", actual,
             expected);
    assert_contains(f->err, want);
    assert_string_equal(id, "untouched");
    assert_int_equal(file_size(pending), before);
    assert_int_equal(bbit_store_has(f->store, expected, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(f->store, actual, f->err, sizeof f->err), 0);

    /* the same through put_raw_file (a compressed writer) with a wrong id */
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/frame.zst", f->dir);
    unsigned char frame[256];
    size_t flen = ZSTD_compress(frame, sizeof frame, "what was sent", 13, 3);
    assert_false(ZSTD_isError(flen));
    write_whole(src, frame, flen);
    assert_int_equal(
        bbit_store_put_raw_file(f->store, src, expected, 0, id, f->err, sizeof f->err), -1);
    assert_contains(f->err, "hash mismatch");
    assert_contains(f->err, src);
    assert_int_equal(file_size(pending), before);

    /* the writer slot was released: more objects go in and everything commits */
    put_random(f->store, objs + N / 2, N - N / 2, 1500, 300);
    uint64_t bytes = stored_bytes(f->store, objs, N);
    assert_int_equal(file_size(pending), 8 + bytes);
    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);
    assert_int_equal(r.objects, N);
    assert_one_pack(f, N, bytes);
    assert_fresh_reads(f->sdir, objs, N);
    bbit_store *fresh = open_store(f->sdir, 0);
    assert_int_equal(bbit_store_has(fresh, expected, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(fresh, actual, f->err, sizeof f->err), 0);
    bbit_store_close(fresh);
}

/* A pack takes one writer at a time: a second writer (or a put) into the
 * pack while one is open is refused with a clear message; the first one
 * still commits. */
static void test_second_writer_refused(void **state)
{
    struct fixture *f = *state;
    char id[65], want[PATH_MAX + 100], path[PATH_MAX];
    begin(f);
    bbit_store_writer *w1 = bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, NULL, 0, 12,
                                                          f->err, sizeof f->err);
    assert_non_null(w1);
    assert_int_equal(bbit_store_writer_write(w1, "first ", 6, f->err, sizeof f->err), 0);

    snprintf(want, sizeof want,
             "object store: %s: the pack being written takes one writer at a time", f->sdir);
    f->err[0] = '\0';
    assert_null(bbit_store_writer_begin_sized(f->store, BBIT_STORE_RAW, NULL, 0, 6, f->err,
                                              sizeof f->err));
    assert_string_equal(f->err, want);
    f->err[0] = '\0';
    assert_null(bbit_store_writer_begin_sized(f->store, BBIT_STORE_COMPRESSED, NULL, 0, 100,
                                              f->err, sizeof f->err));
    assert_string_equal(f->err, want);
    f->err[0] = '\0';
    assert_int_equal(bbit_store_put(f->store, "second", 6, id, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
    snprintf(path, sizeof path, "%s/new-file", f->dir);
    write_whole(path, "a new file", 10);
    assert_int_equal(bbit_store_put_file(f->store, path, id, NULL, f->err, sizeof f->err), -1);
    assert_contains(f->err, "one writer at a time");
    /* committing the pack under an open writer is refused too */
    f->err[0] = '\0';
    assert_int_equal(bbit_store_pack_commit(f->store, false, NULL, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "object store: %s: a writer of the pack is still open", f->sdir);
    assert_string_equal(f->err, want);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 0);
    assert_int_equal(count_loose(f->objects), 0);
    /* an object of BBIT_STORE_PACK_OBJECT_MAX bytes is stored loose: it needs
     * no slot of the pack */
    struct obj big;
    put_random(f->store, &big, 1, BBIT_STORE_PACK_OBJECT_MAX, 5);
    assert_int_equal(count_loose(f->objects), 1);
    assert_fresh_reads(f->sdir, &big, 1);

    /* the first writer was not disturbed */
    assert_int_equal(bbit_store_writer_write(w1, "writer", 6, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w1, id, f->err, sizeof f->err), 0);
    char want_id[65];
    sha256_hex("first writer", 12, want_id);
    assert_string_equal(id, want_id);
    void *got;
    size_t len;
    assert_int_equal(bbit_store_get(f->store, id, 0, &got, &len, f->err, sizeof f->err), 0);
    assert_int_equal(len, 12);
    assert_memory_equal(got, "first writer", 12);
    free(got);
    /* the slot is free again */
    assert_int_equal(bbit_store_put(f->store, "second", 6, id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_put_file(f->store, path, id, NULL, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(f->store, id, f->err, sizeof f->err), 1);
}

/* ------------------------------------------------------------------------ */
/* Raw access to packed objects */

/* open_raw gives the packed object's frame (offset, size_on_disk bytes) that
 * another store accepts as is; copy_raw appends exactly those bytes. */
static void test_raw_access_to_packed_object(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS + 6 };
    struct obj objs[N];
    begin(f);
    put_random(f->store, objs, N, 5000, 900);
    /* pending objects: a valid range of the pending pack */
    uint64_t offset = 0, size = 0, disk = 0;
    int fd = bbit_store_open_raw(f->store, objs[4].id, &offset, &size, f->err, sizeof f->err);
    assert_true(fd >= 0);
    assert_true(offset > 8);
    assert_int_equal(bbit_store_size_on_disk(f->store, objs[4].id, &disk, f->err, sizeof f->err),
                     0);
    assert_int_equal(size, disk);
    unsigned char *pending_frame = malloc(size);
    assert_int_equal(pread(fd, pending_frame, size, (off_t)offset), (ssize_t)size);
    close(fd);
    assert_int_equal(ZSTD_findFrameCompressedSize(pending_frame, size), size);
    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);

    char names[1][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    bbit_store *s = open_store(f->sdir, 0);
    char otherdir[PATH_MAX];
    snprintf(otherdir, sizeof otherdir, "%s/other", f->dir);
    bbit_store *other = open_store(otherdir, BBIT_STORE_CREATE);
    /* the receiving store packs them too: put_raw_file into a pack */
    assert_int_equal(bbit_store_pack_begin(other, f->err, sizeof f->err), 0);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        fd = bbit_store_open_raw(s, objs[i].id, &offset, &size, f->err, sizeof f->err);
        assert_true(fd >= 0);
        assert_true(offset >= 8);
        assert_int_equal(bbit_store_size_on_disk(s, objs[i].id, &disk, f->err, sizeof f->err),
                         0);
        assert_int_equal(size, disk);
        assert_true(offset + size <= file_size(pack));
        total += size;
        unsigned char *frame = malloc(size);
        assert_int_equal(pread(fd, frame, size, (off_t)offset), (ssize_t)size);
        close(fd);
        assert_int_equal(ZSTD_findFrameCompressedSize(frame, size), size);
        unsigned long long content = ZSTD_getFrameContentSize(frame, size);
        assert_int_equal(content, objs[i].len);
        if (i == 4) /* the same bytes as while pending */
            assert_memory_equal(frame, pending_frame, size);
        char src[PATH_MAX], id[65];
        snprintf(src, sizeof src, "%s/raw-%d.zst", f->dir, i);
        write_whole(src, frame, size);
        free(frame);
        assert_int_equal(bbit_store_put_raw_file(other, src, objs[i].id, 0, id, f->err,
                                                 sizeof f->err), 0);
        assert_string_equal(id, objs[i].id);
        /* stored byte for byte */
        uint64_t other_size = 0;
        assert_int_equal(
            bbit_store_size_on_disk(other, id, &other_size, f->err, sizeof f->err), 0);
        assert_int_equal(other_size, size);
    }
    free(pending_frame);
    assert_int_equal(file_size(pack), 8 + total);
    r = commit(other, true);
    assert_true(r.packed);
    assert_int_equal(r.objects, N);
    bbit_store_close(other);
    assert_fresh_reads(otherdir, objs, N);

    /* copy_raw appends exactly the stored bytes at out's position */
    char out_path[PATH_MAX];
    snprintf(out_path, sizeof out_path, "%s/copy.out", f->dir);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0);
    assert_int_equal(write(out, "HEAD", 4), 4);
    assert_int_equal(bbit_store_copy_raw(s, objs[2].id, out, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_copy_raw(s, objs[3].id, out, f->err, sizeof f->err), 0);
    assert_int_equal(write(out, "TAIL", 4), 4);
    close(out);
    size_t out_len, pack_len;
    unsigned char *copied = read_whole(out_path, &out_len);
    unsigned char *packed = read_whole(pack, &pack_len);
    uint64_t off2, size2, off3, size3;
    fd = bbit_store_open_raw(s, objs[2].id, &off2, &size2, f->err, sizeof f->err);
    close(fd);
    fd = bbit_store_open_raw(s, objs[3].id, &off3, &size3, f->err, sizeof f->err);
    close(fd);
    assert_int_equal(out_len, 4 + size2 + size3 + 4);
    assert_memory_equal(copied, "HEAD", 4);
    assert_memory_equal(copied + 4, packed + off2, size2);
    assert_memory_equal(copied + 4 + size2, packed + off3, size3);
    assert_memory_equal(copied + 4 + size2 + size3, "TAIL", 4);
    /* ... also into a pipe (no copy_file_range there) */
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(bbit_store_copy_raw(s, objs[2].id, pipefd[1], f->err, sizeof f->err), 0);
    close(pipefd[1]);
    unsigned char *piped = malloc(size2 + 1);
    assert_int_equal(read(pipefd[0], piped, size2 + 1), (ssize_t)size2);
    close(pipefd[0]);
    assert_memory_equal(piped, packed + off2, size2);
    free(piped);
    free(copied);
    free(packed);
    /* a missing id is reported, not copied */
    char missing[65];
    sha256_hex("not stored", 10, missing);
    assert_int_equal(bbit_store_open_raw(s, missing, &offset, &size, f->err, sizeof f->err), -1);
    assert_contains(f->err, "no object");
    bbit_store_close(s);
}

/* ------------------------------------------------------------------------ */
/* Corruption */

/* A flipped byte inside a packed object: reads fail with "corrupt object"
 * naming the .pack and return nothing; the other objects still read. */
static void test_flipped_byte_in_pack(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS };
    struct obj objs[N];
    pack_random(f->store, objs, N, 4000, 40); /* random: stored as raw zstd blocks */
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);

    const struct obj *victim = &objs[17];
    uint64_t offset = 0, size = 0;
    int fd = bbit_store_open_raw(f->store, victim->id, &offset, &size, f->err, sizeof f->err);
    assert_true(fd >= 0);
    close(fd);
    /* one raw block: the content is the frame's last len bytes */
    assert_true(size > victim->len && size < victim->len + 20);
    uint64_t at = size / 2;
    flip_byte(pack, offset + at);
    unsigned char *data = random_bytes(victim->len, victim->seed);
    data[at - (size - victim->len)] ^= 0x5a;
    char actual[65], want[PATH_MAX + 300];
    sha256_hex(data, victim->len, actual);
    free(data);
    snprintf(want, sizeof want,
             "object store: %s: corrupt object (content hash is %s, expected %s)", pack, actual,
             victim->id);

    bbit_store *fresh = open_store(f->sdir, 0);
    bbit_store *stores[2] = {f->store, fresh};
    for (int k = 0; k < 2; k++) {
        void *got = (void *)1;
        size_t len = 5;
        f->err[0] = '\0';
        assert_int_equal(
            bbit_store_get(stores[k], victim->id, 0, &got, &len, f->err, sizeof f->err), -1);
        assert_null(got);
        assert_int_equal(len, 0);
        assert_string_equal(f->err, want);
        assert_int_equal(bbit_store_verify(stores[k], victim->id, NULL, f->err, sizeof f->err),
                         -1);
        assert_string_equal(f->err, want);
        char dest[PATH_MAX];
        snprintf(dest, sizeof dest, "%s/checkout-%d", f->dir, k);
        assert_int_equal(
            bbit_store_get_file(stores[k], victim->id, dest, 0644, f->err, sizeof f->err), -1);
        assert_contains(f->err, "corrupt object");
        assert_false(exists(dest));
        /* its neighbours are intact */
        assert_object(stores[k], &objs[16]);
        assert_object(stores[k], &objs[18]);
    }
    bbit_store_close(fresh);

    /* a damaged frame header is reported as corrupt too */
    struct obj *second = &objs[30];
    fd = bbit_store_open_raw(f->store, second->id, &offset, &size, f->err, sizeof f->err);
    assert_true(fd >= 0);
    close(fd);
    flip_byte(pack, offset); /* the zstd magic */
    void *got = (void *)1;
    size_t len = 5;
    assert_int_equal(bbit_store_get(f->store, second->id, 0, &got, &len, f->err, sizeof f->err),
                     -1);
    assert_null(got);
    snprintf(want, sizeof want, "object store: %s: corrupt object (", pack);
    assert_contains(f->err, want);
}

/* Open succeeds with an unusable pack: "no object" then names the pack. */
static void assert_skipped(struct fixture *f, const struct obj *o, const char *reason)
{
    bbit_store *s = open_store(f->sdir, 0);
    void *got = (void *)1;
    size_t len;
    assert_int_equal(bbit_store_has(s, o->id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_get(s, o->id, 0, &got, &len, f->err, sizeof f->err), -1);
    assert_null(got);
    assert_contains(f->err, "no object");
    assert_contains(f->err, "a pack could not be read");
    assert_contains(f->err, reason);
    bbit_store_close(s);
}

/* A .idx of the wrong size, or with a wrong count, is skipped (other objects
 * stay readable); a lookup that misses says "corrupt pack index" and names
 * the file. */
static void test_corrupt_index_skipped(void **state)
{
    struct fixture *f = *state;
    struct obj objs[MIN_OBJECTS], loose;
    pack_random(f->store, objs, MIN_OBJECTS, 300, 60);
    put_random(f->store, &loose, 1, 100, 61);
    bbit_store_close(f->store);
    f->store = NULL;
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX], want[PATH_MAX + 100];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    uint64_t size = file_size(idx);
    size_t good_len;
    unsigned char *good = read_whole(idx, &good_len);

    assert_int_equal(chmod(idx, 0644), 0);
    assert_int_equal(truncate(idx, (off_t)size - 1), 0);
    snprintf(want, sizeof want, "%s: corrupt pack index (size %llu)", idx,
             (unsigned long long)size - 1);
    assert_skipped(f, &objs[0], want);
    f->store = open_store(f->sdir, 0); /* the loose object is still read */
    assert_object(f->store, &loose);
    bbit_store_close(f->store);
    f->store = NULL;
    /* shorter than a header */
    assert_int_equal(truncate(idx, 10), 0);
    assert_skipped(f, &objs[0], "corrupt pack index");

    /* the right size but a count that disagrees with it */
    write_whole(idx, good, good_len);
    f->store = open_store(f->sdir, 0); /* restored: reads again */
    assert_object(f->store, &objs[0]);
    bbit_store_close(f->store);
    f->store = NULL;
    good[8] ^= 1;
    write_whole(idx, good, good_len);
    snprintf(want, sizeof want, "%s: corrupt pack index (bad header)", idx);
    assert_skipped(f, &objs[0], want);
    free(good);
}

/* A .pack without the magic, or missing beside its index, is skipped and
 * named by a lookup that misses. */
static void test_bad_pack_skipped(void **state)
{
    struct fixture *f = *state;
    struct obj objs[MIN_OBJECTS];
    pack_random(f->store, objs, MIN_OBJECTS, 300, 70);
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX], want[PATH_MAX + 100];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    flip_byte(pack, 3);
    snprintf(want, sizeof want, "%s: not a bbit pack (bad magic)", pack);
    assert_skipped(f, &objs[0], want);
    /* an empty .pack too */
    assert_int_equal(truncate(pack, 0), 0);
    assert_skipped(f, &objs[0], want);
    /* no .pack at all beside the index */
    assert_int_equal(unlink(pack), 0);
    snprintf(want, sizeof want, "%s: No such file or directory", pack);
    assert_skipped(f, &objs[0], want);
}

/* ------------------------------------------------------------------------ */
/* Merging */

/* A merge reads only intact indexes: a source whose .idx does not match its
 * checksum stops the merge, and every source stays (nothing is lost). */
static void test_merge_refuses_damaged_index(void **state)
{
    struct fixture *f = *state;
    enum { PACKS = BBIT_STORE_PACKS_MAX + 1 };
    struct obj objs[PACKS][MIN_OBJECTS];
    char names[PACKS][65], pack[PATH_MAX], idx[PATH_MAX];
    pack_random(f->store, objs[0], MIN_OBJECTS, 100, 9000); /* the smallest pack */
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    flip_byte(idx, file_size(idx) - 1); /* the checksum only: the index still loads */
    for (int k = 1; k < PACKS; k++) {
        struct bbit_store_pack_result r =
            pack_random(f->store, objs[k], MIN_OBJECTS, 300, 9000 + 100 * (uint64_t)k);
        assert_true(r.packed);
        assert_int_equal(r.merged, 0); /* the 17th: the merge stopped at the damaged index */
    }
    assert_int_equal(list_packs(f->packdir, NULL, 0), PACKS);
    assert_int_equal(count_entries(f->tmp), 0);
    for (int k = 0; k < PACKS; k++)
        assert_fresh_reads(f->sdir, objs[k], MIN_OBJECTS);
}

/* Lengths for pack k (0 <= k < 19), all distinct and in no order of k: 64
 * random objects of spread_len(k) bytes make packs of distinct sizes. */
static size_t spread_len(int k)
{
    return 300 + 30 * (size_t)((k * 7) % 19);
}

/* Commits pack k: 64 random objects of spread_len(k) bytes through s into
 * objs + 64 * k, which the model gets; name_out (may be NULL) its name. */
static struct bbit_store_pack_result spread_pack(bbit_store *s, struct model *m,
                                                 struct obj *objs, int k, char *name_out)
{
    struct obj *o = objs + MIN_OBJECTS * k;
    struct bbit_store_pack_result r =
        pack_random(s, o, MIN_OBJECTS, spread_len(k), 100000 * (uint64_t)(k + 1));
    assert_true(r.packed);
    assert_int_equal(r.objects, MIN_OBJECTS);
    model_add(m, s, o, MIN_OBJECTS, name_out);
    return r;
}

/* Up to BBIT_STORE_PACKS_MAX packs nothing merges, not even packs of equal
 * size; commits that add no pack (loose, or nothing new) merge nothing either. */
static void test_no_merge_up_to_limit(void **state)
{
    struct fixture *f = *state;
    enum { PACKS = BBIT_STORE_PACKS_MAX, N = PACKS * MIN_OBJECTS };
    struct obj *objs = calloc(N + 5, sizeof *objs), again[MIN_OBJECTS];
    struct model m = {0};
    char names[PACKS][65];
    for (int k = 0; k < PACKS; k++) {
        struct obj *o = objs + MIN_OBJECTS * k;
        struct bbit_store_pack_result r =
            pack_random(f->store, o, MIN_OBJECTS, 1000, 1000 * (uint64_t)(k + 1));
        assert_true(r.packed);
        assert_int_equal(r.objects, MIN_OBJECTS);
        assert_int_equal(r.merged, 0);
        model_add(&m, f->store, o, MIN_OBJECTS, names[k]);
        model_check(&m, f->packdir); /* k + 1 packs: the earlier ones untouched */
        assert_int_equal(m.packs[k].size, m.packs[0].size); /* all of one size */
    }
    assert_int_equal(list_packs(f->packdir, NULL, 0), BBIT_STORE_PACKS_MAX);
    for (int k = 0; k < PACKS; k++)
        assert_true(pack_exists(f->packdir, names[k]));

    /* a small batch goes loose: still 16 packs */
    begin(f);
    put_random(f->store, objs + N, 5, 1000, 99000);
    struct bbit_store_pack_result r = commit(f->store, false);
    assert_false(r.packed);
    assert_int_equal(r.objects, 5);
    assert_int_equal(r.merged, 0);
    assert_int_equal(count_loose(f->objects), 5);
    model_check(&m, f->packdir);
    /* a pack of objects all stored already installs nothing */
    begin(f);
    put_random(f->store, again, MIN_OBJECTS, 1000, 1000); /* the objects of pack 0 */
    r = commit(f->store, false);
    assert_false(r.packed);
    assert_int_equal(r.objects, 0);
    assert_int_equal(r.merged, 0);
    model_check(&m, f->packdir);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_fresh_reads(f->sdir, objs, N + 5);
    model_free(&m);
    free(objs);
}

/* The 17th pack is one too many: the 9 smallest by .pack size (not by object
 * count, not by age) become one pack holding exactly their objects; the 8
 * largest stay as they were. After that, 7 more packs merge nothing and the
 * 8th merges again (the big merged pack is not among the smallest then). */
static void test_merge_smallest_past_limit(void **state)
{
    struct fixture *f = *state;
    /* in commit order; small: one of the 9 smallest .pack files */
    static const struct {
        int n;
        size_t len;
        bool small;
    } plan[BBIT_STORE_PACKS_MAX + 1] = {
        {64, 3000, false}, {64, 500, true},   {200, 100, true},  {64, 2600, false},
        {64, 520, true},   {64, 540, true},   {64, 2200, false}, {64, 560, true},
        {64, 580, true},   {64, 1800, false}, {64, 600, true},   {64, 1400, false},
        {64, 620, true},   {64, 1000, false}, {64, 1200, false}, {64, 1100, false},
        {64, 480, true},
    };
    enum { FIRST = 16 * 64 + 200, SECOND = 8 * 64, ALL = FIRST + SECOND };
    struct obj *objs = calloc(ALL, sizeof *objs);
    struct model m = {0};
    char names[BBIT_STORE_PACKS_MAX + 1][65], removed[BBIT_STORE_PACKS_MERGED][65];
    int at = 0, small_count = 0;
    uint64_t small_objects = 0;
    for (int k = 0; k <= BBIT_STORE_PACKS_MAX; k++) {
        struct bbit_store_pack_result r = pack_random(f->store, objs + at, plan[k].n,
                                                      plan[k].len, 100000 * (uint64_t)(k + 1));
        assert_true(r.packed);
        assert_int_equal(r.objects, plan[k].n);
        model_add(&m, f->store, objs + at, plan[k].n, names[k]);
        at += plan[k].n;
        if (plan[k].small) {
            small_count++;
            small_objects += (uint64_t)plan[k].n;
        }
        if (k < BBIT_STORE_PACKS_MAX) {
            assert_int_equal(r.merged, 0);
            assert_int_equal(list_packs(f->packdir, NULL, 0), k + 1);
            model_check(&m, f->packdir);
        } else {
            assert_int_equal(r.merged, BBIT_STORE_PACKS_MERGED);
        }
    }
    assert_int_equal(at, FIRST);
    assert_int_equal(small_count, BBIT_STORE_PACKS_MERGED);
    /* pack 2 has the most objects and the smallest file */
    for (int k = 0; k <= BBIT_STORE_PACKS_MAX; k++)
        if (k != 2) {
            assert_true(m.packs[k].count < m.packs[2].count);
            assert_true(m.packs[k].size > m.packs[2].size);
        }

    model_merge(&m, removed);
    model_check(&m, f->packdir);
    assert_int_equal(list_packs(f->packdir, NULL, 0),
                     BBIT_STORE_PACKS_MAX + 1 - BBIT_STORE_PACKS_MERGED + 1);
    /* the small ones are gone (the model picked the same), the big ones stay */
    for (int k = 0; k <= BBIT_STORE_PACKS_MAX; k++) {
        bool was_removed = false;
        for (int i = 0; i < BBIT_STORE_PACKS_MERGED; i++)
            was_removed |= strcmp(removed[i], names[k]) == 0;
        assert_int_equal(was_removed, plan[k].small);
        assert_int_equal(pack_exists(f->packdir, names[k]), !plan[k].small);
    }
    /* the merged pack: exactly the objects of the 9, once each, well formed */
    char merged1[65];
    const struct model_pack *mp = &m.packs[m.n - 1];
    memcpy(merged1, mp->name, 65);
    assert_int_equal(mp->count, small_objects);
    assert_int_equal(idx_count(f->packdir, merged1), 8 * 64 + 200);
    assert_index_format(f->packdir, merged1, small_objects);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_int_equal(count_loose(f->objects), 0);
    assert_fresh_reads(f->sdir, objs, FIRST);
    for (int i = 0; i < FIRST; i += 7) /* the committing store reads them too */
        assert_object(f->store, &objs[i]);

    /* 8 more small packs: the first 7 make 10 .. 16 packs, no merge; the 8th merges */
    for (int j = 0; j < 8; j++) {
        struct bbit_store_pack_result r = pack_random(f->store, objs + at, 64, 300 + 10 * (size_t)j,
                                                      5000000 + 1000 * (uint64_t)j);
        assert_true(r.packed);
        model_add(&m, f->store, objs + at, 64, NULL);
        at += 64;
        if (j < 7) {
            assert_int_equal(r.merged, 0);
            model_check(&m, f->packdir);
            assert_int_equal(m.n, 10 + j);
        } else { /* the 8th: 17 packs, merged into 9 again */
            assert_int_equal(r.merged, BBIT_STORE_PACKS_MERGED);
        }
    }
    assert_int_equal(at, ALL);
    model_merge(&m, removed);
    model_check(&m, f->packdir);
    assert_int_equal(m.n, 9);
    /* the 8 new ones and the smallest big one (pack 13) were merged */
    assert_true(pack_exists(f->packdir, merged1));
    assert_false(pack_exists(f->packdir, names[13]));
    assert_true(pack_exists(f->packdir, names[15]));
    assert_int_equal(idx_count(f->packdir, m.packs[m.n - 1].name), 9 * 64);
    assert_index_format(f->packdir, m.packs[m.n - 1].name, 9 * 64);
    assert_fresh_reads(f->sdir, objs, ALL);
    assert_int_equal(count_entries(f->tmp), 0);
    model_free(&m);
    free(objs);
}

/* Two stores packing overlapping objects at the same time: when both packs
 * are among the merged ones, the merged pack holds each object once. */
static void test_merge_dedups_overlapping_packs(void **state)
{
    struct fixture *f = *state;
    enum { FILL = 15, SMALL = 7, UNIQUE = SMALL * 64 + 96 };
    const size_t len = 900;
    struct obj *fill = calloc(FILL * 64, sizeof *fill);
    struct obj x1[32], x2[32], x2_again[32], y[32];
    struct obj *unique = calloc(UNIQUE, sizeof *unique);
    char names[FILL][65], *ids[UNIQUE], a_name[65], b_name[65];
    /* 7 small packs, 8 bigger than the two that follow */
    for (int k = 0; k < FILL; k++) {
        size_t flen = k < SMALL ? 300 + 20 * (size_t)k : 2000 + 100 * (size_t)k;
        struct bbit_store_pack_result r =
            pack_random(f->store, fill + 64 * k, 64, flen, 100000 * (uint64_t)(k + 1));
        assert_true(r.packed);
        assert_int_equal(r.merged, 0);
        for (int i = 0; i < 64; i++)
            ids[i] = fill[64 * k + i].id;
        pack_name_of(ids, 64, names[k]);
        assert_true(pack_exists(f->packdir, names[k]));
    }
    bbit_store *b = open_store(f->sdir, 0);
    begin(f);
    assert_int_equal(bbit_store_pack_begin(b, f->err, sizeof f->err), 0);
    put_random(f->store, x1, 32, len, 100);
    put_random(f->store, x2, 32, len, 200);
    put_random(b, x2_again, 32, len, 200); /* b cannot see a's pending objects */
    put_random(b, y, 32, len, 300);
    assert_int_equal(bbit_store_has(b, x1[0].id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(f->store, y[0].id, f->err, sizeof f->err), 0);

    struct bbit_store_pack_result r = commit(f->store, false); /* the 16th pack */
    assert_true(r.packed);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 16);
    r = commit(b, false); /* the 17th */
    assert_true(r.packed);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, BBIT_STORE_PACKS_MERGED);
    bbit_store_close(b);

    /* a's and b's packs and the 7 small ones became one; the 8 big ones stay */
    for (int i = 0; i < 32; i++) {
        ids[i] = x1[i].id;
        ids[32 + i] = x2[i].id;
    }
    pack_name_of(ids, 64, a_name);
    for (int i = 0; i < 32; i++) {
        ids[i] = x2_again[i].id;
        ids[32 + i] = y[i].id;
    }
    pack_name_of(ids, 64, b_name);
    assert_false(pack_exists(f->packdir, a_name));
    assert_false(pack_exists(f->packdir, b_name));
    for (int k = 0; k < FILL; k++)
        assert_int_equal(pack_exists(f->packdir, names[k]), k >= SMALL);
    char all[FILL][65], merged[65] = "";
    assert_int_equal(list_packs(f->packdir, all, FILL), FILL - SMALL + 1);
    for (int i = 0; i < FILL - SMALL + 1; i++) {
        bool known = false;
        for (int k = SMALL; k < FILL; k++)
            known |= strcmp(all[i], names[k]) == 0;
        if (!known) {
            assert_string_equal(merged, "");
            memcpy(merged, all[i], 65);
        }
    }
    memcpy(unique, fill, SMALL * 64 * sizeof *unique);
    memcpy(unique + SMALL * 64, x1, sizeof x1);
    memcpy(unique + SMALL * 64 + 32, x2, sizeof x2);
    memcpy(unique + SMALL * 64 + 64, y, sizeof y);
    for (int i = 0; i < UNIQUE; i++)
        ids[i] = unique[i].id;
    char want[65], pack[PATH_MAX], idx[PATH_MAX];
    pack_name_of(ids, UNIQUE, want);
    assert_string_equal(merged, want);
    assert_int_equal(idx_count(f->packdir, merged), UNIQUE); /* x2 once, not twice */
    assert_index_format(f->packdir, merged, UNIQUE);         /* strictly sorted: no id twice */
    pack_paths(f->packdir, merged, pack, idx);
    bbit_store *fresh = open_store(f->sdir, 0);
    assert_int_equal(file_size(pack), 8 + stored_bytes(fresh, unique, UNIQUE));
    bbit_store_close(fresh);
    assert_fresh_reads(f->sdir, unique, UNIQUE);
    assert_fresh_reads(f->sdir, fill, FILL * 64);
    free(fill);
    free(unique);
}

/* While another holder has objects/pack/merge.lock, commits past the limit
 * leave the packs alone (17, then 18 packs); the next commit past the limit
 * after it is released merges the 9 smallest (19 -> 11 packs). */
static void test_merge_skipped_while_locked(void **state)
{
    struct fixture *f = *state;
    enum { PACKS = BBIT_STORE_PACKS_MAX + 3, N = PACKS * MIN_OBJECTS };
    struct obj *objs = calloc(N, sizeof *objs);
    struct model m = {0};
    char removed[BBIT_STORE_PACKS_MERGED][65];
    for (int k = 0; k < BBIT_STORE_PACKS_MAX; k++)
        assert_int_equal(spread_pack(f->store, &m, objs, k, NULL).merged, 0);
    model_check(&m, f->packdir);

    char lock_path[PATH_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/merge.lock", f->packdir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(lock >= 0);
    assert_int_equal(flock(lock, LOCK_EX | LOCK_NB), 0);
    for (int k = BBIT_STORE_PACKS_MAX; k < PACKS - 1; k++) {
        struct bbit_store_pack_result r = spread_pack(f->store, &m, objs, k, NULL);
        assert_int_equal(r.merged, 0); /* would merge, but another merge "runs" */
        model_check(&m, f->packdir);
        assert_int_equal(list_packs(f->packdir, NULL, 0), k + 1);
    }
    assert_int_equal(count_entries(f->tmp), 0);
    assert_fresh_reads(f->sdir, objs, N - MIN_OBJECTS);
    close(lock);

    struct bbit_store_pack_result r = spread_pack(f->store, &m, objs, PACKS - 1, NULL);
    assert_int_equal(r.merged, BBIT_STORE_PACKS_MERGED);
    model_merge(&m, removed);
    model_check(&m, f->packdir);
    assert_int_equal(list_packs(f->packdir, NULL, 0), PACKS - BBIT_STORE_PACKS_MERGED + 1);
    for (int i = 0; i < BBIT_STORE_PACKS_MERGED; i++)
        assert_false(pack_exists(f->packdir, removed[i]));
    assert_true(exists(lock_path)); /* left in place, harmlessly */
    assert_int_equal(count_entries(f->tmp), 0);
    assert_fresh_reads(f->sdir, objs, N);
    model_free(&m);
    free(objs);
}

/* A store that loaded packs keeps reading them after another store's merge
 * removed their files (its fds and mappings keep the old files alive). */
static void test_reader_survives_merge(void **state)
{
    struct fixture *f = *state;
    enum { PACKS = BBIT_STORE_PACKS_MAX + 1, N = PACKS * MIN_OBJECTS };
    struct obj *objs = calloc(N, sizeof *objs);
    struct model m = {0};
    char names[PACKS][65], removed[BBIT_STORE_PACKS_MERGED][65];
    for (int k = 0; k < BBIT_STORE_PACKS_MAX; k++)
        assert_int_equal(spread_pack(f->store, &m, objs, k, names[k]).merged, 0);

    bbit_store *a = open_store(f->sdir, 0);
    for (int i = 0; i < N - MIN_OBJECTS; i++)
        assert_object(a, &objs[i]);

    /* through store b: the 17th pack, and the merge */
    bbit_store *b = open_store(f->sdir, 0);
    struct bbit_store_pack_result r = spread_pack(b, &m, objs, PACKS - 1, names[PACKS - 1]);
    assert_int_equal(r.merged, BBIT_STORE_PACKS_MERGED);
    bbit_store_close(b);
    model_merge(&m, removed);
    model_check(&m, f->packdir);

    /* store a still reads every object it could read, from the removed files */
    int gone = 0;
    for (int i = 0; i < N - MIN_OBJECTS; i++)
        assert_object(a, &objs[i]);
    for (int k = 0; k < PACKS - 1; k++) {
        bool was_removed = false;
        for (int i = 0; i < BBIT_STORE_PACKS_MERGED; i++)
            was_removed |= strcmp(removed[i], names[k]) == 0;
        assert_int_equal(pack_exists(f->packdir, names[k]), !was_removed);
        gone += was_removed;
        uint64_t offset, size;
        int fd = bbit_store_open_raw(a, objs[MIN_OBJECTS * k].id, &offset, &size, f->err,
                                     sizeof f->err);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_nlink, was_removed ? 0 : 1); /* the file of a removed pack */
        close(fd);
    }
    assert_true(gone >= BBIT_STORE_PACKS_MERGED - 1);
    bbit_store_close(a);
    assert_fresh_reads(f->sdir, objs, N);
    model_free(&m);
    free(objs);
}

/* A store opened before another process committed a pack reads its objects:
 * a read that misses lists the pack folder again when it changed. */
static void test_reader_sees_later_pack(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS };
    struct obj objs[N], first[N];
    pack_random(f->store, first, N, 300, 7000); /* the folder exists, with one pack */
    bbit_store *a = open_store(f->sdir, 0);
    bbit_store *b = open_store(f->sdir, 0);
    struct bbit_store_pack_result r = pack_random(b, objs, N, 300, 8000);
    assert_true(r.packed);
    bbit_store_close(b);
    /* has() answers from what a loaded (no folder listing per miss); reads refresh */
    void *got = NULL;
    size_t len = 0;
    if (bbit_store_get(a, objs[0].id, 0, &got, &len, f->err, sizeof f->err) != 0)
        fail_msg("get of an object packed after the open: %s", f->err);
    free(got);
    for (int i = 0; i < N; i++)
        assert_object(a, &objs[i]);
    for (int i = 0; i < N; i++)
        assert_object(a, &first[i]);
    /* a missing object is still missing, after one more look */
    char missing[65];
    memset(missing, 'a', 64);
    missing[64] = '\0';
    assert_int_equal(bbit_store_get(a, missing, 0, &got, &len, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "no object"));
    bbit_store_close(a);
}

/* A .pack without its .idx (a commit killed between its two renames) is
 * removed when a store lists the folder, once it is an hour old; a young one
 * may be a commit in progress and stays. */
static void test_orphan_pack_removed_when_old(void **state)
{
    struct fixture *f = *state;
    enum { N = MIN_OBJECTS };
    struct obj objs[N];
    pack_random(f->store, objs, N, 300, 9000);
    char names[2][65], pack[PATH_MAX], idx[PATH_MAX], old_orphan[PATH_MAX], young_orphan[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 2), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    size_t len;
    unsigned char *bytes = read_whole(pack, &len);
    snprintf(old_orphan, sizeof old_orphan, "%s/pack-%064d.pack", f->packdir, 1);
    snprintf(young_orphan, sizeof young_orphan, "%s/pack-%064d.pack", f->packdir, 2);
    write_whole(old_orphan, bytes, len);
    write_whole(young_orphan, bytes, len);
    free(bytes);
    struct timespec two_hours_ago[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimensat(AT_FDCWD, old_orphan, two_hours_ago, 0), 0);
    bbit_store *s = open_store(f->sdir, 0);
    assert_false(exists(old_orphan));
    assert_true(exists(young_orphan));
    assert_true(exists(pack) && exists(idx));
    for (int i = 0; i < N; i++)
        assert_object(s, &objs[i]);
    bbit_store_close(s);
}

/* ------------------------------------------------------------------------ */
/* Durability */

/* A store opened with BBIT_STORE_FSYNC commits packs (and small loose
 * batches, and the merge past the limit) the same way. */
static void test_fsync_store_packs(void **state)
{
    struct fixture *f = *state;
    enum { PACKS = BBIT_STORE_PACKS_MAX + 1, N = PACKS * MIN_OBJECTS };
    struct obj *objs = calloc(N + 5, sizeof *objs);
    struct model m = {0};
    char removed[BBIT_STORE_PACKS_MERGED][65];
    for (int k = 0; k < PACKS; k++) {
        struct obj *o = objs + MIN_OBJECTS * k;
        begin(f);
        put_random(f->store, o, MIN_OBJECTS, spread_len(k), 100000 * (uint64_t)(k + 1));
        struct bbit_store_pack_result r = commit(f->store, k % 2 == 0);
        assert_true(r.packed);
        assert_int_equal(r.objects, MIN_OBJECTS);
        model_add(&m, f->store, o, MIN_OBJECTS, NULL);
        assert_int_equal(r.merged, k < BBIT_STORE_PACKS_MAX ? 0 : BBIT_STORE_PACKS_MERGED);
    }
    model_merge(&m, removed);
    model_check(&m, f->packdir);
    assert_int_equal(list_packs(f->packdir, NULL, 0), PACKS - BBIT_STORE_PACKS_MERGED + 1);
    assert_int_equal(count_loose(f->objects), 0);
    /* a small batch goes loose */
    begin(f);
    put_random(f->store, objs + N, 5, 1200, 9000);
    struct bbit_store_pack_result r = commit(f->store, true);
    assert_false(r.packed);
    assert_int_equal(r.objects, 5);
    assert_int_equal(r.merged, 0);
    assert_int_equal(count_loose(f->objects), 5);
    assert_int_equal(count_entries(f->tmp), 0);
    model_check(&m, f->packdir);
    assert_fresh_reads(f->sdir, objs, N + 5);
    model_free(&m);
    free(objs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pack_commit_installs_one_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_duplicates_not_repeated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_pack_goes_loose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_objects_loose_in_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_bytes_few_objects_go_loose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_abort_drops_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drops_open_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_twice_and_commit_without_begin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writer_abort_in_pack_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_hash_mismatch_in_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_access_to_packed_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_index_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pack_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_refuses_damaged_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_merge_up_to_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_smallest_past_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_dedups_overlapping_packs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_skipped_while_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_survives_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_later_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_pack_removed_when_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_store_packs, setup_fsync, teardown),
    };
    return cmocka_run_group_tests_name("store_pack", tests, NULL, NULL);
}
