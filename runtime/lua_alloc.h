/* Lua's allocator. Objects of up to 256 bytes (most of Lua's: strings,
 * tables, closures) come from size classes carved out of 2 MiB mapped chunks
 * (transparent huge pages where allowed) and go back to a free list per
 * class; bigger ones from malloc. With every small
 * object in glibc's heap, a 10,000-component tag spent a seventh of its time
 * in malloc sorting and merging free chunks (malloc_consolidate,
 * unlink_chunk), more per object the bigger the heap. Once the command is
 * done (bbit_lua_alloc_exiting), nothing is freed one object at a time: the
 * process exit returns the memory. Sanitizer builds (BBIT_SANITIZED) use
 * malloc for every object. One Lua state, one thread: no locking. */
#ifndef BBIT_LUA_ALLOC_H
#define BBIT_LUA_ALLOC_H

#include <stddef.h>

/* Sanitizer builds keep the plain allocator paths (and free everything, for
 * the leak checks). */
#if defined(__SANITIZE_ADDRESS__)
#define BBIT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BBIT_SANITIZED 1
#endif
#endif

void *bbit_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void bbit_lua_alloc_exiting(void);

#endif
