/* The Lua host: opens the libraries, registers the raw modules and installs
 * the searcher that finds stdlib modules (`require "bbit.json"`) in the
 * binary, or in $BBIT_DEV_DIR/stdlib when a checkout's files must win. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbit/host.h"
#include "bbit/luax.h"

#ifndef BBIT_VERSION
#define BBIT_VERSION "0.0.0"
#endif

const struct bbit_embedded *bbit_embedded_find(const char *path)
{
    for (const struct bbit_embedded *e = bbit_embedded_files; e->path; e++)
        if (strcmp(e->path, path) == 0)
            return e;
    return NULL;
}

/* Bytecode runs only on the Lua release it was compiled by (tools/embed.c,
 * at build time): a liblua upgraded to another release since gets the text. */
static int bytecode_usable(void)
{
    static int usable = -1;
    if (usable < 0)
        usable = strstr(lua_ident, LUA_RELEASE) != NULL;
    return usable;
}

static const char *dev_dir(void)
{
    const char *d = getenv("BBIT_DEV_DIR");
    return (d && *d) ? d : NULL;
}

/* The searcher: "bbit.x.y" -> stdlib/bbit/x/y.lua (dev dir first, then built-in). */
static int stdlib_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (strncmp(name, "bbit.", 5) != 0 && strcmp(name, "bbit") != 0)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "stdlib/");
    for (const char *p = name; *p; p++)
        luaL_addchar(&b, *p == '.' ? '/' : *p);
    luaL_addstring(&b, ".lua");
    luaL_pushresult(&b); // [name, relpath]
    const char *rel = lua_tostring(L, -1);
    const char *dev = dev_dir();
    if (dev) {
        lua_pushfstring(L, "%s/%s", dev, rel); // [name, relpath, file]
        const char *file = lua_tostring(L, -1);
        if (access(file, R_OK) == 0) {
            if (luaL_loadfile(L, file) != LUA_OK)
                return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name,
                                  file, lua_tostring(L, -1));
            lua_pushvalue(L, -2); // [name, relpath, file, chunk, file]
            return 2;
        }
        lua_pop(L, 1);
    }
    const struct bbit_embedded *e = bbit_embedded_find(rel);
    if (!e) {
        lua_pushfstring(L, "no built-in module '%s'", rel);
        return 1;
    }
    lua_pushfstring(L, "=[builtin]/%s", rel); /* also the name compiled into the chunk */
    int rc = bytecode_usable()
                 ? luaL_loadbufferx(L, e->chunk, e->chunk_size, lua_tostring(L, -1), "b")
                 : luaL_loadbufferx(L, e->data, e->size, lua_tostring(L, -1), "t");
    if (rc != LUA_OK)
        return luaL_error(L, "error loading built-in module '%s':\n\t%s", name,
                          lua_tostring(L, -1));
    lua_pushfstring(L, "[builtin]/%s", rel);
    return 2;
}

// source = core.host.embedded(path): a built-in file's text, or nil
static int host_embedded(lua_State *L)
{
    const struct bbit_embedded *e = bbit_embedded_find(luaL_checkstring(L, 1));
    if (!e)
        return 0;
    lua_pushlstring(L, e->data, e->size);
    return 1;
}

// bytecode = core.host.embedded_chunk(path): a built-in file compiled (load it with mode "b"),
// or nil (no such file, or the running Lua is not the release it was compiled by)
static int host_embedded_chunk(lua_State *L)
{
    const struct bbit_embedded *e = bbit_embedded_find(luaL_checkstring(L, 1));
    if (!e || !bytecode_usable())
        return 0;
    lua_pushlstring(L, e->chunk, e->chunk_size);
    return 1;
}

// paths = core.host.embedded_list(): every built-in file, sorted
static int host_embedded_list(lua_State *L)
{
    lua_newtable(L);
    int i = 1;
    for (const struct bbit_embedded *e = bbit_embedded_files; e->path; e++) {
        lua_pushstring(L, e->path);
        lua_rawseti(L, -2, i++);
    }
    return 1;
}

// path = core.host.exe(): the running binary (to re-invoke bbit from scripts)
static int host_exe(lua_State *L)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0)
        return bbit_fail_errno(L, "host.exe: /proc/self/exe");
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

int luaopen_bbit_core_host(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"embedded", host_embedded},
        {"embedded_chunk", host_embedded_chunk},
        {"embedded_list", host_embedded_list},
        {"exe", host_exe},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_pushstring(L, BBIT_VERSION);
    lua_setfield(L, -2, "version");
    const char *dev = dev_dir();
    if (dev) {
        lua_pushstring(L, dev);
        lua_setfield(L, -2, "dev_dir");
    }
    return 1;
}

void bbit_host_open(lua_State *L)
{
    luaL_openlibs(L);
    bbit_open_core(L);
    // Insert the stdlib searcher right after the preload searcher.
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers"); // [package, searchers]
    int n = (int)lua_rawlen(L, -1);
    for (int i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, stdlib_searcher);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
}
