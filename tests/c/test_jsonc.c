/* Unit tests of runtime/core/jsonc.c: offset -> line:column. The decoder and
 * its messages are tested through Lua in tests/lua/test_json.lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bbit/jsonc.h"

static void expect_position(const char *text, size_t offset, unsigned line, unsigned column)
{
    unsigned l = 0, c = 0;
    bbit_jsonc_position(text, strlen(text), offset, &l, &c);
    if (l != line || c != column)
        fail_msg("position(\"%s\", %zu): want %u:%u, got %u:%u", text, offset, line, column, l,
                 c);
}

/* --- positions ----------------------------------------------------------- */

static void test_position_lines(void **state)
{
    expect_position("abc", 0, 1, 1);
    expect_position("abc", 2, 1, 3);
    expect_position("abc", 3, 1, 4);
    expect_position("a\nbc", 2, 2, 1);
    expect_position("a\nbc", 3, 2, 2);
    expect_position("a\n", 2, 2, 1);
    expect_position("abc", 99, 1, 4); /* clamped to the end */
}

static void test_position_crlf(void **state)
{
    expect_position("a\r\nbc", 3, 2, 1);
    expect_position("a\r\nbc", 4, 2, 2);
    expect_position("a\r\n\r\nx", 5, 3, 1);
    expect_position("a\rb", 2, 1, 3); /* a lone CR is not a line break */
}

static void test_position_utf8_counts_characters(void **state)
{
    /* "é" is 2 bytes, "€" 3, "😀" 4: each one column */
    expect_position("\"\xc3\xa9\" x", 4, 1, 4);
    expect_position("\xe2\x82\xac\xf0\x9f\x98\x80x", 7, 1, 3);
    expect_position("\t\tx", 2, 1, 3); /* a tab is one column */
    expect_position("\xEF\xBB\xBF{x", 4, 1, 2); /* the BOM is not a column */
    expect_position("\xEF\xBB\xBF{x", 3, 1, 1);
    expect_position("\xEF\xBB\xBF", 3, 1, 1);
    expect_position("\xEF\xBB\xBF\n\xEF\xBB\xBFx", 7, 2, 2); /* only a leading BOM is skipped */
    expect_position("\xEF\xBBx", 2, 1, 2); /* not a BOM: a lead and a continuation byte */
}

static void test_position_nul_bytes(void **state)
{
    unsigned l = 0, c = 0;
    bbit_jsonc_position("a\0\n\0b", 5, 4, &l, &c); /* NUL bytes are characters */
    assert_int_equal(l, 2);
    assert_int_equal(c, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_position_lines),
        cmocka_unit_test(test_position_crlf),
        cmocka_unit_test(test_position_utf8_counts_characters),
        cmocka_unit_test(test_position_nul_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
