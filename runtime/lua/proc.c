/* bbit.core.proc: processes. Placeholder until the module lands. */
#include <poll.h>
#include <unistd.h>

#include "bbit/luax.h"

// n = core.proc.wait(fds, timeout_ms): waits until one fd is readable or the timeout
static int proc_wait(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int timeout = (int)luaL_checkinteger(L, 2);
    int n = (int)lua_rawlen(L, 1);
    struct pollfd fds[256];
    if (n > 256)
        n = 256;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        fds[i].fd = (int)lua_tointeger(L, -1);
        fds[i].events = POLLIN;
        lua_pop(L, 1);
    }
    lua_pushinteger(L, poll(fds, (nfds_t)n, timeout));
    return 1;
}

// n = core.proc.cpu_count()
static int proc_cpu_count(lua_State *L)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

int luaopen_bbit_core_proc(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"wait", proc_wait},
        {"cpu_count", proc_cpu_count},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
