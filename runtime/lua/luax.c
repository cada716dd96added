/* Helpers shared by the bindings; the conventions are in include/bbit/luax.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bbit/luax.h"

int bbit_fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

int bbit_fail_errno(lua_State *L, const char *what)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    lua_pushinteger(L, e);
    return 3;
}

void bbit_new_handle_type(lua_State *L, const char *tname, const luaL_Reg *methods,
                          lua_CFunction close)
{
    luaL_newmetatable(L, tname);      // [mt]
    lua_newtable(L);                  // [mt, methods]
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");   // [mt]
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}

#define BUFFER_TYPE "bbit.buffer"

static int buffer_gc(lua_State *L)
{
    bbit_buffer *b = luaL_checkudata(L, 1, BUFFER_TYPE);
    free(b->data);
    b->data = NULL;
    b->len = 0;
    return 0;
}

bbit_buffer *bbit_push_buffer(lua_State *L)
{
    bbit_buffer *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->data = NULL;
    b->len = 0;
    if (luaL_newmetatable(L, BUFFER_TYPE)) {
        lua_pushcfunction(L, buffer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

const char *bbit_check_bytes(lua_State *L, int idx, size_t *len)
{
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tolstring(L, idx, len);
    bbit_buffer *b = luaL_testudata(L, idx, BUFFER_TYPE);
    if (!b)
        luaL_typeerror(L, idx, "string or buffer");
    *len = b->len;
    return b->data ? b->data : "";
}

void *bbit_check_open(lua_State *L, int idx, const char *tname, const char *what)
{
    void **ud = luaL_checkudata(L, idx, tname);
    if (*ud == NULL)
        luaL_error(L, "attempt to use a closed %s", what);
    return ud;
}

double bbit_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
