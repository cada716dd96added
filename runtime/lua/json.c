/* bbit.core.json: JSON/JSONC decode to Lua values and encode (compact or
 * pretty, keys sorted bytewise). The public API is stdlib/bbit/json.lua.
 *
 * Decode: the text is copied, comments and trailing commas are blanked in the
 * copy (runtime/core/jsonc.c, unless strict), the copy is checked (first error
 * with a message) and parsed by cJSON; then one walk over the copy and the
 * cJSON tree builds the Lua value. The walk reads positions (duplicate keys),
 * integers (exact int64, not cJSON's double) and strings (cJSON's valuestring
 * is cut at an escaped \u0000) from the text; cJSON gives the floats.
 *
 * Values: objects are tables with metatable core.object_mt, arrays tables with
 * core.array_mt, null is the light userdata core.null.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bbit/jsonc.h"
#include "bbit/luax.h"

#define OBJECT_MT "bbit.json.object"
#define ARRAY_MT "bbit.json.array"
#define TREE_MT "bbit.json.tree"
#define ENCODER_MT "bbit.json.encoder"

static const char json_null_sentinel = 0;
#define JSON_NULL ((void *)&json_null_sentinel)

static int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == JSON_NULL;
}

/* ===========================================================================
 * Decode */

struct tree_box {
    cJSON *root;
};

static int tree_close(lua_State *L)
{
    struct tree_box *box = luaL_checkudata(L, 1, TREE_MT);
    cJSON *root = box->root;
    box->root = NULL;
    cJSON_Delete(root);
    return 0;
}

struct walk {
    lua_State *L;
    const char *text; /* the blanked copy */
    size_t len;
    size_t i;
    int object_mt, array_mt; /* stack indices of the metatables */
};

static void walk_blanks(struct walk *w)
{
    while (w->i < w->len && (w->text[w->i] == ' ' || w->text[w->i] == '\t' ||
                             w->text[w->i] == '\n' || w->text[w->i] == '\r'))
        w->i++;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char h = s[k];
        v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    return v;
}

static void add_utf8(luaL_Buffer *b, unsigned cp)
{
    char out[4];
    int n;
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
    luaL_addlstring(b, out, (size_t)n);
}

/* Adds the escape at s (the backslash; already checked); returns its length. */
static size_t add_escape(luaL_Buffer *b, const char *s)
{
    switch (s[1]) {
    case 'b': luaL_addchar(b, '\b'); return 2;
    case 'f': luaL_addchar(b, '\f'); return 2;
    case 'n': luaL_addchar(b, '\n'); return 2;
    case 'r': luaL_addchar(b, '\r'); return 2;
    case 't': luaL_addchar(b, '\t'); return 2;
    case 'u': break;
    default: luaL_addchar(b, s[1]); return 2;
    }
    unsigned cp = hex4(s + 2);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned low = hex4(s + 8);
        add_utf8(b, 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
        return 12;
    }
    add_utf8(b, cp);
    return 6;
}

/* Pushes the (checked) string at w->i, the opening quote. */
static void walk_string(struct walk *w)
{
    const char *s = w->text + w->i + 1;
    size_t n = 0;
    while (s[n] != '"' && s[n] != '\\')
        n++;
    if (s[n] == '"') { /* no escapes: the common case */
        lua_pushlstring(w->L, s, n);
        w->i += n + 2;
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(w->L, &b);
    luaL_addlstring(&b, s, n);
    while (s[n] != '"') {
        if (s[n] == '\\') {
            n += add_escape(&b, s + n);
        } else {
            size_t run = n;
            while (s[n] != '"' && s[n] != '\\')
                n++;
            luaL_addlstring(&b, s + run, n - run);
        }
    }
    luaL_pushresult(&b);
    w->i += n + 2;
}

/* Parses [-]digits as an int64; 0 when it does not fit. */
static int exact_integer(const char *s, size_t n, lua_Integer *out)
{
    int negative = s[0] == '-';
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (size_t k = (size_t)negative; k < n; k++) {
        unsigned d = (unsigned)(s[k] - '0');
        if (v > (limit - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = negative ? (lua_Integer)(0 - v) : (lua_Integer)v;
    return 1;
}

static void walk_number(struct walk *w, const cJSON *node)
{
    const char *s = w->text + w->i;
    size_t n = 0;
    int integral = 1;
    while (w->i + n < w->len && s[n] && strchr("0123456789+-.eE", s[n])) {
        if (s[n] == '.' || s[n] == 'e' || s[n] == 'E')
            integral = 0;
        n++;
    }
    w->i += n;
    lua_Integer v;
    if (integral && exact_integer(s, n, &v))
        lua_pushinteger(w->L, v);
    else
        lua_pushnumber(w->L, node->valuedouble);
}

static int walk_value(struct walk *w, const cJSON *node);

/* Pushes `duplicate key "k"`, the key as written between key_at and key_end
 * (its quotes included), cut when long. */
static void push_duplicate_error(struct walk *w, size_t key_at, size_t key_end)
{
    size_t n = key_end - key_at - 2;
    luaL_Buffer b;
    luaL_buffinit(w->L, &b);
    luaL_addstring(&b, "duplicate key \"");
    luaL_addlstring(&b, w->text + key_at + 1, n > 60 ? 60 : n);
    luaL_addstring(&b, n > 60 ? "...\"" : "\"");
    luaL_pushresult(&b);
}

static int walk_object(struct walk *w, const cJSON *node)
{
    lua_State *L = w->L;
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, w->object_mt);
    lua_setmetatable(L, -2); // [object]
    w->i++;
    walk_blanks(w);
    if (w->text[w->i] == '}') {
        w->i++;
        return 0;
    }
    for (const cJSON *child = node->child;; child = child->next) {
        walk_blanks(w);
        size_t key_at = w->i;
        walk_string(w); // [object, key]
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TNIL) { // [object, key, previous]
            push_duplicate_error(w, key_at, w->i);
            w->i = key_at; /* the error's position */
            return -1;
        }
        lua_pop(L, 1);
        walk_blanks(w);
        w->i++; /* ':' */
        if (walk_value(w, child) != 0)
            return -1;
        lua_rawset(L, -3); // [object]
        walk_blanks(w);
        if (w->text[w->i++] == '}')
            return 0;
    }
}

static int walk_array(struct walk *w, const cJSON *node)
{
    lua_State *L = w->L;
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, w->array_mt);
    lua_setmetatable(L, -2); // [array]
    w->i++;
    walk_blanks(w);
    if (w->text[w->i] == ']') {
        w->i++;
        return 0;
    }
    lua_Integer n = 0;
    for (const cJSON *child = node->child;; child = child->next) {
        if (walk_value(w, child) != 0)
            return -1;
        lua_rawseti(L, -2, ++n);
        walk_blanks(w);
        if (w->text[w->i++] == ']')
            return 0;
    }
}

/* Pushes the value at w->i, whose cJSON node is `node`. */
static int walk_value(struct walk *w, const cJSON *node)
{
    luaL_checkstack(w->L, 8, "JSON nesting");
    if (node == NULL) { /* cannot happen: the checker and cJSON agree on valid JSON */
        lua_pushliteral(w->L, "internal error: cJSON and the checker disagree");
        return -1;
    }
    walk_blanks(w);
    switch (w->text[w->i]) {
    case '{': return walk_object(w, node);
    case '[': return walk_array(w, node);
    case '"': walk_string(w); return 0;
    case 't': lua_pushboolean(w->L, 1); w->i += 4; return 0;
    case 'f': lua_pushboolean(w->L, 0); w->i += 5; return 0;
    case 'n': lua_pushlightuserdata(w->L, JSON_NULL); w->i += 4; return 0;
    default: walk_number(w, node); return 0;
    }
}

/* Returns nil, "NAME:line:column: message". */
static int decode_fail(lua_State *L, const char *text, size_t len, const char *name,
                       size_t offset, const char *message)
{
    unsigned line, column;
    bbit_jsonc_position(text, len, offset, &line, &column);
    return bbit_fail(L, "%s:%d:%d: %s", name, (int)line, (int)column, message);
}

// value = core.json.decode(text [, name [, strict]]) / nil, "NAME:line:column: what"
static int json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "<string>");
    int strict = lua_toboolean(L, 3);
    lua_settop(L, 3);
    char *copy = lua_newuserdatauv(L, len + 1, 0); // [text, name, strict, copy]
    memcpy(copy, text, len);
    copy[len] = '\0';
    struct bbit_json_error err;
    if ((!strict && bbit_jsonc_blank(copy, len, &err) != 0) ||
        bbit_json_check(copy, len, BBIT_JSON_MAX_DEPTH, strict, &err) != 0)
        return decode_fail(L, text, len, name, err.offset, err.message);

    struct tree_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->root = NULL;
    luaL_setmetatable(L, TREE_MT); // [text, name, strict, copy, tree]
    const char *end = NULL;
    box->root = cJSON_ParseWithOpts(copy, &end, 1);
    if (!box->root)
        return decode_fail(L, text, len, name, end ? (size_t)(end - copy) : 0,
                           "invalid JSON (rejected by cJSON)");

    luaL_getmetatable(L, OBJECT_MT);
    luaL_getmetatable(L, ARRAY_MT); // [text, name, strict, copy, tree, object_mt, array_mt]
    struct walk w = {L, copy, len, len >= 3 && memcmp(copy, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0,
                     6, 7};
    if (walk_value(&w, box->root) != 0) { // [..., partial..., message]
        const char *message = lua_tostring(L, -1);
        return decode_fail(L, text, len, name, w.i, message);
    }
    cJSON *root = box->root;
    box->root = NULL;
    cJSON_Delete(root);
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
    bbit_new_handle_type(L, TREE_MT, no_methods, tree_close);
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
