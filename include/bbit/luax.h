/* Conventions for the Lua bindings (runtime/lua/NAME.c). Read before writing one.
 *
 * Names. Each raw module is one C file runtime/lua/<name>.c ending in one
 * exported luaopen_bbit_core_<name>, listed in runtime/lua/init.c. Raw modules
 * are the runtime's (`require "bbit.core.fs"`); scripts use the public Lua
 * tier in stdlib/bbit/<name>.lua. A one-line comment above each Lua-facing C
 * function gives its Lua signature: `// digest = core.hash.sha256(data)`.
 *
 * Errors. Raise (luaL_error / luaL_check*) only on misuse: wrong argument
 * types, a closed handle. A failure of the environment (missing file, refused
 * connection, hostile archive) returns `nil, "module.fn: subject: reason"`
 * (bbit_fail), like luaL_fileresult. The stdlib turns those into raised
 * failures with context; its try_* variants pass nil, err on.
 *
 * Handles (copy liolib.c). Full userdata with a named metatable; methods via
 * __index; __gc and __close share one idempotent close. Create the userdata in
 * a closed state *before* acquiring the C resource, so a raise in between
 * leaks nothing; clear the pointer before freeing the resource.
 *
 * Stack and memory. Lua strings are borrowed for the call only: copy before
 * popping or yielding. Code that calls into Lua saves and restores the top.
 * Every luaL_ref has its luaL_unref. Callbacks from libcurl/libarchive call Lua
 * only through lua_pcall and turn failure into the library's abort return.
 * Never longjmp over live C resources: free, then raise. Annotate the stack
 * after non-trivial push sequences: // [pkg, preload]
 */
#ifndef BBIT_LUAX_H
#define BBIT_LUAX_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* Pushes nil and a formatted message; returns 2 (for `return bbit_fail(...)`). */
int bbit_fail(lua_State *L, const char *fmt, ...);

/* Pushes nil, "<what>: <strerror(errno)>", errno; returns 3. */
int bbit_fail_errno(lua_State *L, const char *what);

/* Sets the functions of `methods` (NULL-terminated) as __index of a new
 * metatable `tname`, with `close` as __gc and __close. Leaves the stack as it was. */
void bbit_new_handle_type(lua_State *L, const char *tname, const luaL_Reg *methods,
                          lua_CFunction close);

/* The userdata at idx of type tname; raises "attempt to use a closed <what>"
 * when *(void**)ud (the first field, the resource pointer) is NULL. */
void *bbit_check_open(lua_State *L, int idx, const char *tname, const char *what);

/* Bytes owned by Lua (malloc'd, freed by __gc): a file read as a buffer
 * (core.fs.read(path, true)) is decoded without a copy into a Lua string,
 * which for a big file costs as much as the decoding (fresh memory). */
typedef struct {
    char *data;
    size_t len;
} bbit_buffer;

/* Pushes an empty buffer (its type registered on first use). */
bbit_buffer *bbit_push_buffer(lua_State *L);

/* The bytes of the string or buffer at idx (raises otherwise). */
const char *bbit_check_bytes(lua_State *L, int idx, size_t *len);

/* Seconds on the monotonic clock (for deadlines and durations). */
double bbit_monotonic(void);


#endif
