/* Unit tests of runtime/core/sha256.c (FIPS 180-2 vectors, files, misuse).
 * ctest runs them twice: with the implementation this CPU selects (SHA-NI
 * where it has it) and with BBIT_SHA256=openssl. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bbit/sha256.h"

static const char *EMPTY_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *ABC_HEX = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *MILLION_A_HEX =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

static void hex_of_buffer(const char *data, size_t len, char hex[65])
{
    unsigned char d[BBIT_SHA256_LEN];
    assert_int_equal(bbit_sha256_buffer(data, len, d), 0);
    bbit_sha256_hex(d, hex);
}

/* Writes data to a fresh temp file; returns its path (free it). */
static char *temp_file(const char *data, size_t len)
{
    const char *base = getenv("BBIT_TEST_TMP");
    char *path = malloc(4096);
    assert_non_null(path);
    snprintf(path, 4096, "%s/sha256.XXXXXX", base && *base ? base : "/tmp");
    if (base && *base) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
        assert_int_equal(system(cmd), 0);
    }
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_known_vectors(void **state)
{
    (void)state;
    char hex[65];
    hex_of_buffer("", 0, hex);
    assert_string_equal(hex, EMPTY_HEX);
    hex_of_buffer("abc", 3, hex);
    assert_string_equal(hex, ABC_HEX);
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of_buffer(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_incremental_matches_one_shot(void **state)
{
    (void)state;
    bbit_sha256 *h = bbit_sha256_new();
    assert_non_null(h);
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 1000; i++) // a million 'a's, in 1000-byte updates
        assert_int_equal(bbit_sha256_update(h, chunk, sizeof chunk), 0);
    assert_int_equal(bbit_sha256_update(h, NULL, 0), 0); // empty update is fine
    unsigned char d[BBIT_SHA256_LEN];
    char hex[65];
    assert_int_equal(bbit_sha256_final(h, d), 0);
    bbit_sha256_hex(d, hex);
    assert_string_equal(hex, MILLION_A_HEX);
    bbit_sha256_free(h);

    // uneven split points give the one-shot digest too
    const char *msg = "The quick brown fox jumps over the lazy dog";
    char whole[65];
    hex_of_buffer(msg, strlen(msg), whole);
    for (size_t cut = 0; cut <= strlen(msg); cut += 7) {
        h = bbit_sha256_new();
        assert_int_equal(bbit_sha256_update(h, msg, cut), 0);
        assert_int_equal(bbit_sha256_update(h, msg + cut, strlen(msg) - cut), 0);
        assert_int_equal(bbit_sha256_final(h, d), 0);
        bbit_sha256_hex(d, hex);
        assert_string_equal(hex, whole);
        bbit_sha256_free(h);
    }
    assert_string_equal(whole, "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
}

static void test_use_after_final_fails(void **state)
{
    (void)state;
    bbit_sha256 *h = bbit_sha256_new();
    unsigned char d[BBIT_SHA256_LEN];
    assert_false(bbit_sha256_finished(h));
    assert_int_equal(bbit_sha256_final(h, d), 0);
    assert_true(bbit_sha256_finished(h));
    errno = 0;
    assert_int_equal(bbit_sha256_update(h, "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(bbit_sha256_final(h, d), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(bbit_sha256_update_file(h, "/etc/hostname", NULL), -1);
    assert_int_equal(errno, EINVAL);
    bbit_sha256_free(h);
    bbit_sha256_free(NULL); // no-op
    assert_int_equal(bbit_sha256_update(NULL, "x", 1), -1);
}

static void test_file_matches_buffer(void **state)
{
    (void)state;
    // 300 KiB + 5: spans several read chunks and ends mid-chunk
    size_t len = 300 * 1024 + 5;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 31 + 7);
    char *path = temp_file(data, len);
    unsigned char d[BBIT_SHA256_LEN];
    uint64_t size = 0;
    char from_file[65], from_buffer[65];
    assert_int_equal(bbit_sha256_file(path, d, &size), 0);
    bbit_sha256_hex(d, from_file);
    hex_of_buffer(data, len, from_buffer);
    assert_string_equal(from_file, from_buffer);
    assert_int_equal(size, len);

    // a file fed into a hasher after other bytes
    bbit_sha256 *h = bbit_sha256_new();
    assert_int_equal(bbit_sha256_update(h, "prefix", 6), 0);
    assert_int_equal(bbit_sha256_update_file(h, path, &size), 0);
    assert_int_equal(size, len);
    assert_int_equal(bbit_sha256_final(h, d), 0);
    bbit_sha256_free(h);
    char *joined = malloc(len + 6);
    memcpy(joined, "prefix", 6);
    memcpy(joined + 6, data, len);
    hex_of_buffer(joined, len + 6, from_buffer);
    bbit_sha256_hex(d, from_file);
    assert_string_equal(from_file, from_buffer);
    unlink(path);
    free(joined);
    free(path);
    free(data);
}

static void test_empty_file(void **state)
{
    (void)state;
    char *path = temp_file("", 0);
    unsigned char d[BBIT_SHA256_LEN];
    uint64_t size = 99;
    char hex[65];
    assert_int_equal(bbit_sha256_file(path, d, &size), 0);
    bbit_sha256_hex(d, hex);
    assert_string_equal(hex, EMPTY_HEX);
    assert_int_equal(size, 0);
    unlink(path);
    free(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    unsigned char d[BBIT_SHA256_LEN];
    errno = 0;
    assert_int_equal(bbit_sha256_file("/nonexistent/bbit/file", d, NULL), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(bbit_sha256_file("/", d, NULL), -1);
    assert_int_equal(errno, EISDIR);
}

static void test_hex_is_lowercase(void **state)
{
    (void)state;
    unsigned char d[BBIT_SHA256_LEN];
    for (int i = 0; i < BBIT_SHA256_LEN; i++)
        d[i] = (unsigned char)(0xf0 + (i % 16));
    char hex[65];
    memset(hex, 'X', sizeof hex);
    bbit_sha256_hex(d, hex);
    assert_int_equal(strlen(hex), 64);
    assert_memory_equal(hex, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", 32);
}

/* Every message length from 0 to 299 (each padding case: the length field
 * in the same block or the next one), each hashed in one piece and in
 * uneven pieces; the 300 hex digests, concatenated, are hashed again. The
 * expected value is Python's hashlib over the same bytes. */
static void test_every_length_to_300(void **state)
{
    (void)state;
    unsigned char msg[300];
    for (int i = 0; i < 300; i++)
        msg[i] = (unsigned char)((i * 7 + (i >> 3)) & 0xff);
    bbit_sha256 *all = bbit_sha256_new();
    assert_non_null(all);
    for (size_t n = 0; n < 300; n++) {
        char one_shot[65], pieces[65];
        hex_of_buffer((const char *)msg, n, one_shot);
        bbit_sha256 *h = bbit_sha256_new();
        assert_non_null(h);
        for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 % 67 + 1)
            assert_int_equal(bbit_sha256_update(h, msg + off, step < n - off ? step : n - off), 0);
        unsigned char d[BBIT_SHA256_LEN];
        assert_int_equal(bbit_sha256_final(h, d), 0);
        bbit_sha256_free(h);
        bbit_sha256_hex(d, pieces);
        assert_string_equal(pieces, one_shot);
        assert_int_equal(bbit_sha256_update(all, one_shot, 64), 0);
    }
    unsigned char d[BBIT_SHA256_LEN];
    char hex[65];
    assert_int_equal(bbit_sha256_final(all, d), 0);
    bbit_sha256_free(all);
    bbit_sha256_hex(d, hex);
    assert_string_equal(hex, "e4ccb5cfbc79d415b2448814376ca6dc6656ee9dcae12e7c93a1be07b62a30ef");
}

static void test_implementation_follows_env(void **state)
{
    (void)state;
    const char *impl = bbit_sha256_implementation();
    const char *want = getenv("BBIT_SHA256");
    if (want && strcmp(want, "openssl") == 0)
        assert_string_equal(impl, "openssl");
    else
        assert_true(strcmp(impl, "sha-ni") == 0 || strcmp(impl, "openssl") == 0);
    printf("sha256 implementation: %s\n", impl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_incremental_matches_one_shot),
        cmocka_unit_test(test_use_after_final_fails),
        cmocka_unit_test(test_file_matches_buffer),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_hex_is_lowercase),
        cmocka_unit_test(test_every_length_to_300),
        cmocka_unit_test(test_implementation_follows_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
