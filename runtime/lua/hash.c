/* bbit.core.hash: placeholder until the module lands. */
#include "bbit/luax.h"

int luaopen_bbit_core_hash(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
