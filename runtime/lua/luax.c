/* Helpers shared by the bindings; the conventions are in include/bbit/luax.h. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

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

void *bbit_check_open(lua_State *L, int idx, const char *tname, const char *what)
{
    void **ud = luaL_checkudata(L, idx, tname);
    if (*ud == NULL)
        luaL_error(L, "attempt to use a closed %s", what);
    return ud;
}
