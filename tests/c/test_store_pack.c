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
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "bbit/store.h"

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

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* Deterministic pseudo-random bytes (xorshift). */
static unsigned char *random_bytes(size_t len, uint64_t seed)
{
    unsigned char *p = malloc(len ? len : 1);
    uint64_t x = seed * 2654435761u + 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    return p;
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

static void write_whole(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
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

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

static void assert_contains(const char *s, const char *part)
{
    if (strstr(s, part) == NULL)
        fail_msg("expected \"%s\" to contain \"%s\"", s, part);
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
    /* a writer fed duplicate bytes */
    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 0, f->err, sizeof f->err);
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
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    assert_int_equal(file_size(idx), 16 + 48 * N + 32);
    assert_int_equal(file_size(pack), 8 + bytes);
    assert_index_format(f->packdir, names[0], N);
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

/* Fewer than BBIT_STORE_PACK_MIN_OBJECTS objects are installed loose, no pack. */
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
    assert_false(r.packed);
    assert_int_equal(r.objects, N);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 0);
    assert_int_equal(count_loose(f->objects), N);
    assert_int_equal(count_entries(f->tmp), 0);
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

    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 0, f->err, sizeof f->err);
    assert_non_null(w);
    size_t big = 600 * 1000;
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
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    assert_int_equal(file_size(pack), 8 + bytes);
    assert_index_format(f->packdir, names[0], N);
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
    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, expected, 0, f->err, sizeof f->err);
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
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    assert_int_equal(file_size(pack), 8 + bytes);
    assert_index_format(f->packdir, names[0], N);
    assert_fresh_reads(f->sdir, objs, N);
    bbit_store *fresh = open_store(f->sdir, 0);
    assert_int_equal(bbit_store_has(fresh, expected, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(fresh, actual, f->err, sizeof f->err), 0);
    bbit_store_close(fresh);
}

/* A pack takes one writer at a time: a second writer (or a put) while one is
 * open is refused with a clear message; the first one still commits. */
static void test_second_writer_refused(void **state)
{
    struct fixture *f = *state;
    char id[65], want[PATH_MAX + 100], path[PATH_MAX];
    begin(f);
    bbit_store_writer *w1 =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 0, f->err, sizeof f->err);
    assert_non_null(w1);
    assert_int_equal(bbit_store_writer_write(w1, "first ", 6, f->err, sizeof f->err), 0);

    snprintf(want, sizeof want,
             "object store: %s: the pack being written takes one writer at a time", f->sdir);
    f->err[0] = '\0';
    assert_null(
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 0, f->err, sizeof f->err));
    assert_string_equal(f->err, want);
    f->err[0] = '\0';
    assert_null(bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err,
                                        sizeof f->err));
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

/* A .idx of the wrong size, or with a wrong count, makes open fail with
 * "corrupt pack index" and the path. */
static void test_corrupt_index_refused(void **state)
{
    struct fixture *f = *state;
    struct obj objs[MIN_OBJECTS];
    pack_random(f->store, objs, MIN_OBJECTS, 300, 60);
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
    f->err[0] = '\0';
    assert_null(bbit_store_open(f->sdir, 0, f->err, sizeof f->err));
    snprintf(want, sizeof want, "object store: %s: corrupt pack index (size %llu)", idx,
             (unsigned long long)size - 1);
    assert_string_equal(f->err, want);
    assert_contains(f->err, "corrupt pack index");
    /* shorter than a header */
    assert_int_equal(truncate(idx, 10), 0);
    assert_null(bbit_store_open(f->sdir, 0, f->err, sizeof f->err));
    assert_contains(f->err, "corrupt pack index");
    assert_contains(f->err, idx);

    /* the right size but a count that disagrees with it */
    write_whole(idx, good, good_len);
    f->store = open_store(f->sdir, 0); /* restored: opens again */
    assert_object(f->store, &objs[0]);
    bbit_store_close(f->store);
    f->store = NULL;
    good[8] ^= 1;
    write_whole(idx, good, good_len);
    assert_null(bbit_store_open(f->sdir, 0, f->err, sizeof f->err));
    snprintf(want, sizeof want, "object store: %s: corrupt pack index (bad header)", idx);
    assert_string_equal(f->err, want);
    free(good);
}

/* A .pack without the magic makes open fail with "not a bbit pack". */
static void test_bad_pack_magic_refused(void **state)
{
    struct fixture *f = *state;
    struct obj objs[MIN_OBJECTS];
    pack_random(f->store, objs, MIN_OBJECTS, 300, 70);
    char names[1][65], pack[PATH_MAX], idx[PATH_MAX], want[PATH_MAX + 100];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    pack_paths(f->packdir, names[0], pack, idx);
    flip_byte(pack, 3);
    f->err[0] = '\0';
    assert_null(bbit_store_open(f->sdir, 0, f->err, sizeof f->err));
    snprintf(want, sizeof want, "object store: %s: not a bbit pack (bad magic)", pack);
    assert_string_equal(f->err, want);
    /* an empty .pack too */
    assert_int_equal(truncate(pack, 0), 0);
    assert_null(bbit_store_open(f->sdir, 0, f->err, sizeof f->err));
    assert_string_equal(f->err, want);
}

/* ------------------------------------------------------------------------ */
/* Merging */

/* Packs merge like a binary counter: two equal packs become one; a bigger
 * pack then a smaller one stay apart; equal small ones cascade into a merge
 * of three. Every object reads from a fresh store after each step. */
static void test_merge_equal_packs(void **state)
{
    struct fixture *f = *state;
    enum { ALL = 64 + 64 + 400 + 64 + 64 };
    const size_t len = 1000; /* random: every stored frame has the same size */
    struct obj *objs = calloc(ALL, sizeof *objs);
    char names[4][65];
    int n = 0;

    struct bbit_store_pack_result r = pack_random(f->store, objs + n, 64, len, 10000);
    n += 64;
    assert_true(r.packed);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, names, 4), 1);
    char first[65];
    memcpy(first, names[0], 65);
    uint64_t frame = stored_bytes(f->store, objs, 1);
    assert_int_equal(stored_bytes(f->store, objs, 64), 64 * frame);

    /* 64 + 64: equal sizes, merged into one pack of all 128 */
    r = pack_random(f->store, objs + n, 64, len, 20000);
    n += 64;
    assert_true(r.packed);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 2);
    assert_int_equal(stored_bytes(f->store, objs, n), (uint64_t)n * frame);
    assert_int_equal(list_packs(f->packdir, names, 4), 1);
    assert_string_not_equal(names[0], first);
    assert_int_equal(idx_count(f->packdir, names[0]), 128);
    assert_index_format(f->packdir, names[0], 128);
    char pack[PATH_MAX], idx[PATH_MAX];
    pack_paths(f->packdir, names[0], pack, idx);
    assert_int_equal(file_size(pack), 8 + 128 * frame);
    char *ids[128], want_name[65];
    for (int i = 0; i < 128; i++)
        ids[i] = objs[i].id;
    pack_name_of(ids, 128, want_name);
    assert_string_equal(names[0], want_name);
    assert_fresh_reads(f->sdir, objs, n);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_int_equal(count_loose(f->objects), 0);

    /* 400 after 128: larger than all before, no merge */
    r = pack_random(f->store, objs + n, 400, len, 30000);
    n += 400;
    assert_int_equal(r.objects, 400);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, names, 4), 2);
    assert_fresh_reads(f->sdir, objs, n);

    /* 64 after 128 and 400: no merge, three packs */
    r = pack_random(f->store, objs + n, 64, len, 40000);
    n += 64;
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 0);
    assert_int_equal(list_packs(f->packdir, names, 4), 3);
    assert_fresh_reads(f->sdir, objs, n);

    /* another 64: 64 + 64 <= 128, and 64 + 64 + 128 < 400: three merge into one */
    r = pack_random(f->store, objs + n, 64, len, 50000);
    n += 64;
    assert_int_equal(n, ALL);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 3);
    assert_int_equal(list_packs(f->packdir, names, 4), 2);
    uint64_t counts[2] = {idx_count(f->packdir, names[0]), idx_count(f->packdir, names[1])};
    assert_true((counts[0] == 256 && counts[1] == 400) ||
                (counts[0] == 400 && counts[1] == 256));
    assert_index_format(f->packdir, names[0], counts[0]);
    assert_index_format(f->packdir, names[1], counts[1]);
    assert_fresh_reads(f->sdir, objs, n);
    /* the committing store reads them all too */
    for (int i = 0; i < n; i += 7)
        assert_object(f->store, &objs[i]);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_int_equal(count_loose(f->objects), 0);
    free(objs);
}

/* A much bigger pack followed by a small one: no merge, two packs. */
static void test_no_merge_big_then_small(void **state)
{
    struct fixture *f = *state;
    struct obj *objs = calloc(464, sizeof *objs);
    struct bbit_store_pack_result r = pack_random(f->store, objs, 400, 600, 1);
    assert_true(r.packed);
    assert_int_equal(r.objects, 400);
    assert_int_equal(r.merged, 0);
    r = pack_random(f->store, objs + 400, 64, 600, 1000);
    assert_true(r.packed);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 0);
    char names[3][65];
    assert_int_equal(list_packs(f->packdir, names, 3), 2);
    uint64_t counts[2] = {idx_count(f->packdir, names[0]), idx_count(f->packdir, names[1])};
    assert_int_equal(counts[0] + counts[1], 464);
    assert_true(counts[0] == 64 || counts[1] == 64);
    assert_fresh_reads(f->sdir, objs, 464);
    free(objs);
}

/* Two stores packing overlapping objects at the same time: the merge of
 * their packs keeps each object once. */
static void test_merge_dedups_overlapping_packs(void **state)
{
    struct fixture *f = *state;
    const size_t len = 900;
    struct obj x1[32], x2[32], x2_again[32], y[32], all[96];
    bbit_store *b = open_store(f->sdir, 0);
    begin(f);
    assert_int_equal(bbit_store_pack_begin(b, f->err, sizeof f->err), 0);
    put_random(f->store, x1, 32, len, 100);
    put_random(f->store, x2, 32, len, 200);
    put_random(b, x2_again, 32, len, 200); /* b cannot see a's pending objects */
    put_random(b, y, 32, len, 300);
    assert_int_equal(bbit_store_has(b, x1[0].id, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(f->store, y[0].id, f->err, sizeof f->err), 0);

    struct bbit_store_pack_result r = commit(f->store, false);
    assert_true(r.packed);
    assert_int_equal(r.objects, 64);
    assert_int_equal(r.merged, 0);
    r = commit(b, false);
    assert_true(r.packed);
    assert_int_equal(r.merged, 2); /* two packs of the same size */
    bbit_store_close(b);

    char names[2][65], pack[PATH_MAX], idx[PATH_MAX];
    assert_int_equal(list_packs(f->packdir, names, 2), 1);
    assert_int_equal(idx_count(f->packdir, names[0]), 96);
    assert_index_format(f->packdir, names[0], 96); /* strictly sorted: no id twice */
    memcpy(all, x1, sizeof x1);
    memcpy(all + 32, x2, sizeof x2);
    memcpy(all + 64, y, sizeof y);
    pack_paths(f->packdir, names[0], pack, idx);
    bbit_store *fresh = open_store(f->sdir, 0);
    assert_int_equal(file_size(pack), 8 + stored_bytes(fresh, all, 96));
    bbit_store_close(fresh);
    assert_fresh_reads(f->sdir, all, 96);
}

/* While another holder has objects/pack/merge.lock, a commit leaves the
 * packs alone; the next commit after it is released merges them. */
static void test_merge_skipped_while_locked(void **state)
{
    struct fixture *f = *state;
    const size_t len = 700;
    struct obj objs[192];
    assert_int_equal(pack_random(f->store, objs, 64, len, 1).merged, 0);
    char lock_path[PATH_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/merge.lock", f->packdir);
    int lock = open(lock_path, O_RDWR | O_CREAT, 0644);
    assert_true(lock >= 0);
    assert_int_equal(flock(lock, LOCK_EX | LOCK_NB), 0);
    struct bbit_store_pack_result r = pack_random(f->store, objs + 64, 64, len, 100);
    assert_true(r.packed);
    assert_int_equal(r.merged, 0); /* would have merged, but another merge "runs" */
    assert_int_equal(list_packs(f->packdir, NULL, 0), 2);
    assert_fresh_reads(f->sdir, objs, 128);
    close(lock);
    r = pack_random(f->store, objs + 128, 64, len, 200);
    assert_int_equal(r.merged, 3);
    char names[1][65];
    assert_int_equal(list_packs(f->packdir, names, 1), 1);
    assert_int_equal(idx_count(f->packdir, names[0]), 192);
    assert_true(exists(lock_path)); /* left in place, harmlessly */
    assert_fresh_reads(f->sdir, objs, 192);
}

/* A store that loaded packs keeps reading them after another store's merge
 * removed their files (its fds and mappings keep the old files alive). */
static void test_reader_survives_merge(void **state)
{
    struct fixture *f = *state;
    enum { ALL = 128 + 64 + 64 };
    const size_t len = 800;
    struct obj objs[ALL];
    char before[2][65], after[3][65], pack[PATH_MAX], idx[PATH_MAX];
    /* 128 then 64: no merge, two packs */
    assert_int_equal(pack_random(f->store, objs, 128, len, 100).merged, 0);
    assert_int_equal(pack_random(f->store, objs + 128, 64, len, 300).merged, 0);
    assert_int_equal(list_packs(f->packdir, before, 2), 2);

    bbit_store *a = open_store(f->sdir, 0);
    for (int i = 0; i < 192; i++)
        assert_object(a, &objs[i]);

    /* through store b: 64 more of the same frame size merge all three */
    bbit_store *b = open_store(f->sdir, 0);
    struct bbit_store_pack_result r = pack_random(b, objs + 192, 64, len, 500);
    assert_true(r.packed);
    assert_int_equal(r.merged, 3);
    bbit_store_close(b);
    assert_int_equal(list_packs(f->packdir, after, 3), 1);
    for (int k = 0; k < 2; k++) {
        pack_paths(f->packdir, before[k], pack, idx);
        assert_false(exists(pack));
        assert_false(exists(idx));
    }
    assert_int_equal(idx_count(f->packdir, after[0]), ALL);

    /* store a still reads every object it could read, from the removed files */
    for (int i = 0; i < 192; i++)
        assert_object(a, &objs[i]);
    uint64_t offset, size;
    int fd = bbit_store_open_raw(a, objs[150].id, &offset, &size, f->err, sizeof f->err);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_nlink, 0); /* the file of a removed pack */
    close(fd);
    bbit_store_close(a);
    assert_fresh_reads(f->sdir, objs, ALL);
}

/* ------------------------------------------------------------------------ */
/* Durability */

/* A store opened with BBIT_STORE_FSYNC commits packs (and small loose
 * batches, and merges) the same way. */
static void test_fsync_store_packs(void **state)
{
    struct fixture *f = *state;
    enum { ALL = 70 + 70 + 5 };
    struct obj objs[ALL];
    struct bbit_store_pack_result r = pack_random(f->store, objs, 70, 1200, 7000);
    assert_true(r.packed);
    assert_int_equal(r.objects, 70);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 1);
    assert_int_equal(count_loose(f->objects), 0);
    /* an equal second pack: merged under fsync */
    begin(f);
    put_random(f->store, objs + 70, 70, 1200, 8000);
    r = commit(f->store, true);
    assert_true(r.packed);
    assert_int_equal(r.merged, 2);
    assert_int_equal(list_packs(f->packdir, NULL, 0), 1);
    /* a small batch goes loose */
    begin(f);
    put_random(f->store, objs + 140, 5, 1200, 9000);
    r = commit(f->store, true);
    assert_false(r.packed);
    assert_int_equal(r.objects, 5);
    assert_int_equal(count_loose(f->objects), 5);
    assert_int_equal(count_entries(f->tmp), 0);
    assert_fresh_reads(f->sdir, objs, ALL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pack_commit_installs_one_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_duplicates_not_repeated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_pack_goes_loose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_abort_drops_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drops_open_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_twice_and_commit_without_begin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writer_abort_in_pack_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_hash_mismatch_in_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_access_to_packed_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_index_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pack_magic_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_equal_packs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_merge_big_then_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_dedups_overlapping_packs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_skipped_while_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_survives_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_store_packs, setup_fsync, teardown),
    };
    return cmocka_run_group_tests_name("store_pack", tests, NULL, NULL);
}
