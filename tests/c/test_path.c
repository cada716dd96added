/* Unit tests of runtime/core/path.c: normalize, safe relative paths, within, globs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bbit/path.h"

static void expect_normal(const char *in, const char *want)
{
    char *got = bbit_path_normalize(in);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("normalize(\"%s\"): want \"%s\", got \"%s\"", in, want, got);
    free(got);
}

static void test_normalize_relative(void **state)
{
    expect_normal("a/b/c", "a/b/c");
    expect_normal("a//b///c/", "a/b/c");
    expect_normal("./a/./b/.", "a/b");
    expect_normal("a/b/../c", "a/c");
    expect_normal("a/b/../../c", "c");
    expect_normal("a/..", ".");
    expect_normal("", ".");
    expect_normal(".", ".");
    expect_normal("./", ".");
    expect_normal("..", "..");
    expect_normal("../a", "../a");
    expect_normal("a/../../b", "../b");
    expect_normal("../../a/../b", "../../b");
    expect_normal("..a/b..", "..a/b..");
    expect_normal(".hidden/./x", ".hidden/x");
}

static void test_normalize_absolute(void **state)
{
    expect_normal("/", "/");
    expect_normal("//", "/");
    expect_normal("/a/b/", "/a/b");
    expect_normal("/a/../..", "/");
    expect_normal("/../a", "/a");
    expect_normal("/a/./b/../c", "/a/c");
    expect_normal("///a//b", "/a/b");
}

static void expect_safe(const char *in, const char *want)
{
    char *out = (char *)1;
    enum bbit_path_error e = bbit_path_safe_relative(in, &out);
    if (e != BBIT_PATH_OK)
        fail_msg("safe_relative(\"%s\") refused: %s", in, bbit_path_error_message(e));
    assert_string_equal(out, want);
    free(out);
}

static void expect_unsafe(const char *in, enum bbit_path_error want)
{
    char *out = (char *)1;
    enum bbit_path_error e = bbit_path_safe_relative(in, &out);
    assert_int_equal(e, want);
    assert_null(out);
}

static void test_safe_relative(void **state)
{
    expect_safe("a/b", "a/b");
    expect_safe("a/../b", "b");
    expect_safe("./a//b/", "a/b");
    expect_safe(".", ".");
    expect_safe("a/..", ".");
    expect_safe("..a", "..a");
    expect_safe("a/b/../../c/..d", "c/..d");
    expect_unsafe("", BBIT_PATH_EMPTY);
    expect_unsafe("/etc/passwd", BBIT_PATH_ABSOLUTE);
    expect_unsafe("/", BBIT_PATH_ABSOLUTE);
    expect_unsafe("..", BBIT_PATH_ESCAPES);
    expect_unsafe("../x", BBIT_PATH_ESCAPES);
    expect_unsafe("a/../../x", BBIT_PATH_ESCAPES);
    expect_unsafe("a/b/../../..", BBIT_PATH_ESCAPES);
    expect_unsafe("./../x", BBIT_PATH_ESCAPES);
    assert_string_equal(bbit_path_error_message(BBIT_PATH_ESCAPES), "escapes its root with ..");
    assert_string_equal(bbit_path_error_message(BBIT_PATH_ABSOLUTE),
                        "is absolute (a relative path was expected)");
    assert_string_equal(bbit_path_error_message(BBIT_PATH_EMPTY), "is empty");
}

static void test_is_within(void **state)
{
    assert_true(bbit_path_is_within("/ws", "/ws"));
    assert_true(bbit_path_is_within("/ws", "/ws/a/b"));
    assert_true(bbit_path_is_within("/ws/", "/ws/a/../b"));
    assert_true(bbit_path_is_within("/", "/anything"));
    assert_true(bbit_path_is_within("a", "a/b"));
    assert_true(bbit_path_is_within(".", "a/b"));
    assert_true(bbit_path_is_within(".", "."));
    assert_false(bbit_path_is_within("/ws", "/wsx"));
    assert_false(bbit_path_is_within("/ws", "/ws/../etc"));
    assert_false(bbit_path_is_within("/ws", "/"));
    assert_false(bbit_path_is_within("/ws/a", "/ws"));
    assert_false(bbit_path_is_within(".", "../a"));
    assert_false(bbit_path_is_within("a", "a/../b"));
    assert_false(bbit_path_is_within("/ws", "ws/a"));
    assert_false(bbit_path_is_within("ws", "/ws/a"));
}

static void test_glob_segment(void **state)
{
    assert_true(bbit_glob_match("*.c", "main.c"));
    assert_true(bbit_glob_match("*.c", ".c"));
    assert_true(bbit_glob_match("*", ".hidden"));
    assert_false(bbit_glob_match("*.c", "src/main.c"));
    assert_false(bbit_glob_match("*.c", "main.h"));
    assert_true(bbit_glob_match("a?c", "abc"));
    assert_false(bbit_glob_match("a?c", "a/c"));
    assert_false(bbit_glob_match("a?c", "ac"));
    assert_true(bbit_glob_match("*a*b*", "xxaxxbxx"));
    assert_false(bbit_glob_match("*a*b*", "xxbxxaxx"));
    assert_true(bbit_glob_match("a*b*c", "abbbc"));
    assert_true(bbit_glob_match("file.[ch]", "file.h"));
    assert_false(bbit_glob_match("file.[ch]", "file.o"));
    assert_true(bbit_glob_match("v[0-9]", "v7"));
    assert_false(bbit_glob_match("v[0-9]", "vx"));
    assert_true(bbit_glob_match("v[!0-9]", "vx"));
    assert_true(bbit_glob_match("v[^0-9]", "vx"));
    assert_false(bbit_glob_match("v[!0-9]", "v3"));
    assert_true(bbit_glob_match("[]]", "]"));
    assert_true(bbit_glob_match("a[", "a["));    /* unclosed class: literal */
    assert_true(bbit_glob_match("a\\*", "a*"));
    assert_false(bbit_glob_match("a\\*", "ab"));
    assert_true(bbit_glob_match("a**b", "axxb")); /* not a whole segment: like '*' */
    assert_false(bbit_glob_match("a**b", "ax/xb"));
    assert_true(bbit_glob_match("", ""));
    assert_false(bbit_glob_match("", "a"));
    assert_false(bbit_glob_match("a", ""));
}

static void test_glob_globstar(void **state)
{
    assert_true(bbit_glob_match("**", "a"));
    assert_true(bbit_glob_match("**", "a/b/c"));
    assert_true(bbit_glob_match("**/*.c", "main.c"));
    assert_true(bbit_glob_match("**/*.c", "src/deep/main.c"));
    assert_false(bbit_glob_match("**/*.c", "src/main.h"));
    assert_true(bbit_glob_match("components/**/legacy", "components/legacy"));
    assert_true(bbit_glob_match("components/**/legacy", "components/ui/legacy"));
    assert_true(bbit_glob_match("components/**/legacy", "components/ui/x/legacy"));
    assert_false(bbit_glob_match("components/**/legacy", "components/ui/legacy/button"));
    assert_false(bbit_glob_match("components/**/legacy", "other/ui/legacy"));
    assert_false(bbit_glob_match("components/**/legacy", "components/ui/legacyx"));
    assert_true(bbit_glob_match("a/**", "a"));
    assert_true(bbit_glob_match("a/**", "a/b/c"));
    assert_false(bbit_glob_match("a/**", "ab"));
    assert_true(bbit_glob_match("a/**/b/**/c", "a/x/b/y/z/c"));
    assert_true(bbit_glob_match("a/**/**/c", "a/c"));
    assert_false(bbit_glob_match("a/*/c", "a/c"));
    assert_false(bbit_glob_match("a/*/c", "a/x/y/c"));
    assert_true(bbit_glob_match("a/*/c", "a/x/c"));
}

static void test_ignore(void **state)
{
    /* no slash: any segment */
    assert_true(bbit_ignore_match("node_modules", "node_modules", true));
    assert_true(bbit_ignore_match("node_modules", "pkg/node_modules/x/y.js", false));
    assert_true(bbit_ignore_match("*.log", "a/b/debug.log", false));
    assert_false(bbit_ignore_match("*.log", "a/b/debug.txt", false));
    assert_false(bbit_ignore_match("node_modules", "node_modules_x/a", false));
    /* trailing slash: directories only */
    assert_true(bbit_ignore_match("build/", "build", true));
    assert_false(bbit_ignore_match("build/", "build", false));
    assert_true(bbit_ignore_match("build/", "build/out.o", false));
    assert_true(bbit_ignore_match("build/", "sub/build/out.o", false));
    /* leading slash: anchored */
    assert_true(bbit_ignore_match("/dist", "dist", true));
    assert_false(bbit_ignore_match("/dist", "sub/dist", true));
    /* with a slash: the whole path */
    assert_true(bbit_ignore_match("docs/*.md", "docs/a.md", false));
    assert_false(bbit_ignore_match("docs/*.md", "x/docs/a.md", false));
    assert_true(bbit_ignore_match("**/gen", "a/b/gen", true));
    assert_false(bbit_ignore_match("", "a", false));
    assert_false(bbit_ignore_match("/", "a", false));
    /* last-segment variant only looks at the basename */
    assert_true(bbit_ignore_match_last("*.log", "a/b/x.log", false));
    assert_false(bbit_ignore_match_last("node_modules", "node_modules/x.js", false));
    assert_true(bbit_ignore_match_last("docs/*.md", "docs/a.md", false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_relative), cmocka_unit_test(test_normalize_absolute),
        cmocka_unit_test(test_safe_relative),      cmocka_unit_test(test_is_within),
        cmocka_unit_test(test_glob_segment),       cmocka_unit_test(test_glob_globstar),
        cmocka_unit_test(test_ignore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
