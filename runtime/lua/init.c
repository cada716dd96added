/* The raw C modules (bbit.core.*), loaded into package.preload: the shape of
 * Lua's linit.c. Add a module here and nowhere else. */
#include "bbit/host.h"
#include "bbit/luax.h"

int luaopen_bbit_core_host(lua_State *L);
int luaopen_bbit_core_json(lua_State *L);
int luaopen_bbit_core_hash(lua_State *L);
int luaopen_bbit_core_archive(lua_State *L);
int luaopen_bbit_core_http(lua_State *L);
int luaopen_bbit_core_fs(lua_State *L);
int luaopen_bbit_core_proc(lua_State *L);
int luaopen_bbit_core_term(lua_State *L);
int luaopen_bbit_core_listener(lua_State *L);
int luaopen_bbit_core_store(lua_State *L);
int luaopen_bbit_core_server(lua_State *L);

static const luaL_Reg core_modules[] = {
    {"bbit.core.host", luaopen_bbit_core_host},
    {"bbit.core.json", luaopen_bbit_core_json},
    {"bbit.core.hash", luaopen_bbit_core_hash},
    {"bbit.core.archive", luaopen_bbit_core_archive},
    {"bbit.core.http", luaopen_bbit_core_http},
    {"bbit.core.fs", luaopen_bbit_core_fs},
    {"bbit.core.proc", luaopen_bbit_core_proc},
    {"bbit.core.term", luaopen_bbit_core_term},
    {"bbit.core.listener", luaopen_bbit_core_listener},
    {"bbit.core.store", luaopen_bbit_core_store},
    {"bbit.core.server", luaopen_bbit_core_server},
    {NULL, NULL},
};

void bbit_open_core(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); // [preload]
    for (const luaL_Reg *m = core_modules; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
}
