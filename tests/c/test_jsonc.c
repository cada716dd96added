/* Unit tests of runtime/core/jsonc.c: the JSONC pre-pass, the strict checker
 * and its messages, offset -> line:column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bbit/jsonc.h"

/* blank(in) must give `want` (same length: offsets unchanged). */
static void expect_blank(const char *in, const char *want)
{
    size_t len = strlen(in);
    char *copy = strdup(in);
    struct bbit_json_error err = {0};
    assert_int_equal(strlen(want), len);
    if (bbit_jsonc_blank(copy, len, &err) != 0)
        fail_msg("blank(\"%s\"): unexpected error at %zu: %s", in, err.offset, err.message);
    if (strcmp(copy, want) != 0)
        fail_msg("blank(\"%s\"):\n want \"%s\"\n got  \"%s\"", in, want, copy);
    free(copy);
}

static void expect_blank_error(const char *in, size_t offset, const char *message)
{
    char *copy = strdup(in);
    struct bbit_json_error err = {0};
    assert_int_equal(bbit_jsonc_blank(copy, strlen(in), &err), -1);
    assert_int_equal(err.offset, offset);
    assert_string_equal(err.message, message);
    free(copy);
}

static void expect_valid(const char *text)
{
    struct bbit_json_error err = {0};
    if (bbit_json_check(text, strlen(text), BBIT_JSON_MAX_DEPTH, 1, &err) != 0)
        fail_msg("check(\"%s\"): unexpected error at %zu: %s", text, err.offset, err.message);
}

static void expect_invalid_n(const char *text, size_t len, int strict, size_t offset,
                             const char *message)
{
    struct bbit_json_error err = {0};
    if (bbit_json_check(text, len, BBIT_JSON_MAX_DEPTH, strict, &err) == 0)
        fail_msg("check(\"%s\"): expected error \"%s\"", text, message);
    if (err.offset != offset || strcmp(err.message, message) != 0)
        fail_msg("check(\"%s\"):\n want %zu: %s\n got  %zu: %s", text, offset, message,
                 err.offset, err.message);
}

static void expect_invalid(const char *text, size_t offset, const char *message)
{
    expect_invalid_n(text, strlen(text), 0, offset, message);
}

static void expect_position(const char *text, size_t offset, unsigned line, unsigned column)
{
    unsigned l = 0, c = 0;
    bbit_jsonc_position(text, strlen(text), offset, &l, &c);
    if (l != line || c != column)
        fail_msg("position(\"%s\", %zu): want %u:%u, got %u:%u", text, offset, line, column, l,
                 c);
}

/* --- pre-pass ------------------------------------------------------------ */

static void test_blank_comments(void **state)
{
    expect_blank("{} // end", "{}       ");
    expect_blank("// a\n{\"a\": 1}", "    \n{\"a\": 1}");
    expect_blank("[1, /* two */ 2]", "[1,           2]");
    expect_blank("/* a\nb */1", "    \n    1");
    expect_blank("1 //x\r\n", "1     \n");
    expect_blank("/**/1/***/", "    1     ");
    expect_blank("[1 // a /* b\n]", "[1          \n]");
}

static void test_blank_keeps_strings(void **state)
{
    expect_blank("\"a//b\"", "\"a//b\"");
    expect_blank("\"/* x */\" // y", "\"/* x */\"     ");
    expect_blank("\"a\\\"//b\"", "\"a\\\"//b\"");            /* escaped quote */
    expect_blank("[\"a\\\\\"//c\n]", "[\"a\\\\\"   \n]");     /* trailing backslash */
    expect_blank("\"http://x/*y*/\"", "\"http://x/*y*/\"");
    expect_blank("\"a,]\"", "\"a,]\"");
    /* a string ends at a raw newline: the comment on the next line is blanked */
    expect_blank("\"abc\n// c", "\"abc\n    ");
}

static void test_blank_keeps_lone_slash(void **state)
{
    expect_blank("1 / 2", "1 / 2");
    expect_blank("1 /", "1 /");
}

static void test_blank_unterminated_comment(void **state)
{
    expect_blank_error("{} /* never closed", 3, "unterminated comment");
    expect_blank_error("[1] /*/", 4, "unterminated comment");
    expect_blank_error("\"/*\" /* x *", 5, "unterminated comment");
}

static void test_blank_trailing_commas(void **state)
{
    expect_blank("[1,]", "[1 ]");
    expect_blank("{\"a\": 1 ,\n}", "{\"a\": 1  \n}");
    expect_blank("[1, /* x */ ]", "[1          ]");
    expect_blank("[[1,],{\"a\":[],},]", "[[1 ],{\"a\":[] } ]");
    expect_blank("[\"s\",\r\n]", "[\"s\" \r\n]");
    /* not trailing: nothing before it, two commas, a missing value, top level */
    expect_blank("[,]", "[,]");
    expect_blank("[1,,]", "[1,,]");
    expect_blank("{\"a\":,}", "{\"a\":,}");
    expect_blank("{,}", "{,}");
    expect_blank("1,", "1,");
    expect_blank("[1, 2]", "[1, 2]");
}

/* --- checker ------------------------------------------------------------- */

static void test_check_valid(void **state)
{
    expect_valid("{}");
    expect_valid("[]");
    expect_valid(" \t\r\n0 ");
    expect_valid("-0.5e+10");
    expect_valid("1E-2");
    expect_valid("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"");
    expect_valid("{\"a\": [true, false, null, {\"b\": {}}], \"c\": \"\xc3\xa9\"}");
    expect_valid("\xEF\xBB\xBF{}");
}

static void test_check_structure_errors(void **state)
{
    expect_invalid("{\n  \"a\": 1\n  \"b\": 2\n}", 13, "expected ',' or '}' after an object member");
    expect_invalid("[1 2]", 3, "expected ',' or ']' after an array element");
    expect_invalid("{\"a\" 1}", 5, "expected ':' after an object key");
    expect_invalid("{1: 2}", 1, "expected a string key or '}'");
    expect_invalid("{a: 2}", 1, "expected a string key or '}' (keys need double quotes)");
    expect_invalid("{\"a\": 1, b: 2}", 9, "expected a string key after ',' (keys need double quotes)");
    expect_invalid("{\"a\": 1, }", 9, "expected a string key after ','");
    expect_invalid("[1,,2]", 3, "expected a value");
    expect_invalid("[}", 1, "expected a value");
    expect_invalid("{\"a\": 'x'}", 6, "expected a value (strings need double quotes, not single quotes)");
    expect_invalid("[tru]", 1, "expected a value (strings need double quotes; the literals are true, false and null)");
    expect_invalid("{} {}", 3, "trailing data after the JSON value");
    expect_invalid("nulls", 4, "trailing data after the JSON value");
}

static void test_check_end_of_input(void **state)
{
    expect_invalid("", 0, "unexpected end of input");
    expect_invalid("   ", 3, "unexpected end of input");
    expect_invalid("[1,", 3, "unexpected end of input");
    expect_invalid("{\"a\":", 5, "unexpected end of input");
    expect_invalid("{\"a\"", 4, "unexpected end of input");
    expect_invalid("[[]", 3, "unexpected end of input");
    expect_invalid("-", 1, "unexpected end of input");
    expect_invalid("1.", 2, "unexpected end of input");
}

static void test_check_string_errors(void **state)
{
    expect_invalid("\"abc", 0, "unterminated string");
    expect_invalid("[\"ab\ncd\"]", 1, "unterminated string");
    expect_invalid("\"a\\", 0, "unterminated string");
    expect_invalid("[\"a\\\n\"]", 1, "unterminated string");
    expect_invalid("\"a\tb\"", 2, "control character in string (write it as \\u00XX)");
    expect_invalid_n("\"a\0b\"", 5, 0, 2, "control character in string (write it as \\u00XX)");
    expect_invalid("\"\\x\"", 1, "invalid escape '\\x' in string");
    expect_invalid("\"\\u12G4\"", 1, "invalid \\u escape (expected 4 hex digits)");
    expect_invalid("\"\\u12\"", 1, "invalid \\u escape (expected 4 hex digits)");
    expect_invalid("\"\\uD800\"", 1, "unpaired surrogate in \\u escape");
    expect_invalid("\"\\uD800\\u0041\"", 1, "unpaired surrogate in \\u escape");
    expect_invalid("\"x\\uDC00\"", 2, "unpaired surrogate in \\u escape");
}

static void test_check_number_errors(void **state)
{
    expect_invalid("01", 0, "leading zeros are not allowed in numbers");
    expect_invalid("[-00]", 1, "leading zeros are not allowed in numbers");
    expect_invalid("-a", 1, "expected a digit after '-'");
    expect_invalid("1.e5", 2, "expected a digit after '.' in a number");
    expect_invalid("1e+", 3, "unexpected end of input");
    expect_invalid("[1ex]", 3, "expected a digit in the exponent of a number");
    expect_invalid(".5", 0, "expected a value");
    expect_invalid("+1", 0, "expected a value");
}

static void test_check_strict_messages(void **state)
{
    expect_invalid_n("{\"a\": 1,}", 9, 1, 8,
                     "expected a string key after ',' (trailing commas are not allowed in strict JSON)");
    expect_invalid_n("[1,]", 4, 1, 3,
                     "expected a value after ',' (trailing commas are not allowed in strict JSON)");
    expect_invalid_n("// c\n1", 6, 1, 0, "comments are not allowed in strict JSON");
    expect_invalid_n("[1 /* c */]", 11, 1, 3, "comments are not allowed in strict JSON");
    /* without strict, the same input gets the plain messages */
    expect_invalid_n("[1,]", 4, 0, 3, "expected a value");
    expect_invalid_n("[1 /* c */]", 11, 0, 3, "expected ',' or ']' after an array element");
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

static void test_check_depth(void **state)
{
    char *ok = nested(BBIT_JSON_MAX_DEPTH);
    expect_valid(ok);
    free(ok);
    char *deep = nested(BBIT_JSON_MAX_DEPTH + 1);
    expect_invalid(deep, BBIT_JSON_MAX_DEPTH, "nesting deeper than 1000 levels");
    free(deep);
    struct bbit_json_error err = {0};
    assert_int_equal(bbit_json_check("[[[1]]]", 7, 2, 0, &err), -1);
    assert_int_equal(err.offset, 2);
    assert_string_equal(err.message, "nesting deeper than 2 levels");
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blank_comments),
        cmocka_unit_test(test_blank_keeps_strings),
        cmocka_unit_test(test_blank_keeps_lone_slash),
        cmocka_unit_test(test_blank_unterminated_comment),
        cmocka_unit_test(test_blank_trailing_commas),
        cmocka_unit_test(test_check_valid),
        cmocka_unit_test(test_check_structure_errors),
        cmocka_unit_test(test_check_end_of_input),
        cmocka_unit_test(test_check_string_errors),
        cmocka_unit_test(test_check_number_errors),
        cmocka_unit_test(test_check_strict_messages),
        cmocka_unit_test(test_check_depth),
        cmocka_unit_test(test_position_lines),
        cmocka_unit_test(test_position_crlf),
        cmocka_unit_test(test_position_utf8_counts_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
