/* Unit tests of deterministic tar building (runtime/core/tarball.c): an
 * archive rebuilt from store objects (natively, or with libarchive for a
 * name only it writes) is byte-identical to one libarchive writes to a file
 * the way archive.create does, and a recipe that does not match its objects
 * stores nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbit/store.h"
#include "bbit/tarball.h"

struct fixture {
    char dir[1024];
    bbit_store *store;
    char err[BBIT_STORE_ERR_SIZE];
    char a[BBIT_STORE_ID_LEN + 1], b[BBIT_STORE_ID_LEN + 1];
};

static const char A[] = "console.log('a');\n";
static const char B[] = "#!/bin/sh\necho b\n";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *base = getenv("BBIT_TEST_TMP");
    base = base && *base ? base : "/tmp";
    mkdir(base, 0755);
    snprintf(f->dir, sizeof f->dir, "%s/c-tarball.XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    char storedir[1100];
    snprintf(storedir, sizeof storedir, "%s/store", f->dir);
    f->store = bbit_store_open(storedir, BBIT_STORE_CREATE, f->err, sizeof f->err);
    assert_non_null(f->store);
    assert_int_equal(bbit_store_put(f->store, A, strlen(A), f->a, f->err, sizeof f->err), 0);
    assert_int_equal(bbit_store_put(f->store, B, strlen(B), f->b, f->err, sizeof f->err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bbit_store_close(f->store);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The long name of a member: only libarchive writes it (split into the ustar prefix, or a pax record). */
static const char LONG_NAME[] =
    "package/a-folder-name-long-enough/to-need-a-pax-record-for-the-path/because-a-ustar-name-holds-100-bytes.js";

/* The archive of A and B named names[0..1], written to a file by libarchive
 * as runtime/lua/archive.c writes it; its id. */
static void write_reference(struct fixture *f, const char *format, const char *names[2],
                            char id[BBIT_STORE_ID_LEN + 1])
{
    char path[1100];
    snprintf(path, sizeof path, "%s/ref.tar", f->dir);
    struct archive *a = archive_write_new();
    assert_int_equal(bbit_tar_configure(a, format), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    const char *data[] = {A, B};
    int perms[] = {0644, 0755};
    for (int i = 0; i < 2; i++) {
        struct archive_entry *e = bbit_tar_entry(names[i], AE_IFREG, perms[i], (int64_t)strlen(data[i]));
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        archive_entry_free(e);
        assert_int_equal(archive_write_data(a, data[i], strlen(data[i])), (la_ssize_t)strlen(data[i]));
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    uint64_t size;
    assert_int_equal(bbit_store_put_file(f->store, path, id, &size, f->err, sizeof f->err), 0);
}

static void test_rebuild_is_byte_identical(void **state)
{
    struct fixture *f = *state;
    assert_true(strlen(LONG_NAME) > 100);
    const char *formats[] = {"tar.gz", "tar.zst", "tar"};
    const char *short_names[] = {"package/a.js", "package/b.sh"};
    const char *long_names[] = {"package/a.js", LONG_NAME}; /* the second member falls back */
    const char **sets[] = {short_names, long_names};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 3; i++) {
            char ref[BBIT_STORE_ID_LEN + 1], built[BBIT_STORE_ID_LEN + 1];
            write_reference(f, formats[i], sets[s], ref);
            struct bbit_tar_member m[] = {{sets[s][0], 0644, f->a, strlen(A)},
                                          {sets[s][1], 0755, f->b, strlen(B)}};
            if (bbit_tar_build(f->store, formats[i], m, 2, ref, 0, built, f->err, sizeof f->err))
                fail_msg("%s, %s: %s", formats[i], sets[s][1], f->err);
            assert_string_equal(built, ref);
        }
}

static void test_mismatch_stores_nothing(void **state)
{
    struct fixture *f = *state;
    char ref[BBIT_STORE_ID_LEN + 1], expected[BBIT_STORE_ID_LEN + 1];
    const char *names[] = {"package/a.js", "package/b.sh"};
    write_reference(f, "tar.gz", names, ref);
    memset(expected, 'a', BBIT_STORE_ID_LEN);
    expected[BBIT_STORE_ID_LEN] = '\0';
    /* b.sh as 0644: another archive */
    struct bbit_tar_member m[] = {{"package/a.js", 0644, f->a, strlen(A)},
                                  {"package/b.sh", 0644, f->b, strlen(B)}};
    assert_int_equal(bbit_tar_build(f->store, "tar.gz", m, 2, expected, 0, NULL, f->err,
                                    sizeof f->err), -1);
    assert_non_null(strstr(f->err, "hash mismatch"));
    assert_int_equal(bbit_store_has(f->store, expected, f->err, sizeof f->err), 0);
}

static void test_bad_members_fail(void **state)
{
    struct fixture *f = *state;
    char missing[BBIT_STORE_ID_LEN + 1];
    memset(missing, 'b', BBIT_STORE_ID_LEN);
    missing[BBIT_STORE_ID_LEN] = '\0';
    struct bbit_tar_member small = {"package/a.js", 0644, f->a, strlen(A) + 1};
    assert_int_equal(bbit_tar_build(f->store, "tar", &small, 1, NULL, 0, NULL, f->err,
                                    sizeof f->err), -1);
    assert_non_null(strstr(f->err, "smaller than the recipe says"));
    struct bbit_tar_member big = {"package/a.js", 0644, f->a, strlen(A) - 1};
    assert_int_equal(bbit_tar_build(f->store, "tar", &big, 1, NULL, 0, NULL, f->err,
                                    sizeof f->err), -1);
    assert_non_null(strstr(f->err, "package/a.js"));
    struct bbit_tar_member gone = {"package/c.js", 0644, missing, 3};
    assert_int_equal(bbit_tar_build(f->store, "tar", &gone, 1, NULL, 0, NULL, f->err,
                                    sizeof f->err), -1);
    assert_non_null(strstr(f->err, "package/c.js"));
    struct bbit_tar_member perm = {"package/a.js", 0600, f->a, strlen(A)};
    assert_int_equal(bbit_tar_build(f->store, "tar", &perm, 1, NULL, 0, NULL, f->err,
                                    sizeof f->err), -1);
    assert_non_null(strstr(f->err, "mode must be 644 or 755"));
    assert_int_equal(bbit_tar_build(f->store, "zip", &perm, 1, NULL, 0, NULL, f->err,
                                    sizeof f->err), -1);
    assert_non_null(strstr(f->err, "unknown archive format"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rebuild_is_byte_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mismatch_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_members_fail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
