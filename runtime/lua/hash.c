/* bbit.core.hash: SHA-256 of strings and files, and an incremental hasher
 * handle. The hashing itself is runtime/core/sha256.c (Lua-free). */
#include <errno.h>
#include <stdint.h>

#include "bbit/luax.h"
#include "bbit/sha256.h"

#define HASHER_TYPE "bbit.core.hash.sha256"

/* The hasher handle: the first field is the resource (NULL once closed). */
typedef struct {
    bbit_sha256 *h;
} hasher_ud;

/* nil, "<what>: <path>: <strerror>", errno (errno kept across the formatting). */
static int fail_path(lua_State *L, const char *what, const char *path)
{
    int e = errno;
    const char *subject = lua_pushfstring(L, "%s: %s", what, path);
    errno = e;
    return bbit_fail_errno(L, subject);
}

static void push_hex(lua_State *L, const unsigned char digest[BBIT_SHA256_LEN])
{
    char hex[BBIT_SHA256_HEX_LEN + 1];
    bbit_sha256_hex(digest, hex);
    lua_pushlstring(L, hex, BBIT_SHA256_HEX_LEN);
}

// hex = core.hash.sha256(data)
static int hash_sha256(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    unsigned char digest[BBIT_SHA256_LEN];
    if (bbit_sha256_buffer(data, len, digest) != 0)
        return bbit_fail_errno(L, "hash.sha256");
    push_hex(L, digest);
    return 1;
}

// bytes = core.hash.sha256_raw(data): the 32 raw digest bytes
static int hash_sha256_raw(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    unsigned char digest[BBIT_SHA256_LEN];
    if (bbit_sha256_buffer(data, len, digest) != 0)
        return bbit_fail_errno(L, "hash.sha256_raw");
    lua_pushlstring(L, (const char *)digest, BBIT_SHA256_LEN);
    return 1;
}

// hex, size = core.hash.sha256_file(path) | nil, err, errno
static int hash_sha256_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    unsigned char digest[BBIT_SHA256_LEN];
    uint64_t size = 0;
    if (bbit_sha256_file(path, digest, &size) != 0)
        return fail_path(L, "hash.sha256_file", path);
    push_hex(L, digest);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

// h = core.hash.sha256_new()
static int hash_sha256_new(lua_State *L)
{
    hasher_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
    ud->h = NULL; // closed until the resource exists
    luaL_setmetatable(L, HASHER_TYPE);
    ud->h = bbit_sha256_new();
    if (!ud->h)
        return luaL_error(L, "hash.sha256_new: out of memory");
    return 1;
}

/* The open, unfinished hasher at index 1 (raises otherwise). */
static bbit_sha256 *check_active(lua_State *L, const char *method)
{
    hasher_ud *ud = bbit_check_open(L, 1, HASHER_TYPE, "hasher");
    if (bbit_sha256_finished(ud->h))
        luaL_error(L, "hasher:%s: the hasher is finished (digest already taken)", method);
    return ud->h;
}

// h = h:update(data): adds data; returns the hasher (chainable)
static int hasher_update(lua_State *L)
{
    bbit_sha256 *h = check_active(L, "update");
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (bbit_sha256_update(h, data, len) != 0)
        return bbit_fail_errno(L, "hasher:update");
    lua_settop(L, 1);
    return 1;
}

// size = h:update_file(path) | nil, err, errno: adds a file's content
static int hasher_update_file(lua_State *L)
{
    bbit_sha256 *h = check_active(L, "update_file");
    const char *path = luaL_checkstring(L, 2);
    uint64_t size = 0;
    if (bbit_sha256_update_file(h, path, &size) != 0)
        return fail_path(L, "hash.update_file", path);
    lua_pushinteger(L, (lua_Integer)size);
    return 1;
}

/* Finishes the hasher into digest; raises when it was finished already. */
static void finish(lua_State *L, const char *method, unsigned char digest[BBIT_SHA256_LEN])
{
    bbit_sha256 *h = check_active(L, method);
    if (bbit_sha256_final(h, digest) != 0)
        luaL_error(L, "hasher:%s: OpenSSL failed", method);
}

// hex = h:hexdigest(): finishes the hasher
static int hasher_hexdigest(lua_State *L)
{
    unsigned char digest[BBIT_SHA256_LEN];
    finish(L, "hexdigest", digest);
    push_hex(L, digest);
    return 1;
}

// bytes = h:digest(): finishes the hasher; the 32 raw bytes
static int hasher_digest(lua_State *L)
{
    unsigned char digest[BBIT_SHA256_LEN];
    finish(L, "digest", digest);
    lua_pushlstring(L, (const char *)digest, BBIT_SHA256_LEN);
    return 1;
}

// h:close(): frees the hasher (idempotent; also __gc and __close)
static int hasher_close(lua_State *L)
{
    hasher_ud *ud = luaL_checkudata(L, 1, HASHER_TYPE);
    bbit_sha256 *h = ud->h;
    ud->h = NULL;
    bbit_sha256_free(h);
    return 0;
}

// s = tostring(h)
static int hasher_tostring(lua_State *L)
{
    hasher_ud *ud = luaL_checkudata(L, 1, HASHER_TYPE);
    const char *state = !ud->h ? "closed" : bbit_sha256_finished(ud->h) ? "finished" : "open";
    lua_pushfstring(L, "sha256 hasher (%s)", state);
    return 1;
}

int luaopen_bbit_core_hash(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"update", hasher_update},
        {"update_file", hasher_update_file},
        {"hexdigest", hasher_hexdigest},
        {"digest", hasher_digest},
        {"close", hasher_close},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"sha256", hash_sha256},
        {"sha256_raw", hash_sha256_raw},
        {"sha256_file", hash_sha256_file},
        {"sha256_new", hash_sha256_new},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, HASHER_TYPE, methods, hasher_close);
    luaL_getmetatable(L, HASHER_TYPE);
    lua_pushcfunction(L, hasher_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    return 1;
}
