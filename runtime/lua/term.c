/* bbit.core.term: what the terminal can do. */
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "bbit/luax.h"

// bool = core.term.isatty(fd)
static int term_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

// columns = core.term.width(fd): terminal width, or nil when fd is not a terminal
static int term_width(lua_State *L)
{
    struct winsize ws;
    if (ioctl((int)luaL_checkinteger(L, 1), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
        return 0;
    lua_pushinteger(L, ws.ws_col);
    return 1;
}

// seconds = core.term.clock(): monotonic time in seconds (for durations)
static int term_clock(lua_State *L)
{
    lua_pushnumber(L, bbit_monotonic());
    return 1;
}

int luaopen_bbit_core_term(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"isatty", term_isatty},
        {"width", term_width},
        {"clock", term_clock},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
