/* Lexical path checks and glob matching (no Lua, no filesystem access).
 *
 * Paths are POSIX byte strings separated by '/'. Nothing here resolves
 * symlinks: callers that must not follow a symlink out of a tree check with
 * lstat as they go (the object store, archive extraction and bbit.fs do).
 *
 * Glob syntax (bbit_glob_match, bbit_ignore_match):
 *   *      any run of characters within one segment (never '/'); also matches
 *          names starting with '.'
 *   ?      one character other than '/'
 *   [abc] [a-z] [!a-z] [^a-z]   a character class (one character, never '/')
 *   \c     the character c itself
 *   **     as a whole segment: zero or more whole segments (so "a" followed
 *          by "/" and "**" also matches "a"); elsewhere it behaves like '*'
 */
#ifndef BBIT_PATH_H
#define BBIT_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Why bbit_path_safe_relative refused a path. */
enum bbit_path_error {
    BBIT_PATH_OK = 0,
    BBIT_PATH_EMPTY,    /* "" */
    BBIT_PATH_ABSOLUTE, /* starts with '/' */
    BBIT_PATH_ESCAPES,  /* after normalizing, starts with ".." */
    BBIT_PATH_NOMEM,
};

/* The lexical normal form of `path`, malloc'd (free it), NULL when out of
 * memory: repeated '/' collapse, '.' segments go, "x/.." pairs cancel, a
 * trailing '/' goes. Leading ".." segments of a relative path stay ("../a");
 * ".." above "/" stays "/". "" and "." give ".". */
char *bbit_path_normalize(const char *path);

/* Normalizes `path` and checks that it names something inside a directory
 * it is relative to: not absolute, not empty, no escape with "..". On success
 * *out is the malloc'd normal form and the result is BBIT_PATH_OK; otherwise
 * *out is NULL. */
enum bbit_path_error bbit_path_safe_relative(const char *path, char **out);

/* A message for a bbit_path_error ("is absolute", "escapes its root with ..."). */
const char *bbit_path_error_message(enum bbit_path_error e);

/* Is `path` equal to `root` or below it, lexically (both normalized first)?
 * An absolute and a relative path are never within each other. Relative
 * paths are below "." unless they start with "..". Returns false when out of
 * memory. */
bool bbit_path_is_within(const char *root, const char *path);

/* Does the whole of `path` match glob `pattern` (syntax above)? */
bool bbit_glob_match(const char *pattern, const char *path);

/* .gitignore-style matching of one pattern against a relative path:
 *   a trailing '/' restricts the pattern to directories;
 *   a leading '/' anchors it at the root;
 *   a pattern without '/' (after removing those) matches any one segment of
 *     the path ("node_modules", "*.log"); every segment but the last is a
 *     directory;
 *   a pattern with '/' matches the whole path ("docs/x.md", "**" + "/build").
 * `is_dir` tells whether the path's last segment is a directory. */
bool bbit_ignore_match(const char *pattern, const char *path, bool is_dir);

/* Like bbit_ignore_match but only tests the last segment of `path` for
 * patterns without '/': for walkers that never descend into an ignored
 * directory, so the parents were already tested. */
bool bbit_ignore_match_last(const char *pattern, const char *path, bool is_dir);

#endif
