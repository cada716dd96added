/* Unit tests of the object store (runtime/core/store.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "bbit/store.h"
#include "store_test_util.h"

/* ------------------------------------------------------------------------ */
/* Helpers */

struct fixture {
    char dir[1024]; /* short enough that every path built from it fits PATH_MAX */
    char tmp[PATH_MAX]; /* <dir>/objects/tmp */
    bbit_store *store;
    char err[BBIT_STORE_ERR_SIZE];
};

static void make_tmpdir(char *out, size_t outlen)
{
    const char *base = getenv("BBIT_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(out, outlen, "%s/c-store.XXXXXX", base);
    assert_non_null(mkdtemp(out));
}

static void remove_tree(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    make_tmpdir(f->dir, sizeof f->dir);
    char storedir[1100];
    snprintf(storedir, sizeof storedir, "%s/store", f->dir);
    f->store = bbit_store_open(storedir, BBIT_STORE_CREATE, f->err, sizeof f->err);
    if (f->store == NULL)
        fail_msg("open: %s", f->err);
    snprintf(f->tmp, sizeof f->tmp, "%s/objects/tmp", storedir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bbit_store_close(f->store);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* Compressible text-like bytes. */
static unsigned char *text_bytes(size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)("component versions and exports\n"[i % 31] + (i / 4096) % 3);
    return p;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return p;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void object_path(struct fixture *f, const char *id, char *out)
{
    assert_int_equal(bbit_store_object_path(f->store, id, out, PATH_MAX, f->err, sizeof f->err),
                     0);
}

/* Puts data, checks its id is the sha256, reads it back in memory and into a file. */
static void round_trip(struct fixture *f, const unsigned char *data, size_t len)
{
    char id[65], expected[65], path[PATH_MAX], dest[PATH_MAX];
    sha256_hex(data, len, expected);
    assert_int_equal(bbit_store_put(f->store, data, len, id, f->err, sizeof f->err), 0);
    assert_string_equal(id, expected);
    assert_int_equal(bbit_store_has(f->store, id, f->err, sizeof f->err), 1);

    object_path(f, id, path);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/store/objects/%.2s/%s", f->dir, id, id + 2);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);

    void *got;
    size_t got_len;
    assert_int_equal(bbit_store_get(f->store, id, 0, &got, &got_len, f->err, sizeof f->err), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len ? len : 0);
    assert_int_equal(((char *)got)[got_len], '\0');
    free(got);

    snprintf(dest, sizeof dest, "%s/out.bin", f->dir);
    assert_int_equal(bbit_store_get_file(f->store, id, dest, 0640, f->err, sizeof f->err), 0);
    size_t file_len;
    unsigned char *file = read_whole(dest, &file_len);
    assert_int_equal(file_len, len);
    if (len)
        assert_memory_equal(file, data, len);
    free(file);
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    unlink(dest);

    uint64_t size = 99;
    assert_int_equal(bbit_store_verify(f->store, id, &size, f->err, sizeof f->err), 0);
    assert_int_equal(size, len);
    assert_int_equal(count_entries(f->tmp), 0);
}

/* ------------------------------------------------------------------------ */
/* Round trips */

static void test_round_trip_empty(void **state)
{
    struct fixture *f = *state;
    round_trip(f, (const unsigned char *)"", 0);
    char id[65];
    assert_int_equal(bbit_store_put(f->store, "", 0, id, f->err, sizeof f->err), 0);
    assert_string_equal(id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_round_trip_small(void **state)
{
    struct fixture *f = *state;
    round_trip(f, (const unsigned char *)"hello\n", 6);
    char id[65];
    assert_int_equal(bbit_store_put(f->store, "hello\n", 6, id, f->err, sizeof f->err), 0);
    /* sha256sum of a file holding "hello\n" */
    assert_string_equal(id, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
}

static void test_round_trip_multi_mb(void **state)
{
    struct fixture *f = *state;
    size_t len = 6 * 1024 * 1024 + 12345;
    unsigned char *data = text_bytes(len);
    unsigned char *noise = random_bytes(2 * 1024 * 1024, 7);
    memcpy(data + 1024 * 1024, noise, 2 * 1024 * 1024); /* mixed: text, noise, text */
    free(noise);
    round_trip(f, data, len);

    /* the same bytes through put_file and through a writer fed odd-sized chunks */
    char expected[65], id[65], src[PATH_MAX];
    sha256_hex(data, len, expected);
    snprintf(src, sizeof src, "%s/src.bin", f->dir);
    write_whole(src, data, len);
    uint64_t size = 0;
    assert_int_equal(bbit_store_put_file(f->store, src, id, &size, f->err, sizeof f->err), 0);
    assert_string_equal(id, expected);
    assert_int_equal(size, len);

    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, expected, 0, f->err, sizeof f->err);
    assert_non_null(w);
    for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 + 1) {
        size_t n = off + step > len ? len - off : step;
        assert_int_equal(bbit_store_writer_write(w, data + off, n, f->err, sizeof f->err), 0);
    }
    assert_int_equal(bbit_store_writer_size(w), len);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), 0);
    assert_string_equal(id, expected);
    assert_int_equal(count_entries(f->tmp), 0);

    /* stored compressed */
    uint64_t on_disk = 0;
    assert_int_equal(bbit_store_size_on_disk(f->store, id, &on_disk, f->err, sizeof f->err), 0);
    assert_true(on_disk < len);
    assert_true(on_disk > 2 * 1024 * 1024);
    free(data);
}

static void test_put_twice_is_idempotent(void **state)
{
    struct fixture *f = *state;
    char id1[65], id2[65], path[PATH_MAX];
    assert_int_equal(bbit_store_put(f->store, "same bytes", 10, id1, f->err, sizeof f->err), 0);
    object_path(f, id1, path);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(bbit_store_put(f->store, "same bytes", 10, id2, f->err, sizeof f->err), 0);
    assert_string_equal(id1, id2);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* not rewritten */
    assert_int_equal(count_entries(f->tmp), 0);
    char fanout[PATH_MAX];
    snprintf(fanout, sizeof fanout, "%s/store/objects/%.2s", f->dir, id1);
    assert_int_equal(count_entries(fanout), 1);
}

/* ------------------------------------------------------------------------ */
/* Mode B (already-compressed input) and expected ids */

static unsigned char *compress_level(const void *data, size_t len, int level, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    unsigned char *out = malloc(cap);
    size_t n = ZSTD_compress(out, cap, data, len, level);
    assert_false(ZSTD_isError(n));
    *out_len = n;
    return out;
}

static void test_mode_b_stores_identical_bytes(void **state)
{
    struct fixture *f = *state;
    size_t len = 700 * 1000, clen;
    unsigned char *data = text_bytes(len);
    /* level 19 gives other bytes than the store's own level 3 */
    unsigned char *frame = compress_level(data, len, 19, &clen);
    char expected[65], id[65], src[PATH_MAX], path[PATH_MAX];
    sha256_hex(data, len, expected);
    snprintf(src, sizeof src, "%s/object.zst", f->dir);
    write_whole(src, frame, clen);

    assert_int_equal(
        bbit_store_put_raw_file(f->store, src, expected, 0, id, f->err, sizeof f->err), 0);
    assert_string_equal(id, expected);
    object_path(f, id, path);
    size_t stored_len;
    unsigned char *stored = read_whole(path, &stored_len);
    assert_int_equal(stored_len, clen);
    assert_memory_equal(stored, frame, clen);
    free(stored);

    void *got;
    size_t got_len;
    assert_int_equal(bbit_store_get(f->store, id, 0, &got, &got_len, f->err, sizeof f->err), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
    free(data);
    free(frame);
}

static void test_mode_b_writer_in_chunks(void **state)
{
    struct fixture *f = *state;
    size_t len = 300 * 1000, clen;
    unsigned char *data = random_bytes(len, 3);
    unsigned char *frame = compress_level(data, len, 1, &clen);
    char expected[65], id[65], path[PATH_MAX];
    sha256_hex(data, len, expected);

    /* no expected id: the id comes from the content */
    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err, sizeof f->err);
    assert_non_null(w);
    for (size_t off = 0, step = 1; off < clen; off += step, step = step * 2 + 3) {
        size_t n = off + step > clen ? clen - off : step;
        assert_int_equal(bbit_store_writer_write(w, frame + off, n, f->err, sizeof f->err), 0);
    }
    assert_int_equal(bbit_store_writer_size(w), len);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), 0);
    assert_string_equal(id, expected);
    object_path(f, id, path);
    size_t stored_len;
    unsigned char *stored = read_whole(path, &stored_len);
    assert_int_equal(stored_len, clen);
    assert_memory_equal(stored, frame, clen);
    free(stored);

    /* open_raw hands out exactly those bytes */
    uint64_t offset = 1, size = 0;
    int fd = bbit_store_open_raw(f->store, id, &offset, &size, f->err, sizeof f->err);
    assert_true(fd >= 0);
    assert_int_equal(offset, 0);
    assert_int_equal(size, clen);
    unsigned char *raw = malloc(clen);
    assert_int_equal(pread(fd, raw, clen, (off_t)offset), (ssize_t)clen);
    assert_memory_equal(raw, frame, clen);
    close(fd);
    free(raw);
    free(data);
    free(frame);
}

static void test_expected_id_mismatch_stores_nothing(void **state)
{
    struct fixture *f = *state;
    char wrong[65], actual[65], id[65], msg[400], src[PATH_MAX];
    sha256_hex("other", 5, wrong);
    sha256_hex("payload", 7, actual);
    snprintf(msg, sizeof msg,
             "object store: hash mismatch: received bytes hash to %s, expected %s", actual,
             wrong);

    /* mode A */
    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, wrong, 0, f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, "payload", 7, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, msg);
    assert_int_equal(bbit_store_has(f->store, actual, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_has(f->store, wrong, f->err, sizeof f->err), 0);
    assert_int_equal(count_entries(f->tmp), 0);

    /* mode B, through put_raw_file: the message names the file */
    size_t clen;
    unsigned char *frame = compress_level("payload", 7, 3, &clen);
    snprintf(src, sizeof src, "%s/payload.zst", f->dir);
    write_whole(src, frame, clen);
    free(frame);
    assert_int_equal(
        bbit_store_put_raw_file(f->store, src, wrong, 0, id, f->err, sizeof f->err), -1);
    char want[PATH_MAX + 400];
    snprintf(want, sizeof want, "object store: %s: hash mismatch: received bytes hash to %s, "
             "expected %s", src, actual, wrong);
    assert_string_equal(f->err, want);
    assert_int_equal(bbit_store_has(f->store, actual, f->err, sizeof f->err), 0);
    assert_int_equal(count_entries(f->tmp), 0);
    char objects[PATH_MAX];
    snprintf(objects, sizeof objects, "%s/store/objects", f->dir);
    assert_int_equal(count_entries(objects), 1); /* only tmp/ */
}

static void test_decompression_bomb_refused(void **state)
{
    struct fixture *f = *state;
    size_t len = 64 * 1024 * 1024, clen;
    unsigned char *zeros = calloc(1, len);
    unsigned char *frame = compress_level(zeros, len, 3, &clen);
    free(zeros);
    assert_true(clen < 64 * 1024); /* a small upload... */

    bbit_store_writer *w = bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL,
                                                   1024 * 1024, f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, frame, clen, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "object store: object exceeds the size limit of 1048576 bytes");
    assert_true(bbit_store_writer_size(w) <= 1024 * 1024 + ZSTD_DStreamOutSize());
    /* a failed writer refuses to go on */
    assert_int_equal(bbit_store_writer_write(w, "", 1, f->err, sizeof f->err), -1);
    assert_contains(f->err, "abort the writer");
    char id[65];
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), -1);
    assert_contains(f->err, "commit after a failed write");
    assert_int_equal(count_entries(f->tmp), 0);

    /* the same through put_raw_file */
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/bomb.zst", f->dir);
    write_whole(src, frame, clen);
    assert_int_equal(
        bbit_store_put_raw_file(f->store, src, NULL, 1024 * 1024, id, f->err, sizeof f->err),
        -1);
    assert_contains(f->err, "bomb.zst: object exceeds the size limit of 1048576 bytes");
    assert_int_equal(count_entries(f->tmp), 0);

    /* mode A honours the limit too */
    w = bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 4, f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(bbit_store_writer_write(w, "1234", 4, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_write(w, "5", 1, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "object store: object exceeds the size limit of 4 bytes");
    bbit_store_writer_abort(w);
    assert_int_equal(count_entries(f->tmp), 0);
    free(frame);
}

static void test_mode_b_bad_frames(void **state)
{
    struct fixture *f = *state;
    size_t clen;
    unsigned char *data = text_bytes(200000);
    unsigned char *frame = compress_level(data, 200000, 3, &clen);
    char id[65];

    /* truncated: the frame never ends */
    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err, sizeof f->err);
    assert_int_equal(bbit_store_writer_write(w, frame, clen - 1, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "object store: truncated zstd frame");

    /* empty input */
    w = bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err, sizeof f->err);
    assert_int_equal(bbit_store_writer_commit(w, id, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "object store: truncated zstd frame");

    /* trailing bytes, in the same chunk and in a later one */
    unsigned char *longer = malloc(clen + 1);
    memcpy(longer, frame, clen);
    longer[clen] = 'x';
    w = bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err, sizeof f->err);
    assert_int_equal(bbit_store_writer_write(w, longer, clen + 1, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "object store: invalid zstd frame (trailing data after the frame)");
    bbit_store_writer_abort(w);
    w = bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err, sizeof f->err);
    assert_int_equal(bbit_store_writer_write(w, frame, clen, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_writer_write(w, "x", 1, f->err, sizeof f->err), -1);
    assert_contains(f->err, "trailing data after the frame");
    bbit_store_writer_abort(w);

    /* not zstd at all */
    w = bbit_store_writer_begin(f->store, BBIT_STORE_COMPRESSED, NULL, 0, f->err, sizeof f->err);
    assert_int_equal(bbit_store_writer_write(w, "plain text", 10, f->err, sizeof f->err), -1);
    assert_contains(f->err, "object store: invalid zstd frame (zstd: ");
    bbit_store_writer_abort(w);
    bbit_store_writer_abort(NULL);

    assert_int_equal(count_entries(f->tmp), 0);
    free(longer);
    free(frame);
    free(data);
}

/* ------------------------------------------------------------------------ */
/* Corruption */

static void modify_object(const char *path, long offset, unsigned char xor_with, off_t truncate_to)
{
    chmod(path, 0644); /* objects are read-only */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (truncate_to >= 0) {
        assert_int_equal(ftruncate(fd, truncate_to), 0);
    } else {
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, offset), 1);
        c ^= xor_with;
        assert_int_equal(pwrite(fd, &c, 1, offset), 1);
    }
    close(fd);
}

static void assert_read_fails(struct fixture *f, const char *id, const char *want)
{
    void *got = (void *)1;
    size_t len = 5;
    char dest[PATH_MAX];
    assert_int_equal(bbit_store_get(f->store, id, 0, &got, &len, f->err, sizeof f->err), -1);
    assert_null(got);
    assert_int_equal(len, 0);
    assert_contains(f->err, want);
    assert_int_equal(bbit_store_verify(f->store, id, NULL, f->err, sizeof f->err), -1);
    assert_contains(f->err, want);
    /* get_file leaves neither the destination nor a temp file */
    snprintf(dest, sizeof dest, "%s/checkout", f->dir);
    mkdir(dest, 0755);
    snprintf(dest, sizeof dest, "%s/checkout/file.txt", f->dir);
    assert_int_equal(bbit_store_get_file(f->store, id, dest, 0644, f->err, sizeof f->err), -1);
    assert_contains(f->err, want);
    assert_false(exists(dest));
    snprintf(dest, sizeof dest, "%s/checkout", f->dir);
    assert_int_equal(count_entries(dest), 0);
}

static void test_flipped_byte_reports_hash(void **state)
{
    struct fixture *f = *state;
    size_t len = 100 * 1000;
    unsigned char *data = random_bytes(len, 11); /* incompressible: stored as a raw block */
    char id[65], path[PATH_MAX], want[PATH_MAX + 300], actual[65];
    assert_int_equal(bbit_store_put(f->store, data, len, id, f->err, sizeof f->err), 0);
    object_path(f, id, path);
    size_t disk_len;
    unsigned char *disk = read_whole(path, &disk_len);
    free(disk);
    long offset = (long)disk_len - 1000;
    modify_object(path, offset, 0x01, -1);
    /* the content now differs in one byte: its hash is predictable */
    data[len - (disk_len - (size_t)offset)] ^= 0x01;
    sha256_hex(data, len, actual);
    snprintf(want, sizeof want,
             "object store: %s: corrupt object (content hash is %s, expected %s)", path, actual,
             id);
    void *got = NULL;
    size_t got_len = 0;
    assert_int_equal(bbit_store_get(f->store, id, 0, &got, &got_len, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
    assert_read_fails(f, id, want);
    free(data);
}

static void test_flipped_byte_in_compressed_data(void **state)
{
    struct fixture *f = *state;
    size_t len = 500 * 1000;
    unsigned char *data = text_bytes(len);
    char id[65], path[PATH_MAX], want[PATH_MAX + 40];
    assert_int_equal(bbit_store_put(f->store, data, len, id, f->err, sizeof f->err), 0);
    object_path(f, id, path);
    modify_object(path, 40, 0xff, -1);
    snprintf(want, sizeof want, "object store: %s: corrupt object (", path);
    assert_read_fails(f, id, want);
    free(data);
}

static void test_truncated_object(void **state)
{
    struct fixture *f = *state;
    size_t len = 300 * 1000;
    unsigned char *data = random_bytes(len, 5);
    char id[65], path[PATH_MAX], want[PATH_MAX + 40];
    assert_int_equal(bbit_store_put(f->store, data, len, id, f->err, sizeof f->err), 0);
    object_path(f, id, path);
    snprintf(want, sizeof want, "object store: %s: truncated zstd frame", path);
    modify_object(path, 0, 0, 150 * 1000);
    assert_read_fails(f, id, want);
    void *got;
    size_t got_len;
    assert_int_equal(bbit_store_get(f->store, id, 0, &got, &got_len, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
    modify_object(path, 0, 0, 0); /* an empty file, as after a power loss */
    assert_read_fails(f, id, want);
    free(data);
}

static void test_trailing_garbage_in_object(void **state)
{
    struct fixture *f = *state;
    char id[65], path[PATH_MAX];
    assert_int_equal(bbit_store_put(f->store, "abc", 3, id, f->err, sizeof f->err), 0);
    object_path(f, id, path);
    chmod(path, 0644);
    FILE *fp = fopen(path, "ab");
    fputs("junk", fp);
    fclose(fp);
    assert_read_fails(f, id, "corrupt object (trailing data after the zstd frame)");
}

/* An object replaced by a valid frame of other content (e.g. a swapped file). */
static void test_swapped_object_content(void **state)
{
    struct fixture *f = *state;
    char id[65], path[PATH_MAX], want[PATH_MAX + 300], other[65];
    assert_int_equal(bbit_store_put(f->store, "right", 5, id, f->err, sizeof f->err), 0);
    object_path(f, id, path);
    size_t clen;
    unsigned char *frame = compress_level("wrong", 5, 3, &clen);
    chmod(path, 0644);
    write_whole(path, frame, clen);
    free(frame);
    sha256_hex("wrong", 5, other);
    snprintf(want, sizeof want,
             "object store: %s: corrupt object (content hash is %s, expected %s)", path, other,
             id);
    assert_read_fails(f, id, want);
}

/* ------------------------------------------------------------------------ */
/* Ids, missing objects, limits, files */

static void test_invalid_ids_refused(void **state)
{
    struct fixture *f = *state;
    char good[65];
    sha256_hex("x", 1, good);
    char upper[65], longer[70], dots[65];
    strcpy(upper, good);
    upper[0] = 'A';
    upper[1] = 'B';
    snprintf(longer, sizeof longer, "%s0", good);
    memset(dots, 'a', 64);
    memcpy(dots, "../", 3);
    dots[64] = '\0';
    const char *bad[] = {"../x", upper, "abc123", longer, dots, "", NULL};
    char path[PATH_MAX], dest[PATH_MAX], id[65], src[PATH_MAX];
    snprintf(dest, sizeof dest, "%s/dest", f->dir);
    snprintf(src, sizeof src, "%s/src", f->dir);
    write_whole(src, "x", 1);
    assert_true(bbit_store_is_id(good));
    for (int i = 0; i < 7; i++) {
        const char *b = bad[i];
        assert_false(bbit_store_is_id(b));
        assert_int_equal(bbit_store_check_id(b, f->err, sizeof f->err), -1);
        assert_contains(f->err, "object store: invalid object id \"");
        assert_contains(f->err, "(expected 64 lowercase hex digits)");
        assert_int_equal(bbit_store_has(f->store, b, f->err, sizeof f->err), -1);
        assert_contains(f->err, "invalid object id");
        assert_int_equal(bbit_store_object_path(f->store, b, path, sizeof path, f->err,
                                                sizeof f->err), -1);
        void *data = NULL;
        size_t len = 0;
        assert_int_equal(bbit_store_get(f->store, b, 0, &data, &len, f->err, sizeof f->err), -1);
        assert_contains(f->err, "invalid object id");
        assert_int_equal(bbit_store_get_file(f->store, b, dest, 0644, f->err, sizeof f->err), -1);
        assert_false(exists(dest));
        assert_int_equal(bbit_store_verify(f->store, b, NULL, f->err, sizeof f->err), -1);
        uint64_t size;
        assert_int_equal(bbit_store_size_on_disk(f->store, b, &size, f->err, sizeof f->err), -1);
        assert_int_equal(bbit_store_open_raw(f->store, b, &size, &size, f->err, sizeof f->err), -1);
        if (b == NULL)
            continue;
        assert_null(
            bbit_store_writer_begin(f->store, BBIT_STORE_RAW, b, 0, f->err, sizeof f->err));
        assert_contains(f->err, "invalid object id");
        assert_int_equal(
            bbit_store_put_raw_file(f->store, src, b, 0, id, f->err, sizeof f->err), -1);
        assert_contains(f->err, "invalid object id");
    }
    bbit_store_check_id("../x", f->err, sizeof f->err);
    assert_string_equal(f->err,
                        "object store: invalid object id \"../x\" (expected 64 lowercase hex "
                        "digits)");
    assert_int_equal(count_entries(f->tmp), 0);
}

static void test_missing_object(void **state)
{
    struct fixture *f = *state;
    char id[65], want[PATH_MAX + 100], dest[PATH_MAX];
    sha256_hex("never stored", 12, id);
    snprintf(want, sizeof want, "object store: %s/store: no object %s", f->dir, id);
    assert_int_equal(bbit_store_has(f->store, id, f->err, sizeof f->err), 0);
    void *data;
    size_t len;
    assert_int_equal(bbit_store_get(f->store, id, 0, &data, &len, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
    snprintf(dest, sizeof dest, "%s/dest", f->dir);
    assert_int_equal(bbit_store_get_file(f->store, id, dest, 0644, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
    assert_false(exists(dest));
    assert_int_equal(count_entries(f->dir), 1); /* no temp file beside dest */
    uint64_t size;
    assert_int_equal(bbit_store_size_on_disk(f->store, id, &size, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
    assert_int_equal(bbit_store_open_raw(f->store, id, &size, &size, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, want);
}

static void test_get_max_size(void **state)
{
    struct fixture *f = *state;
    unsigned char *data = text_bytes(1000);
    char id[65];
    assert_int_equal(bbit_store_put(f->store, data, 1000, id, f->err, sizeof f->err), 0);
    void *got = NULL;
    size_t len;
    assert_int_equal(bbit_store_get(f->store, id, 999, &got, &len, f->err, sizeof f->err), -1);
    assert_null(got);
    assert_contains(f->err, ": object is larger than the limit of 999 bytes");
    assert_int_equal(bbit_store_get(f->store, id, 1000, &got, &len, f->err, sizeof f->err), 0);
    assert_int_equal(len, 1000);
    free(got);
    free(data);
}

static void test_get_file_replaces_atomically(void **state)
{
    struct fixture *f = *state;
    char id[65], bad[65], dest[PATH_MAX], path[PATH_MAX];
    assert_int_equal(bbit_store_put(f->store, "#!/bin/sh\n", 10, id, f->err, sizeof f->err), 0);
    snprintf(dest, sizeof dest, "%s/run.sh", f->dir);
    write_whole(dest, "old content", 11);
    assert_int_equal(bbit_store_get_file(f->store, id, dest, 0755, f->err, sizeof f->err), 0);
    size_t len;
    unsigned char *got = read_whole(dest, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(got, "#!/bin/sh\n", 10);
    free(got);
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);

    /* a corrupt object leaves the old destination as it was */
    assert_int_equal(bbit_store_put(f->store, "will rot", 8, bad, f->err, sizeof f->err), 0);
    object_path(f, bad, path);
    modify_object(path, 0, 0, 5);
    assert_int_equal(bbit_store_get_file(f->store, bad, dest, 0644, f->err, sizeof f->err), -1);
    assert_contains(f->err, "truncated zstd frame");
    got = read_whole(dest, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(got, "#!/bin/sh\n", 10);
    free(got);
    assert_int_equal(count_entries(f->dir), 2); /* store/ and run.sh */

    /* a destination directory that does not exist */
    snprintf(dest, sizeof dest, "%s/no/such/dir/file", f->dir);
    assert_int_equal(bbit_store_get_file(f->store, id, dest, 0644, f->err, sizeof f->err), -1);
    assert_contains(f->err, "/no/such/dir/file: cannot create a temp file: No such file");
}

/* put_file of content the store has: the same id, and the object file is
 * not written again (same inode); a new file is stored and readable. */
static void test_put_file_existing_is_not_rewritten(void **state)
{
    struct fixture *f = *state;
    char path[1200], id1[BBIT_STORE_ID_LEN + 1], id2[BBIT_STORE_ID_LEN + 1], obj[PATH_MAX];
    snprintf(path, sizeof path, "%s/file.txt", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("hello store\n", fp);
    fclose(fp);
    uint64_t size = 0;
    assert_int_equal(bbit_store_put_file(f->store, path, id1, &size, f->err, sizeof f->err), 0);
    assert_int_equal(size, 12);
    char expect[65];
    sha256_hex("hello store\n", 12, expect);
    assert_string_equal(id1, expect);
    assert_int_equal(bbit_store_object_path(f->store, id1, obj, sizeof obj, f->err, sizeof f->err), 0);
    struct stat before, after;
    assert_int_equal(stat(obj, &before), 0);
    assert_int_equal(bbit_store_put_file(f->store, path, id2, &size, f->err, sizeof f->err), 0);
    assert_string_equal(id2, id1);
    assert_int_equal(size, 12);
    assert_int_equal(stat(obj, &after), 0);
    assert_true(before.st_ino == after.st_ino && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
    assert_int_equal(count_entries(f->tmp), 0);
}

static void test_put_file_errors(void **state)
{
    struct fixture *f = *state;
    char id[65], path[PATH_MAX], want[PATH_MAX + 100];
    snprintf(path, sizeof path, "%s/missing.txt", f->dir);
    assert_int_equal(bbit_store_put_file(f->store, path, id, NULL, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "object store: %s: No such file or directory", path);
    assert_string_equal(f->err, want);
    assert_int_equal(bbit_store_put_file(f->store, f->dir, id, NULL, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "object store: %s: not a regular file", f->dir);
    assert_string_equal(f->err, want);
    assert_int_equal(
        bbit_store_put_raw_file(f->store, path, NULL, 0, id, f->err, sizeof f->err), -1);
    assert_contains(f->err, "missing.txt: No such file or directory");
    /* a plain file is not a compressed object */
    snprintf(path, sizeof path, "%s/plain.txt", f->dir);
    write_whole(path, "not zstd", 8);
    assert_int_equal(
        bbit_store_put_raw_file(f->store, path, NULL, 0, id, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "object store: %s: invalid zstd frame (zstd: ", path);
    assert_contains(f->err, want);
    /* a file whose size differs from what stat said (here /proc: size 0, content) */
    assert_int_equal(
        bbit_store_put_file(f->store, "/proc/self/status", id, NULL, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "object store: /proc/self/status: file changed while it was read");
    /* an empty file is a valid blob */
    snprintf(path, sizeof path, "%s/empty.txt", f->dir);
    write_whole(path, "", 0);
    uint64_t size = 7;
    assert_int_equal(bbit_store_put_file(f->store, path, id, &size, f->err, sizeof f->err), 0);
    assert_string_equal(id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(size, 0);
    assert_int_equal(count_entries(f->tmp), 0);
}

static void test_open(void **state)
{
    struct fixture *f = *state;
    char dir[PATH_MAX], err[BBIT_STORE_ERR_SIZE], want[PATH_MAX + 100];
    /* without create, a directory without objects/ is refused */
    snprintf(dir, sizeof dir, "%s/nothing", f->dir);
    assert_null(bbit_store_open(dir, 0, err, sizeof err));
    snprintf(want, sizeof want, "object store: %s: not an object store (no objects/ directory)",
             dir);
    assert_string_equal(err, want);
    assert_false(exists(dir));
    /* with create, nested directories are made; trailing slashes are dropped */
    snprintf(dir, sizeof dir, "%s/a/b/c//", f->dir);
    bbit_store *s = bbit_store_open(dir, BBIT_STORE_CREATE | BBIT_STORE_FSYNC, err, sizeof err);
    assert_non_null(s);
    snprintf(want, sizeof want, "%s/a/b/c", f->dir);
    assert_string_equal(bbit_store_dir(s), want);
    snprintf(dir, sizeof dir, "%s/a/b/c/objects/tmp", f->dir);
    assert_true(exists(dir));
    char id[65];
    assert_int_equal(bbit_store_put(s, "durable", 7, id, err, sizeof err), 0); /* fsync path */
    bbit_store_close(s);
    /* reopened without create, the object is there */
    snprintf(dir, sizeof dir, "%s/a/b/c", f->dir);
    s = bbit_store_open(dir, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(bbit_store_has(s, id, err, sizeof err), 1);
    bbit_store_close(s);
    bbit_store_close(NULL);
    /* create below a regular file fails */
    snprintf(dir, sizeof dir, "%s/file", f->dir);
    write_whole(dir, "x", 1);
    snprintf(dir, sizeof dir, "%s/file/store", f->dir);
    assert_null(bbit_store_open(dir, BBIT_STORE_CREATE, err, sizeof err));
    assert_contains(err, "/file/store: mkdir: Not a directory");
    assert_null(bbit_store_open("", 0, err, sizeof err));
    assert_string_equal(err, "object store: empty store directory");
    /* a tiny error buffer is truncated, not overrun */
    char tiny[8];
    assert_null(bbit_store_open("", 0, tiny, sizeof tiny));
    assert_string_equal(tiny, "object ");
}

static void test_writer_abort_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    bbit_store_writer *w =
        bbit_store_writer_begin(f->store, BBIT_STORE_RAW, NULL, 0, f->err, sizeof f->err);
    assert_non_null(w);
    assert_int_equal(count_entries(f->tmp), 1);
    assert_int_equal(bbit_store_writer_write(w, "partial", 7, f->err, sizeof f->err), 0);
    bbit_store_writer_abort(w);
    assert_int_equal(count_entries(f->tmp), 0);
    char objects[PATH_MAX];
    snprintf(objects, sizeof objects, "%s/store/objects", f->dir);
    assert_int_equal(count_entries(objects), 1);
}

/* Several threads put the same and distinct objects into one store. */
struct thread_arg {
    bbit_store *store;
    int index;
    int failures;
};

static void *put_worker(void *p)
{
    struct thread_arg *a = p;
    char err[BBIT_STORE_ERR_SIZE], id[65], want[65], buf[64];
    unsigned char *shared = text_bytes(200000);
    for (int i = 0; i < 20; i++) {
        if (bbit_store_put(a->store, shared, 200000, id, err, sizeof err) != 0)
            a->failures++;
        int n = snprintf(buf, sizeof buf, "thread %d object %d", a->index, i);
        sha256_hex(buf, (size_t)n, want);
        if (bbit_store_put(a->store, buf, (size_t)n, id, err, sizeof err) != 0 ||
            strcmp(id, want) != 0)
            a->failures++;
        if (bbit_store_verify(a->store, id, NULL, err, sizeof err) != 0)
            a->failures++;
    }
    free(shared);
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    pthread_t threads[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){f->store, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, put_worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(count_entries(f->tmp), 0);
    unsigned char *shared = text_bytes(200000);
    round_trip(f, shared, 200000);
    free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_multi_mb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_twice_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_b_stores_identical_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_b_writer_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expected_id_mismatch_stores_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_decompression_bomb_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_b_bad_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_reports_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_compressed_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_garbage_in_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_object_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_ids_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_max_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_file_replaces_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_file_existing_is_not_rewritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
