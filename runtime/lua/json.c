/* bbit.core.json: JSON/JSONC decode to Lua values and encode (compact or
 * pretty, keys sorted bytewise). The public API is stdlib/bbit/json.lua.
 *
 * Decode: one recursive-descent pass over the text that pushes the Lua values
 * as it goes (no copy, no tree). Comments and trailing commas are accepted
 * unless strict; the first error stops the pass and is reported as
 * "NAME:line:column: message" (bbit_jsonc_position in runtime/core/jsonc.c
 * turns its byte offset into a line and a column).
 *
 * Values: objects are tables with metatable core.object_mt, arrays tables with
 * core.array_mt, null is the light userdata core.null.
 */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbit/jsonc.h"
#include "bbit/luax.h"

#define OBJECT_MT "bbit.json.object"
#define ARRAY_MT "bbit.json.array"
#define ENCODER_MT "bbit.json.encoder"

static const char json_null_sentinel = 0;
#define JSON_NULL ((void *)&json_null_sentinel)

static int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == JSON_NULL;
}

/* ===========================================================================
 * Decode
 *
 * The text is a Lua string, so text[len] is '\0': the parser reads one byte
 * past a token without a bounds check, and compares with `end` only where a
 * '\0' could be either the end or a NUL byte in the text. */

struct parser {
    lua_State *L;
    const char *text, *end; /* end = text + len, *end == '\0' */
    const char *p;          /* the next byte to read */
    int strict;             /* no comments, no trailing commas */
    int depth;              /* open arrays and objects */
    int object_mt, array_mt; /* stack indices of the metatables */
    size_t error_at;         /* byte offset of the error */
    char message[128];
};

/* Bytes that end the fast scan of a string: '"', '\\' and control characters
 * (0x00..0x1F, which includes the '\0' at the end of the text). */
static const unsigned char string_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

static int fail_at(struct parser *ps, const char *at, const char *message)
{
    ps->error_at = (size_t)(at - ps->text);
    snprintf(ps->message, sizeof ps->message, "%s", message);
    return -1;
}

static int starts_comment(const struct parser *ps, const char *at)
{
    return at[0] == '/' && (at[1] == '/' || at[1] == '*') && at + 1 < ps->end;
}

/* Fails at ps->p with `message`, or "unexpected end of input" at the end, or,
 * in strict mode at a comment, says comments are not allowed. */
static int unexpected(struct parser *ps, const char *message)
{
    if (ps->p >= ps->end)
        return fail_at(ps, ps->end, "unexpected end of input");
    if (ps->strict && starts_comment(ps, ps->p))
        return fail_at(ps, ps->p, "comments are not allowed in strict JSON");
    return fail_at(ps, ps->p, message);
}

static inline int is_blank(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Skips comments (not in strict mode) and what follows them up to the next token. */
static int skip_comments(struct parser *ps)
{
    const char *p = ps->p;
    while (!ps->strict && starts_comment(ps, p)) {
        if (p[1] == '/') {
            const char *nl = memchr(p, '\n', (size_t)(ps->end - p));
            p = nl ? nl : ps->end;
        } else {
            const char *close = memmem(p + 2, (size_t)(ps->end - p - 2), "*/", 2);
            if (!close)
                return fail_at(ps, p, "unterminated comment");
            p = close + 2;
        }
        while (is_blank(*p))
            p++;
    }
    ps->p = p;
    return 0;
}

/* Moves ps->p to the next token: past blanks and, unless strict, comments. */
static inline int skip_blanks(struct parser *ps)
{
    const char *p = ps->p;
    while (is_blank(*p))
        p++;
    ps->p = p;
    return *p == '/' ? skip_comments(ps) : 0;
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

/* The code unit of "\uXXXX" at `at` (the backslash), or -1. */
static long read_u_escape(const struct parser *ps, const char *at)
{
    if (ps->end - at < 6 || at[0] != '\\' || at[1] != 'u')
        return -1;
    long unit = 0;
    for (int k = 2; k < 6; k++) {
        int h = hex_value(at[k]);
        if (h < 0)
            return -1;
        unit = unit * 16 + h;
    }
    return unit;
}

static void add_utf8(luaL_Buffer *b, unsigned long cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    luaL_addlstring(b, out, n);
}

/* Adds the escape at `at` (a backslash that is not the last byte of its line)
 * to b; returns its length, or 0 with the error set. */
static size_t add_escape(struct parser *ps, luaL_Buffer *b, const char *at)
{
    char e = at[1];
    switch (e) {
    case '"': case '\\': case '/': luaL_addchar(b, e); return 2;
    case 'b': luaL_addchar(b, '\b'); return 2;
    case 'f': luaL_addchar(b, '\f'); return 2;
    case 'n': luaL_addchar(b, '\n'); return 2;
    case 'r': luaL_addchar(b, '\r'); return 2;
    case 't': luaL_addchar(b, '\t'); return 2;
    case 'u': break;
    default: {
        char message[64];
        if (e > ' ' && e < 0x7f)
            snprintf(message, sizeof message, "invalid escape '\\%c' in string", e);
        else
            snprintf(message, sizeof message, "invalid escape in string");
        fail_at(ps, at, message);
        return 0;
    }
    }
    long unit = read_u_escape(ps, at);
    if (unit < 0) {
        fail_at(ps, at, "invalid \\u escape (expected 4 hex digits)");
        return 0;
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
        fail_at(ps, at, "unpaired surrogate in \\u escape");
        return 0;
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        long low = read_u_escape(ps, at + 6);
        if (low < 0xDC00 || low > 0xDFFF) {
            fail_at(ps, at, "unpaired surrogate in \\u escape");
            return 0;
        }
        add_utf8(b, 0x10000 + ((unsigned long)(unit - 0xD800) << 10) +
                        (unsigned long)(low - 0xDC00));
        return 12;
    }
    add_utf8(b, (unsigned long)unit);
    return 6;
}

/* q stopped the scan of the string that opens at `quote` and is not at '"' or
 * '\\': the string is not closed on its line, or has a control character. */
static int string_error(struct parser *ps, const char *quote, const char *q)
{
    if (q >= ps->end || *q == '\n' || *q == '\r')
        return fail_at(ps, quote, "unterminated string");
    return fail_at(ps, q, "control character in string (write it as \\u00XX)");
}

/* Pushes the string that opens at ps->p (the quote) and moves past it. */
static int parse_string(struct parser *ps)
{
    const char *quote = ps->p, *q = quote + 1;
    while (!string_stop[(unsigned char)*q])
        q++;
    if (*q == '"') { /* no escapes: the common case */
        lua_pushlstring(ps->L, quote + 1, (size_t)(q - quote - 1));
        ps->p = q + 1;
        return 0;
    }
    luaL_Buffer b;
    luaL_buffinit(ps->L, &b);
    const char *run = quote + 1;
    for (;;) {
        luaL_addlstring(&b, run, (size_t)(q - run));
        if (*q == '"')
            break;
        if (*q != '\\')
            return string_error(ps, quote, q);
        if (q + 1 >= ps->end || q[1] == '\n' || q[1] == '\r')
            return fail_at(ps, quote, "unterminated string");
        size_t n = add_escape(ps, &b, q);
        if (n == 0)
            return -1;
        q += n;
        run = q;
        while (!string_stop[(unsigned char)*q])
            q++;
    }
    luaL_pushresult(&b);
    ps->p = q + 1;
    return 0;
}

/* The double of the number text s..e (valid JSON), independent of the locale. */
static double number_value(lua_State *L, const char *s, const char *e)
{
    char *stop;
    double d = strtod(s, &stop);
    if (stop == e)
        return d;
    /* the locale's decimal point is not '.' (os.setlocale): parse a copy with
     * the locale's, as Lua does for its own numbers */
    size_t n = (size_t)(e - s);
    char small[64];
    char *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy)
        luaL_error(L, "json.decode: not enough memory");
    char point = localeconv()->decimal_point[0];
    for (size_t k = 0; k < n; k++)
        copy[k] = s[k] == '.' ? point : s[k];
    copy[n] = '\0';
    d = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return d;
}

/* Pushes the number at ps->p: an integer when it is written without fraction
 * or exponent and fits in int64, else a float. */
static int parse_number(struct parser *ps)
{
    const char *s = ps->p, *q = s;
    int negative = *q == '-';
    q += negative;
    if (!is_digit(*q)) {
        ps->p = q;
        return unexpected(ps, "expected a digit after '-'");
    }
    if (q[0] == '0' && is_digit(q[1]))
        return fail_at(ps, s, "leading zeros are not allowed in numbers");
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    int fits = 1;
    for (; is_digit(*q); q++) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (limit - d) / 10)
            fits = 0;
        else
            v = v * 10 + d;
    }
    int integral = 1;
    if (*q == '.') {
        q++;
        if (!is_digit(*q)) {
            ps->p = q;
            return unexpected(ps, "expected a digit after '.' in a number");
        }
        while (is_digit(*q))
            q++;
        integral = 0;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!is_digit(*q)) {
            ps->p = q;
            return unexpected(ps, "expected a digit in the exponent of a number");
        }
        while (is_digit(*q))
            q++;
        integral = 0;
    }
    ps->p = q;
    if (integral && fits)
        lua_pushinteger(ps->L, negative ? (lua_Integer)(0 - v) : (lua_Integer)v);
    else
        lua_pushnumber(ps->L, number_value(ps->L, s, q));
    return 0;
}

static int parse_value(struct parser *ps);

/* Enters an array or object at ps->p: checks the depth, pushes the table. */
static int enter_container(struct parser *ps, int mt, int narr, int nrec)
{
    if (ps->depth >= BBIT_JSON_MAX_DEPTH) {
        char message[64];
        snprintf(message, sizeof message, "nesting deeper than %d levels", BBIT_JSON_MAX_DEPTH);
        return fail_at(ps, ps->p, message);
    }
    if (!lua_checkstack(ps->L, 8))
        return fail_at(ps, ps->p, "not enough memory for the nesting");
    ps->depth++;
    lua_createtable(ps->L, narr, nrec);
    lua_pushvalue(ps->L, mt);
    lua_setmetatable(ps->L, -2);
    ps->p++;
    return skip_blanks(ps);
}

/* ps->p is not at '"' where an object key is expected. */
static int key_error(struct parser *ps, int after_comma)
{
    char c = *ps->p;
    if (c == '\'' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return unexpected(ps, after_comma
                                  ? "expected a string key after ',' (keys need double quotes)"
                                  : "expected a string key or '}' (keys need double quotes)");
    if (!after_comma)
        return unexpected(ps, "expected a string key or '}'");
    if (c == '}' && ps->strict)
        return unexpected(ps, "expected a string key after ',' (trailing commas are not "
                              "allowed in strict JSON)");
    return unexpected(ps, "expected a string key after ','");
}

/* Pushes the object at ps->p ('{'). */
static int parse_object(struct parser *ps)
{
    lua_State *L = ps->L;
    if (enter_container(ps, ps->object_mt, 0, 4) != 0) // [object]
        return -1;
    if (*ps->p == '}') {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (int after_comma = 0;; after_comma = 1) {
        if (*ps->p != '"')
            return key_error(ps, after_comma);
        const char *key_at = ps->p;
        if (parse_string(ps) != 0)
            return -1;
        lua_pushvalue(L, -1); // [object, key, key]
        if (lua_rawget(L, -3) != LUA_TNIL) {
            /* the key as written (escapes and all), cut when long */
            int n = (int)(ps->p - key_at - 2);
            char message[96];
            snprintf(message, sizeof message, "duplicate key \"%.*s%s\"", n > 60 ? 60 : n,
                     key_at + 1, n > 60 ? "..." : "");
            return fail_at(ps, key_at, message);
        }
        lua_pop(L, 1); // [object, key]
        if (skip_blanks(ps) != 0)
            return -1;
        if (*ps->p != ':')
            return unexpected(ps, "expected ':' after an object key");
        ps->p++;
        if (skip_blanks(ps) != 0 || parse_value(ps) != 0)
            return -1;
        lua_rawset(L, -3); // [object]
        if (skip_blanks(ps) != 0)
            return -1;
        if (*ps->p == ',') {
            ps->p++;
            if (skip_blanks(ps) != 0)
                return -1;
            if (*ps->p == '}' && !ps->strict) /* a trailing comma */
                break;
        } else if (*ps->p == '}') {
            break;
        } else {
            return unexpected(ps, "expected ',' or '}' after an object member");
        }
    }
    ps->p++;
    ps->depth--;
    return 0;
}

/* Pushes the array at ps->p ('['). */
static int parse_array(struct parser *ps)
{
    lua_State *L = ps->L;
    if (enter_container(ps, ps->array_mt, 4, 0) != 0) // [array]
        return -1;
    if (*ps->p == ']') {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (lua_Integer n = 1;; n++) {
        if (parse_value(ps) != 0)
            return -1;
        lua_rawseti(L, -2, n);
        if (skip_blanks(ps) != 0)
            return -1;
        if (*ps->p == ',') {
            ps->p++;
            if (skip_blanks(ps) != 0)
                return -1;
            if (*ps->p == ']') {
                if (ps->strict)
                    return unexpected(ps, "expected a value after ',' (trailing commas are "
                                          "not allowed in strict JSON)");
                break; /* a trailing comma */
            }
        } else if (*ps->p == ']') {
            break;
        } else {
            return unexpected(ps, "expected ',' or ']' after an array element");
        }
    }
    ps->p++;
    ps->depth--;
    return 0;
}

/* Pushes the value at ps->p (blanks already skipped) and moves past it. */
static int parse_value(struct parser *ps)
{
    const char *p = ps->p;
    switch (*p) {
    case '"': return parse_string(ps);
    case '{': return parse_object(ps);
    case '[': return parse_array(ps);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return parse_number(ps);
    case 't':
        if (ps->end - p >= 4 && memcmp(p, "true", 4) == 0) {
            lua_pushboolean(ps->L, 1);
            ps->p += 4;
            return 0;
        }
        break;
    case 'f':
        if (ps->end - p >= 5 && memcmp(p, "false", 5) == 0) {
            lua_pushboolean(ps->L, 0);
            ps->p += 5;
            return 0;
        }
        break;
    case 'n':
        if (ps->end - p >= 4 && memcmp(p, "null", 4) == 0) {
            lua_pushlightuserdata(ps->L, JSON_NULL);
            ps->p += 4;
            return 0;
        }
        break;
    case '\'':
        return unexpected(ps, "expected a value (strings need double quotes, not single quotes)");
    default:
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return unexpected(ps, "expected a value");
    }
    return unexpected(ps, "expected a value (strings need double quotes; the literals are "
                          "true, false and null)");
}

// value = core.json.decode(text [, name [, strict]]) / nil, "NAME:line:column: what"
// (text: a string or a buffer, see core.fs.read)
static int json_decode(lua_State *L)
{
    size_t len;
    const char *text = bbit_check_bytes(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "<string>");
    int strict = lua_toboolean(L, 3);
    lua_settop(L, 3);
    luaL_getmetatable(L, OBJECT_MT);
    luaL_getmetatable(L, ARRAY_MT); // [text, name, strict, object_mt, array_mt]
    struct parser ps = {.L = L, .text = text, .end = text + len, .p = text,
                        .strict = strict, .object_mt = 4, .array_mt = 5};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3; /* a UTF-8 byte order mark */
    if (skip_blanks(&ps) != 0 || parse_value(&ps) != 0 || skip_blanks(&ps) != 0 ||
        (ps.p < ps.end && unexpected(&ps, "trailing data after the JSON value") != 0)) {
        unsigned line, column;
        bbit_jsonc_position(text, len, ps.error_at, &line, &column);
        return bbit_fail(L, "%s:%d:%d: %s", name, (int)line, (int)column, ps.message);
    }
    return 1;
}

/* ===========================================================================
 * Encode */

struct path_step {
    const void *table; /* the container at this level */
    const char *key;   /* the member being written, or NULL for an array index */
    size_t key_len;
    lua_Integer index;
};

struct key_ref {
    const char *s;
    size_t len;
};

struct encoder {
    char *out; /* first field: NULL once released */
    size_t len, cap;
    struct path_step *steps;
    int depth, steps_cap;
    struct key_ref *keys; /* a stack: each object sorts its own segment */
    size_t nkeys, keys_cap;
    int indent; /* 0 = compact */
    lua_State *L;
    int object_mt, array_mt; /* stack indices */
    char error[160];
};

static void encoder_release(struct encoder *e)
{
    free(e->out);
    free(e->steps);
    free(e->keys);
    e->out = NULL;
    e->steps = NULL;
    e->keys = NULL;
}

static int encoder_close(lua_State *L)
{
    encoder_release(luaL_checkudata(L, 1, ENCODER_MT));
    return 0;
}

/* Grows *buf to hold `need` items of `size` bytes; raises on out of memory
 * (the encoder's __gc frees what was allocated). */
static void grow(lua_State *L, void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * size);
    if (!p)
        luaL_error(L, "json.encode: not enough memory");
    *buf = p;
    *cap = n;
}

static inline void reserve(struct encoder *e, size_t n)
{
    if (e->len + n > e->cap)
        grow(e->L, (void **)&e->out, &e->cap, e->len + n, 1);
}

static inline void put(struct encoder *e, const char *s, size_t n)
{
    reserve(e, n);
    memcpy(e->out + e->len, s, n);
    e->len += n;
}

static inline void put_char(struct encoder *e, char c)
{
    reserve(e, 1);
    e->out[e->len++] = c;
}

static void put_newline_indent(struct encoder *e, int depth)
{
    size_t n = (size_t)e->indent * (size_t)depth;
    reserve(e, n + 1);
    e->out[e->len++] = '\n';
    memset(e->out + e->len, ' ', n);
    e->len += n;
}

static int encode_fail(struct encoder *e, const char *message)
{
    snprintf(e->error, sizeof e->error, "%s", message);
    return -1;
}

static void put_string(struct encoder *e, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_char(e, '"');
    size_t run = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(e, s + run, k - run);
        run = k + 1;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put(e, esc, 6);
            continue;
        }
        put(e, esc, 2);
    }
    put(e, s + run, n - run);
    put_char(e, '"');
}

/* The shortest of %.15g..%.17g that reads back as d, with ".0" when it would
 * read as an integer. */
static int put_float(struct encoder *e, double d)
{
    if (isnan(d) || isinf(d))
        return encode_fail(e, isnan(d) ? "cannot encode NaN" : "cannot encode infinity");
    char s[40];
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(s, sizeof s, "%.*g", precision, d);
        if (strtod(s, NULL) == d)
            break;
    }
    /* printf and strtod follow the locale (a Lua script may call
     * os.setlocale); JSON's decimal point is always '.' */
    char point = localeconv()->decimal_point[0], *at = point != '.' ? strchr(s, point) : NULL;
    if (at)
        *at = '.';
    if (!strpbrk(s, ".eE"))
        strcat(s, ".0");
    put(e, s, strlen(s));
    return 0;
}

static int encode_value(struct encoder *e, int idx);

enum shape { SHAPE_NONE, SHAPE_OBJECT, SHAPE_ARRAY };

static enum shape marker(struct encoder *e, int idx)
{
    enum shape s = SHAPE_NONE;
    if (lua_getmetatable(e->L, idx)) {
        if (lua_rawequal(e->L, -1, e->object_mt))
            s = SHAPE_OBJECT;
        else if (lua_rawequal(e->L, -1, e->array_mt))
            s = SHAPE_ARRAY;
        lua_pop(e->L, 1);
    }
    return s;
}

struct key_census {
    size_t strings, integers;
    int other_type; /* a key type that is neither, or LUA_TNONE */
    lua_Integer min, max;
};

/* Counts the keys of the table at idx; pushes its string keys on e->keys. */
static void take_census(struct encoder *e, int idx, struct key_census *c)
{
    lua_State *L = e->L;
    *c = (struct key_census){0, 0, LUA_TNONE, 0, 0};
    lua_pushnil(L);
    while (lua_next(L, idx)) { // [key, value]
        int type = lua_type(L, -2);
        if (type == LUA_TSTRING) {
            grow(L, (void **)&e->keys, &e->keys_cap, e->nkeys + 1, sizeof *e->keys);
            struct key_ref *k = &e->keys[e->nkeys++];
            k->s = lua_tolstring(L, -2, &k->len); /* anchored by the table */
            c->strings++;
        } else if (lua_isinteger(L, -2)) {
            lua_Integer i = lua_tointeger(L, -2);
            if (c->integers == 0 || i < c->min)
                c->min = i;
            if (c->integers == 0 || i > c->max)
                c->max = i;
            c->integers++;
        } else {
            c->other_type = type;
        }
        lua_pop(L, 1);
    }
}

static enum shape decide_shape(struct encoder *e, enum shape marked, const struct key_census *c)
{
    char message[96];
    if (c->other_type != LUA_TNONE) {
        snprintf(message, sizeof message, "unsupported table key type %s",
                 c->other_type == LUA_TNUMBER ? "float" : lua_typename(e->L, c->other_type));
        encode_fail(e, message);
        return SHAPE_NONE;
    }
    int dense = c->integers == 0 || (c->min == 1 && c->max == (lua_Integer)c->integers);
    if (marked == SHAPE_ARRAY && c->strings) {
        encode_fail(e, "array has string keys");
        return SHAPE_NONE;
    }
    if (marked == SHAPE_OBJECT && c->integers) {
        encode_fail(e, "object has integer keys (JSON object keys are strings)");
        return SHAPE_NONE;
    }
    if (c->strings && c->integers) {
        encode_fail(e, "mixed table keys (strings and integers)");
        return SHAPE_NONE;
    }
    if (!dense) {
        encode_fail(e, "sparse array (keys are not 1..n; use json.null for null)");
        return SHAPE_NONE;
    }
    if (marked != SHAPE_NONE)
        return marked;
    return c->integers ? SHAPE_ARRAY : SHAPE_OBJECT;
}

static int compare_keys(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int r = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (r)
        return r;
    return (x->len > y->len) - (x->len < y->len);
}

/* Enters a container level: checks depth and cycles, records the table. */
static int enter(struct encoder *e, int idx)
{
    const void *table = lua_topointer(e->L, idx);
    if (e->depth >= BBIT_JSON_MAX_DEPTH) {
        char message[64];
        snprintf(message, sizeof message, "nesting deeper than %d levels", BBIT_JSON_MAX_DEPTH);
        return encode_fail(e, message);
    }
    for (int d = 0; d < e->depth; d++)
        if (e->steps[d].table == table)
            return encode_fail(e, "cycle (a table contains itself)");
    size_t cap = (size_t)e->steps_cap;
    grow(e->L, (void **)&e->steps, &cap, (size_t)e->depth + 1, sizeof *e->steps);
    e->steps_cap = (int)cap;
    e->steps[e->depth++] = (struct path_step){table, NULL, 0, 0};
    luaL_checkstack(e->L, 8, "JSON nesting");
    return 0;
}

static int encode_array(struct encoder *e, int idx, lua_Integer n)
{
    lua_State *L = e->L;
    if (n == 0) {
        put(e, "[]", 2);
        return 0;
    }
    put_char(e, '[');
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            put_char(e, ',');
        if (e->indent)
            put_newline_indent(e, e->depth);
        e->steps[e->depth - 1].index = i;
        lua_rawgeti(L, idx, i);
        if (encode_value(e, lua_gettop(L)) != 0)
            return -1;
        lua_pop(L, 1);
    }
    if (e->indent)
        put_newline_indent(e, e->depth - 1);
    put_char(e, ']');
    return 0;
}

static int encode_object(struct encoder *e, int idx, size_t first_key)
{
    lua_State *L = e->L;
    size_t count = e->nkeys - first_key;
    if (count == 0) {
        put(e, "{}", 2);
        return 0;
    }
    qsort(e->keys + first_key, count, sizeof *e->keys, compare_keys);
    put_char(e, '{');
    for (size_t k = first_key; k < first_key + count; k++) {
        struct key_ref key = e->keys[k]; /* by value: nested objects may move e->keys */
        if (k > first_key)
            put_char(e, ',');
        if (e->indent)
            put_newline_indent(e, e->depth);
        put_string(e, key.s, key.len);
        if (e->indent)
            put(e, ": ", 2);
        else
            put_char(e, ':');
        struct path_step *step = &e->steps[e->depth - 1];
        step->key = key.s;
        step->key_len = key.len;
        lua_pushlstring(L, key.s, key.len);
        lua_rawget(L, idx);
        if (encode_value(e, lua_gettop(L)) != 0)
            return -1;
        lua_pop(L, 1);
    }
    if (e->indent)
        put_newline_indent(e, e->depth - 1);
    put_char(e, '}');
    e->nkeys = first_key;
    return 0;
}

static int encode_table(struct encoder *e, int idx)
{
    if (enter(e, idx) != 0)
        return -1;
    e->depth--; /* the census errors belong to the path of the parent */
    enum shape marked = marker(e, idx);
    size_t first_key = e->nkeys;
    struct key_census census;
    take_census(e, idx, &census);
    enum shape shape = decide_shape(e, marked, &census);
    if (shape == SHAPE_NONE)
        return -1;
    e->depth++;
    int r = shape == SHAPE_ARRAY ? encode_array(e, idx, (lua_Integer)census.integers)
                                 : encode_object(e, idx, first_key);
    if (r != 0)
        return -1;
    e->depth--;
    return 0;
}

static int encode_value(struct encoder *e, int idx)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        put(e, "null", 4);
        return 0;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(e, "true", 4);
        else
            put(e, "false", 5);
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            char s[32];
            int n = snprintf(s, sizeof s, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
            put(e, s, (size_t)n);
            return 0;
        }
        return put_float(e, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(e, s, n);
        return 0;
    }
    case LUA_TTABLE:
        return encode_table(e, idx);
    case LUA_TLIGHTUSERDATA:
        if (is_null(L, idx)) {
            put(e, "null", 4);
            return 0;
        }
        /* fall through */
    default: {
        char message[96];
        const char *type = luaL_typename(L, idx);
        if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
            type = lua_tostring(L, -1); /* e.g. FILE*; stays on the stack */
        snprintf(message, sizeof message, "cannot encode a %s value", type);
        return encode_fail(e, message);
    }
    }
}

static int is_identifier(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Pushes the path of the failed value: $.a["b-c"][2] (array indices 1-based, as in Lua). */
static void push_path(lua_State *L, const struct encoder *e)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '$');
    for (int d = 0; d < e->depth; d++) {
        const struct path_step *step = &e->steps[d];
        if (!step->key) {
            char s[32];
            snprintf(s, sizeof s, "[" LUA_INTEGER_FMT "]", (LUAI_UACINT)step->index);
            luaL_addstring(&b, s);
        } else if (is_identifier(step->key, step->key_len)) {
            luaL_addchar(&b, '.');
            luaL_addlstring(&b, step->key, step->key_len);
        } else {
            luaL_addstring(&b, "[\"");
            for (size_t k = 0; k < step->key_len && k < 60; k++) {
                if (step->key[k] == '"' || step->key[k] == '\\')
                    luaL_addchar(&b, '\\');
                luaL_addchar(&b, step->key[k]);
            }
            luaL_addstring(&b, step->key_len > 60 ? "...\"]" : "\"]");
        }
    }
    luaL_pushresult(&b);
}

// text = core.json.encode(value [, indent]) / nil, "json.encode: $.path: what"
// indent 0 (default): compact; n > 0: pretty with n spaces and a final newline.
static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_Integer indent = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, indent >= 0 && indent <= 16, 2, "indent must be 0..16");
    lua_settop(L, 1);
    struct encoder *e = lua_newuserdatauv(L, sizeof *e, 0);
    memset(e, 0, sizeof *e);
    luaL_setmetatable(L, ENCODER_MT);
    luaL_getmetatable(L, OBJECT_MT);
    luaL_getmetatable(L, ARRAY_MT); // [value, encoder, object_mt, array_mt]
    e->L = L;
    e->indent = (int)indent;
    e->object_mt = 3;
    e->array_mt = 4;
    if (encode_value(e, 1) != 0) {
        push_path(L, e);
        lua_pushfstring(L, "json.encode: %s: %s", lua_tostring(L, -1), e->error);
        encoder_release(e);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (indent)
        put_char(e, '\n');
    lua_pushlstring(L, e->out ? e->out : "", e->len);
    encoder_release(e);
    return 1;
}

/* ===========================================================================
 * Module */

static const luaL_Reg json_functions[] = {
    {"decode", json_decode},
    {"encode", json_encode},
    {NULL, NULL},
};

int luaopen_bbit_core_json(lua_State *L)
{
    static const luaL_Reg no_methods[] = {{NULL, NULL}};
    bbit_new_handle_type(L, ENCODER_MT, no_methods, encoder_close);
    luaL_newlib(L, json_functions); // [core.json]
    luaL_newmetatable(L, OBJECT_MT);
    lua_setfield(L, -2, "object_mt");
    luaL_newmetatable(L, ARRAY_MT);
    lua_setfield(L, -2, "array_mt");
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
