/* Lua's allocator (see lua_alloc.h). */
#include "lua_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int g_exiting;

void bbit_lua_alloc_exiting(void)
{
    g_exiting = 1;
}

#ifdef BBIT_SANITIZED
/* Sanitizer builds: every object from malloc, so ASan sees each one. */
void *bbit_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}
#else

#define GRAIN 16
#define SMALL_MAX 256                   /* bigger objects come from malloc */
#define CLASSES (SMALL_MAX / GRAIN)     /* 16, 32, ..., 256 bytes */
#define CHUNK (2 * 1024 * 1024)         /* small objects are carved from these */

static void *free_list[CLASSES]; /* a freed object holds the next one */
static char *chunk_at, *chunk_end;

static size_t class_of(size_t size)
{
    return (size + GRAIN - 1) / GRAIN - 1;
}

static void *small_alloc(size_t size)
{
    size_t c = class_of(size);
    void *p = free_list[c];
    if (p) {
        memcpy(&free_list[c], p, sizeof p);
        return p;
    }
    size_t bytes = (c + 1) * GRAIN;
    if ((size_t)(chunk_end - chunk_at) < bytes) {
        /* mapped, not from malloc: interleaved with big buffers they kept
         * glibc's heap fragmented. Never unmapped: the objects are reused. */
        char *chunk = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunk == MAP_FAILED)
            return NULL;
        madvise(chunk, CHUNK, MADV_HUGEPAGE);
        chunk_at = chunk;
        chunk_end = chunk + CHUNK;
    }
    p = chunk_at;
    chunk_at += bytes;
    return p;
}

static void small_free(void *p, size_t size)
{
    size_t c = class_of(size);
    memcpy(p, &free_list[c], sizeof p);
    free_list[c] = p;
}

void *bbit_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (ptr == NULL)
        osize = 0; /* Lua passes the object's type then, not a size */
    if (nsize == 0) {
        if (ptr && !g_exiting) {
            if (osize <= SMALL_MAX)
                small_free(ptr, osize);
            else
                free(ptr);
        }
        return NULL;
    }
    if (ptr && osize > SMALL_MAX && nsize > SMALL_MAX)
        return realloc(ptr, nsize);
    if (ptr && osize <= SMALL_MAX && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize))
        return ptr;
    void *p = nsize <= SMALL_MAX ? small_alloc(nsize) : malloc(nsize);
    if (!p || !ptr)
        return p; /* on failure Lua keeps the old block */
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    if (osize <= SMALL_MAX)
        small_free(ptr, osize);
    else
        free(ptr);
    return p;
}
#endif
