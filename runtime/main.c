/* bbit's entry point: a Lua state with the stdlib, then bbit._cli.main(args),
 * whose return value is the exit code (SPEC §3). */
#include <locale.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bbit/host.h"
#include "bbit/luax.h"
#include "bbit/sha256.h"
#include "lua_alloc.h"

enum { EXIT_INTERNAL = 70 };

/* SIGINT/SIGTERM: stop the children, then raise BBIT_INTERRUPTED in Lua at
 * the next instruction (the way lua.c handles Ctrl-C), so pcalls and
 * to-be-closed variables clean up and the CLI exits 130. A second signal
 * kills at once (default action restored). */
static lua_State *g_L;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    lua_pushstring(L, BBIT_INTERRUPTED);
    lua_error(L);
}

static void on_signal(int sig)
{
    signal(sig, SIG_DFL);
    bbit_proc_signal_all(SIGTERM);
    lua_sethook(g_L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}


/* A command touches tens of MB of Lua tables once (a 10,000-component
 * workspace): page faults were a fifth of its time. The heap is grown once
 * by 30 MiB (only touched pages count) and marked for transparent huge pages
 * (where the kernel allows them: "madvise" mode), so it faults in 2 MiB at a
 * time, not 4 KiB; freed memory stays in it. Only whole 2 MiB-aligned pages
 * can be huge: the heap's start up to its first 2 MiB boundary is skipped
 * (allocated, never touched), or a command's first allocations, which land
 * there, took ~200 faults of 4 KiB (a tag: 569 faults, 341 of them its own). */
static void heap_setup(void)
{
#ifndef BBIT_SANITIZED
    enum { RESERVE = 30 << 20, HUGE_PAGE = 2 << 20, SLACK = 4096 };
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* big buffers come from the heap too */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    char *start0 = sbrk(0);
    size_t head = start0 == (char *)-1 ? 0 : (size_t)(-(uintptr_t)start0 & (HUGE_PAGE - 1));
    static void *volatile skipped __attribute__((unused)); /* volatile: else the call can go */
    if (head > 2 * SLACK) /* a page of slack for malloc's headers: RESERVE starts below the boundary */
        skipped = malloc(head - SLACK); /* never freed: its pages are never touched */
    char *p = malloc(RESERVE);
    char *end = sbrk(0);
    long page = sysconf(_SC_PAGESIZE);
    if (p && page > 0 && end != (char *)-1 && p + RESERVE <= end) { /* p is in the brk heap */
        char *start = (char *)(((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1));
        madvise(start, (size_t)(end - start), MADV_HUGEPAGE);
    }
    free(p);
#endif
}

static int on_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "bbit: internal error, please report: %s\n", msg ? msg : "(no message)");
    return 0; /* abort() follows */
}

int main(int argc, char **argv)
{
    (void)bbit_sha256_implementation(); /* on the main thread: see bbit/sha256.h */
    heap_setup();
    // LC_CTYPE only: libarchive's pax writer needs UTF-8; cJSON needs the C
    // numeric locale (NOTES-deps).
    setlocale(LC_CTYPE, "C.UTF-8");
    signal(SIGPIPE, SIG_IGN);

    lua_State *L = lua_newstate(bbit_lua_alloc, NULL);
    if (L)
        lua_atpanic(L, on_panic);
    if (!L) {
        fputs("bbit: out of memory\n", stderr);
        return EXIT_INTERNAL;
    }
    bbit_host_open(L);
    g_L = L;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    lua_pushcfunction(L, traceback);          // [tb]
    lua_getglobal(L, "require");
    lua_pushstring(L, "bbit._cli");
    int code = EXIT_INTERNAL;
    if (lua_pcall(L, 1, 1, 1) == LUA_OK) {   // [tb, cli]
        lua_getfield(L, -1, "main");        // [tb, cli, main]
        lua_createtable(L, argc, 0);
        for (int i = 1; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i);
        }
        if (lua_pcall(L, 1, 1, 1) == LUA_OK)
            code = (int)luaL_optinteger(L, -1, 0);
        else
            fprintf(stderr, "bbit: internal error, please report:\n%s\n", lua_tostring(L, -1));
    } else {
        fprintf(stderr, "bbit: internal error, please report:\n%s\n", lua_tostring(L, -1));
    }
    fflush(stdout);
    bbit_lua_alloc_exiting();
    lua_close(L);
#ifndef BBIT_SANITIZED
    /* Nothing is left to run at exit but libraries' own cleanups (OpenSSL,
     * libcurl, the dynamic linker's): skipping them saves about 1 ms here. */
    fflush(NULL);
    _exit(code);
#endif
    return code;
}
