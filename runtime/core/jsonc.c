/* JSONC pre-pass, strict JSON checker with messages, offset -> line:column.
 * No Lua here: tests/c/test_jsonc.c tests it directly. See include/bbit/jsonc.h. */
#include <stdio.h>
#include <string.h>

#include "bbit/jsonc.h"

static int fail(struct bbit_json_error *err, size_t offset, const char *message)
{
    err->offset = offset;
    snprintf(err->message, sizeof err->message, "%s", message);
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t skip_blanks(const char *text, size_t len, size_t i)
{
    while (i < len && is_blank(text[i]))
        i++;
    return i;
}

static int has_bom(const char *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0;
}

/* ---------------------------------------------------------------------------
 * Pre-pass */

/* Offset just past the string that starts at text[i] == '"'. Lenient: stops
 * after the closing quote, at a raw newline (not consumed) or at the end. */
static size_t skip_string_loosely(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\' && i + 1 < len && text[i + 1] != '\n')
            i++;
        else if (text[i] == '"')
            return i + 1;
        else if (text[i] == '\n')
            return i;
    }
    return len;
}

/* Blanks text[from..to) except newlines. */
static void blank_range(char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (text[i] != '\n')
            text[i] = ' ';
}

static int blank_comments(char *text, size_t len, struct bbit_json_error *err)
{
    size_t i = 0;
    while (i < len) {
        if (text[i] == '"') {
            i = skip_string_loosely(text, len, i);
        } else if (text[i] == '/' && i + 1 < len && text[i + 1] == '/') {
            size_t end = i;
            while (end < len && text[end] != '\n')
                end++;
            blank_range(text, i, end);
            i = end;
        } else if (text[i] == '/' && i + 1 < len && text[i + 1] == '*') {
            const char *close = memmem(text + i + 2, len - i - 2, "*/", 2);
            if (!close)
                return fail(err, i, "unterminated comment");
            size_t end = (size_t)(close - text) + 2;
            blank_range(text, i, end);
            i = end;
        } else {
            i++;
        }
    }
    return 0;
}

/* A ',' is trailing when it follows a value (not '[', '{', ',' or ':') and the
 * next non-blank character closes an array or object. */
static void blank_trailing_commas(char *text, size_t len)
{
    char previous = 0;
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        if (is_blank(c)) {
            i++;
            continue;
        }
        if (c == '"') {
            i = skip_string_loosely(text, len, i);
            previous = '"';
            continue;
        }
        if (c == ',' && previous && !strchr("[{,:", previous)) {
            size_t next = skip_blanks(text, len, i + 1);
            if (next < len && (text[next] == ']' || text[next] == '}'))
                text[i] = ' ';
        }
        previous = c;
        i++;
    }
}

int bbit_jsonc_blank(char *text, size_t len, struct bbit_json_error *err)
{
    if (blank_comments(text, len, err) != 0)
        return -1;
    blank_trailing_commas(text, len);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Checker */

struct checker {
    const char *text;
    size_t len;
    size_t i;
    int strict;
    struct bbit_json_error *err;
};

static int starts_comment(const struct checker *c, size_t at)
{
    return at + 1 < c->len && c->text[at] == '/' &&
           (c->text[at + 1] == '/' || c->text[at + 1] == '*');
}

/* Fails at c->i with `message`, or "unexpected end of input" at the end, or,
 * in strict mode at a comment, says comments are not allowed. */
static int unexpected(struct checker *c, const char *message)
{
    if (c->i >= c->len)
        return fail(c->err, c->len, "unexpected end of input");
    if (c->strict && starts_comment(c, c->i))
        return fail(c->err, c->i, "comments are not allowed in strict JSON");
    return fail(c->err, c->i, message);
}

static int hex_value(char h)
{
    if (h >= '0' && h <= '9')
        return h - '0';
    if (h >= 'a' && h <= 'f')
        return h - 'a' + 10;
    if (h >= 'A' && h <= 'F')
        return h - 'A' + 10;
    return -1;
}

/* The code unit of "\uXXXX" at text[at] (the backslash), or -1. */
static long read_u_escape(const struct checker *c, size_t at)
{
    if (at + 6 > c->len || c->text[at] != '\\' || c->text[at + 1] != 'u')
        return -1;
    long unit = 0;
    for (size_t k = at + 2; k < at + 6; k++) {
        int h = hex_value(c->text[k]);
        if (h < 0)
            return -1;
        unit = unit * 16 + h;
    }
    return unit;
}

/* c->i is at a backslash inside a string: checks the escape, moves past it. */
static int check_escape(struct checker *c)
{
    size_t at = c->i;
    char e = at + 1 < c->len ? c->text[at + 1] : 0;
    if (e && strchr("\"\\/bfnrt", e)) {
        c->i += 2;
        return 0;
    }
    if (e != 'u') {
        char message[64];
        if (e > ' ' && e < 0x7f)
            snprintf(message, sizeof message, "invalid escape '\\%c' in string", e);
        else
            snprintf(message, sizeof message, "invalid escape in string");
        return fail(c->err, at, message);
    }
    long unit = read_u_escape(c, at);
    if (unit < 0)
        return fail(c->err, at, "invalid \\u escape (expected 4 hex digits)");
    if (unit >= 0xDC00 && unit <= 0xDFFF)
        return fail(c->err, at, "unpaired surrogate in \\u escape");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        long low = read_u_escape(c, at + 6);
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(c->err, at, "unpaired surrogate in \\u escape");
        c->i += 12;
        return 0;
    }
    c->i += 6;
    return 0;
}

/* c->i is at the opening quote. */
static int check_string(struct checker *c)
{
    size_t start = c->i;
    c->i++;
    while (c->i < c->len) {
        unsigned char b = (unsigned char)c->text[c->i];
        if (b == '"') {
            c->i++;
            return 0;
        }
        if (b == '\n' || b == '\r')
            break;
        if (b < 0x20)
            return fail(c->err, c->i, "control character in string (write it as \\u00XX)");
        if (b == '\\') {
            char next = c->i + 1 < c->len ? c->text[c->i + 1] : '\n';
            if (next == '\n' || next == '\r')
                break; /* the string was not closed on its line */
            if (check_escape(c) != 0)
                return -1;
            continue;
        }
        c->i++;
    }
    return fail(c->err, start, "unterminated string");
}

static void skip_digits(struct checker *c)
{
    while (c->i < c->len && is_digit(c->text[c->i]))
        c->i++;
}

static int check_number(struct checker *c)
{
    size_t start = c->i;
    if (c->text[c->i] == '-')
        c->i++;
    if (c->i >= c->len || !is_digit(c->text[c->i]))
        return unexpected(c, "expected a digit after '-'");
    if (c->text[c->i] == '0' && c->i + 1 < c->len && is_digit(c->text[c->i + 1]))
        return fail(c->err, start, "leading zeros are not allowed in numbers");
    skip_digits(c);
    if (c->i < c->len && c->text[c->i] == '.') {
        c->i++;
        if (c->i >= c->len || !is_digit(c->text[c->i]))
            return unexpected(c, "expected a digit after '.' in a number");
        skip_digits(c);
    }
    if (c->i < c->len && (c->text[c->i] == 'e' || c->text[c->i] == 'E')) {
        c->i++;
        if (c->i < c->len && (c->text[c->i] == '+' || c->text[c->i] == '-'))
            c->i++;
        if (c->i >= c->len || !is_digit(c->text[c->i]))
            return unexpected(c, "expected a digit in the exponent of a number");
        skip_digits(c);
    }
    return 0;
}

static int check_word(struct checker *c)
{
    static const char *const words[] = {"true", "false", "null"};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(words[k]);
        if (c->len - c->i >= n && memcmp(c->text + c->i, words[k], n) == 0) {
            c->i += n;
            return 0;
        }
    }
    return unexpected(c, "expected a value (strings need double quotes; the literals are "
                         "true, false and null)");
}

/* A scalar at c->i (not an array or object). */
static int check_scalar(struct checker *c, int after_comma)
{
    char ch = c->i < c->len ? c->text[c->i] : 0;
    if (ch == '"')
        return check_string(c);
    if (ch == '-' || is_digit(ch))
        return check_number(c);
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return check_word(c);
    if (ch == '\'')
        return unexpected(c, "expected a value (strings need double quotes, not single quotes)");
    if (ch == ']' && after_comma && c->strict)
        return unexpected(c, "expected a value after ',' (trailing commas are not allowed in "
                             "strict JSON)");
    return unexpected(c, "expected a value");
}

/* After '{' or ',' in an object, at the key: checks `"key" :`. */
static int check_key(struct checker *c, int after_comma)
{
    c->i = skip_blanks(c->text, c->len, c->i);
    if (c->i >= c->len || c->text[c->i] != '"') {
        char ch = c->i < c->len ? c->text[c->i] : 0;
        int unquoted =
            ch == '\'' || ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (unquoted)
            return unexpected(c, after_comma
                                     ? "expected a string key after ',' (keys need double quotes)"
                                     : "expected a string key or '}' (keys need double quotes)");
        if (!after_comma)
            return unexpected(c, "expected a string key or '}'");
        if (c->i < c->len && c->text[c->i] == '}' && c->strict)
            return unexpected(c, "expected a string key after ',' (trailing commas are not "
                                 "allowed in strict JSON)");
        return unexpected(c, "expected a string key after ','");
    }
    if (check_string(c) != 0)
        return -1;
    c->i = skip_blanks(c->text, c->len, c->i);
    if (c->i >= c->len || c->text[c->i] != ':')
        return unexpected(c, "expected ':' after an object key");
    c->i++;
    return 0;
}

int bbit_json_check(const char *text, size_t len, int max_depth, int strict,
                    struct bbit_json_error *err)
{
    char open[BBIT_JSON_MAX_DEPTH]; /* '[' or '{' per level */
    int depth = 0, after_comma = 0;
    struct checker c = {text, len, has_bom(text, len) ? 3 : 0, strict, err};
    if (max_depth > BBIT_JSON_MAX_DEPTH)
        max_depth = BBIT_JSON_MAX_DEPTH;

value: /* a value is expected at c.i */
    c.i = skip_blanks(text, len, c.i);
    if (c.i < len && (text[c.i] == '[' || text[c.i] == '{')) {
        if (depth >= max_depth) {
            char message[64];
            snprintf(message, sizeof message, "nesting deeper than %d levels", max_depth);
            return fail(err, c.i, message);
        }
        open[depth++] = text[c.i++];
        c.i = skip_blanks(text, len, c.i);
        if (c.i < len && text[c.i] == (open[depth - 1] == '[' ? ']' : '}')) {
            depth--;
            c.i++;
            goto after_value;
        }
        if (open[depth - 1] == '{') {
            if (check_key(&c, 0) != 0)
                return -1;
        }
        after_comma = 0;
        goto value;
    }
    if (check_scalar(&c, after_comma) != 0)
        return -1;

after_value:
    c.i = skip_blanks(text, len, c.i);
    if (depth == 0) {
        if (c.i < len)
            return unexpected(&c, "trailing data after the JSON value");
        return 0;
    }
    if (c.i < len && text[c.i] == ',') {
        c.i++;
        after_comma = open[depth - 1] == '[';
        if (open[depth - 1] == '{' && check_key(&c, 1) != 0)
            return -1;
        goto value;
    }
    if (c.i < len && text[c.i] == (open[depth - 1] == '[' ? ']' : '}')) {
        depth--;
        c.i++;
        goto after_value;
    }
    if (open[depth - 1] == '{')
        return unexpected(&c, "expected ',' or '}' after an object member");
    return unexpected(&c, "expected ',' or ']' after an array element");
}

/* ---------------------------------------------------------------------------
 * Positions */

void bbit_jsonc_position(const char *text, size_t len, size_t offset, unsigned *line,
                         unsigned *column)
{
    unsigned l = 1, col = 1;
    size_t i = 0;
    if (offset > len)
        offset = len;
    if (has_bom(text, len) && offset >= 3)
        i = 3; /* the byte order mark is invisible in editors */
    for (; i < offset; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b == '\n') {
            l++;
            col = 1;
        } else if ((b & 0xC0) != 0x80) {
            col++;
        }
    }
    *line = l;
    *column = col;
}
