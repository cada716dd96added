/* bbit.core.store: the object store (runtime/core/store.c) as a Lua handle.
 *
 * Failures of the environment (missing or corrupt object, invalid id, I/O)
 * return nil, "object store: <path or id>: <reason>": the store's messages
 * already name the module and the subject, so they are passed on unchanged.
 * Wrong argument types and a closed handle raise. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbit/luax.h"
#include "bbit/store.h"

#define STORE_TYPE "bbit.core.store"

typedef struct {
    bbit_store *store; /* NULL once closed */
} store_handle;

static bbit_store *check_store(lua_State *L)
{
    store_handle *h = bbit_check_open(L, 1, STORE_TYPE, "store");
    return h->store;
}

/* The id argument at idx, or NULL (with nil, err pushed: 2 results) when it
 * is not an id. An embedded NUL would hide behind a valid C string. */
static const char *check_id(lua_State *L, int idx)
{
    size_t len;
    const char *id = luaL_checklstring(L, idx, &len);
    if (len == strlen(id) && bbit_store_is_id(id))
        return id;
    char err[BBIT_STORE_ERR_SIZE];
    if (len != strlen(id))
        bbit_fail(L, "object store: invalid object id (contains a NUL byte)");
    else if (bbit_store_check_id(id, err, sizeof err) != 0)
        bbit_fail(L, "%s", err);
    return NULL;
}

/* The optional non-negative integer argument at idx (0 when absent). */
static uint64_t opt_size(lua_State *L, int idx)
{
    lua_Integer n = luaL_optinteger(L, idx, 0);
    luaL_argcheck(L, n >= 0, idx, "size must not be negative");
    return (uint64_t)n;
}

// store = core.store.open(dir, {create = bool, fsync = bool})
static int store_open(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    unsigned flags = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "create") != LUA_TNIL && lua_toboolean(L, -1))
            flags |= BBIT_STORE_CREATE;
        if (lua_getfield(L, 2, "fsync") != LUA_TNIL && lua_toboolean(L, -1))
            flags |= BBIT_STORE_FSYNC;
        lua_pop(L, 2);
    }
    store_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->store = NULL;
    luaL_setmetatable(L, STORE_TYPE); // [.., handle]
    char err[BBIT_STORE_ERR_SIZE];
    h->store = bbit_store_open(dir, flags, err, sizeof err);
    if (h->store == NULL)
        return bbit_fail(L, "%s", err);
    return 1;
}

// store:close(); also __gc and __close
static int store_close(lua_State *L)
{
    store_handle *h = luaL_checkudata(L, 1, STORE_TYPE);
    bbit_store *store = h->store;
    h->store = NULL;
    bbit_store_close(store);
    return 0;
}

// dir = store:dir()
static int store_dir(lua_State *L)
{
    lua_pushstring(L, bbit_store_dir(check_store(L)));
    return 1;
}

// id = store:put(data)
static int store_put(lua_State *L)
{
    bbit_store *store = check_store(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    char id[BBIT_STORE_ID_LEN + 1], err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_put(store, data, len, id, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushstring(L, id);
    return 1;
}

// id, size = store:put_file(path)
static int store_put_file(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *path = luaL_checkstring(L, 2);
    char id[BBIT_STORE_ID_LEN + 1], err[BBIT_STORE_ERR_SIZE];
    uint64_t size = 0;
    if (bbit_store_put_file(store, path, id, &size, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushstring(L, id);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

// id = store:put_raw_file(path, expected_id?, max_size?)
static int store_put_raw_file(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *path = luaL_checkstring(L, 2);
    const char *expected = NULL;
    if (!lua_isnoneornil(L, 3) && (expected = check_id(L, 3)) == NULL)
        return 2;
    uint64_t max_size = opt_size(L, 4);
    char id[BBIT_STORE_ID_LEN + 1], err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_put_raw_file(store, path, expected, max_size, id, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushstring(L, id);
    return 1;
}

// bool = store:has(id)
static int store_has(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *id = check_id(L, 2);
    if (id == NULL)
        return 2;
    char err[BBIT_STORE_ERR_SIZE];
    int rc = bbit_store_has(store, id, err, sizeof err);
    if (rc < 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, rc);
    return 1;
}

// path = store:path(id): where the object is (or would be) stored
static int store_path(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *id = check_id(L, 2);
    if (id == NULL)
        return 2;
    char path[PATH_MAX], err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_object_path(store, id, path, sizeof path, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushstring(L, path);
    return 1;
}

// string = push_buffer(lightuserdata, len): run under lua_pcall by store:get
static int push_buffer(lua_State *L)
{
    const char *data = lua_touserdata(L, 1);
    size_t len = (size_t)lua_tointeger(L, 2);
    lua_pushlstring(L, data, len);
    return 1;
}

// data = store:get(id, max_size?): max_size 0 or absent = no limit
static int store_get(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *id = check_id(L, 2);
    if (id == NULL)
        return 2;
    uint64_t max_size = opt_size(L, 3);
    char err[BBIT_STORE_ERR_SIZE];
    void *data;
    size_t len;
    if (bbit_store_get(store, id, max_size, &data, &len, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    // copy in protected mode so a memory error cannot leak data
    lua_pushcfunction(L, push_buffer);
    lua_pushlightuserdata(L, data);
    lua_pushinteger(L, (lua_Integer)len);
    int status = lua_pcall(L, 2, 1, 0);
    free(data);
    if (status != LUA_OK)
        return lua_error(L);
    return 1;
}

// true = store:get_file(id, dest_path, mode?): mode defaults to 0644
static int store_get_file(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *id = check_id(L, 2);
    if (id == NULL)
        return 2;
    const char *dest = luaL_checkstring(L, 3);
    lua_Integer mode = luaL_optinteger(L, 4, 0644);
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 4, "mode must be within 0..07777");
    char err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_get_file(store, id, dest, (mode_t)mode, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

// true, size = store:verify(id)
static int store_verify(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *id = check_id(L, 2);
    if (id == NULL)
        return 2;
    char err[BBIT_STORE_ERR_SIZE];
    uint64_t size = 0;
    if (bbit_store_verify(store, id, &size, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

// bytes = store:size_on_disk(id)
static int store_size_on_disk(lua_State *L)
{
    bbit_store *store = check_store(L);
    const char *id = check_id(L, 2);
    if (id == NULL)
        return 2;
    char err[BBIT_STORE_ERR_SIZE];
    uint64_t size = 0;
    if (bbit_store_size_on_disk(store, id, &size, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushinteger(L, (lua_Integer)size);
    return 1;
}

// true = store:begin_pack(): later writes go into one pack (see bbit/store.h)
static int store_begin_pack(lua_State *L)
{
    bbit_store *store = check_store(L);
    char err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_pack_begin(store, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

// {objects, packed, merged} = store:commit_pack(sync?)
static int store_commit_pack(lua_State *L)
{
    bbit_store *store = check_store(L);
    bool sync = lua_toboolean(L, 2);
    struct bbit_store_pack_result result;
    char err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_pack_commit(store, sync, &result, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)result.objects);
    lua_setfield(L, -2, "objects");
    lua_pushboolean(L, result.packed);
    lua_setfield(L, -2, "packed");
    lua_pushinteger(L, (lua_Integer)result.merged);
    lua_setfield(L, -2, "merged");
    return 1;
}

// store:abort_pack()
static int store_abort_pack(lua_State *L)
{
    bbit_store_pack_abort(check_store(L));
    return 0;
}

/* Appends one "<id> <size>\n" header and the object's stored bytes to out. */
static int append_raw(bbit_store *store, const char *id, int out, const char *path, char *err,
                      size_t errlen)
{
    uint64_t size;
    if (bbit_store_size_on_disk(store, id, &size, err, errlen) != 0)
        return -1;
    char header[BBIT_STORE_ID_LEN + 32];
    int n = snprintf(header, sizeof header, "%s %llu\n", id, (unsigned long long)size);
    if (write(out, header, (size_t)n) != n) {
        snprintf(err, errlen, "cannot write the pack %s: %s", path, strerror(errno));
        return -1;
    }
    return bbit_store_copy_raw(store, id, out, err, errlen);
}

// bytes = store:write_pack(ids, path): the upload format of POST .../objects/pack
// (runtime/server/pack.c): for each id, "<id> <size>\n" and its stored bytes
static int store_write_pack(lua_State *L)
{
    bbit_store *store = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *path = luaL_checkstring(L, 3);
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        if (check_id(L, -1) == NULL)
            return 2;
        lua_pop(L, 1);
    }
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return bbit_fail(L, "cannot write the pack %s: %s", path, strerror(errno));
    char err[BBIT_STORE_ERR_SIZE];
    int rc = 0;
    for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
        lua_geti(L, 2, i);
        rc = append_raw(store, lua_tostring(L, -1), out, path, err, sizeof err);
        lua_pop(L, 1);
    }
    off_t total = lseek(out, 0, SEEK_CUR);
    if (close(out) != 0 && rc == 0) {
        rc = -1;
        snprintf(err, sizeof err, "cannot write the pack %s: %s", path, strerror(errno));
    }
    if (rc != 0)
        return bbit_fail(L, "%s", err);
    lua_pushinteger(L, (lua_Integer)total);
    return 1;
}

// bool = core.store.is_id(s)
static int store_is_id(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    lua_pushboolean(L, lua_type(L, 1) == LUA_TSTRING && len == strlen(s) && bbit_store_is_id(s));
    return 1;
}

int luaopen_bbit_core_store(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"close", store_close},
        {"dir", store_dir},
        {"put", store_put},
        {"put_file", store_put_file},
        {"put_raw_file", store_put_raw_file},
        {"has", store_has},
        {"path", store_path},
        {"get", store_get},
        {"get_file", store_get_file},
        {"verify", store_verify},
        {"size_on_disk", store_size_on_disk},
        {"begin_pack", store_begin_pack},
        {"commit_pack", store_commit_pack},
        {"abort_pack", store_abort_pack},
        {"write_pack", store_write_pack},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"open", store_open},
        {"is_id", store_is_id},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, STORE_TYPE, methods, store_close);
    luaL_newlib(L, fns);
    lua_pushinteger(L, BBIT_STORE_ZSTD_LEVEL);
    lua_setfield(L, -2, "zstd_level");
    return 1;
}
