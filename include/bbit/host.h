/* The Lua host: state set-up, the built-in (embedded) Lua files and the raw
 * C modules. See runtime/host.c and runtime/lua/init.c. */
#ifndef BBIT_HOST_H
#define BBIT_HOST_H

#include <stddef.h>

struct lua_State;

/* One built-in Lua file, compiled in by tools/embed.c. `path` is relative to
 * the source root: "stdlib/bbit/json.lua", "scripts/commands/run.lua"; `data`
 * is its text, `chunk` its Lua bytecode (what is run). */
struct bbit_embedded {
    const char *path;
    const char *data;
    size_t size;
    const char *chunk;
    size_t chunk_size;
};
extern const struct bbit_embedded bbit_embedded_files[]; /* NULL-terminated */

/* Registers every raw module (bbit.core.*) in package.preload. */
void bbit_open_core(struct lua_State *L);

/* Opens the standard libraries, the raw modules and the stdlib searcher. */
void bbit_host_open(struct lua_State *L);

/* Async-signal-safe: sends `sig` to the process group of every running child
 * started by bbit.core.proc (runtime/lua/proc.c). */
void bbit_proc_signal_all(int sig);

/* The message of the error raised in Lua when SIGINT/SIGTERM arrives. */
#define BBIT_INTERRUPTED "bbit: interrupted"

/* The embedded file at `path`, or NULL. */
const struct bbit_embedded *bbit_embedded_find(const char *path);

#endif
