/* bbit.core.fs: files, directories, atomic writes, tree walks, advisory locks,
 * and the Lua face of runtime/core/path.c (lexical paths, globs).
 *
 * Failures of the environment return nil, "fs.fn: path: reason", errno.
 * C resources that live while Lua may raise (an out-of-memory error while
 * pushing results) are owned by a userdata with __gc (the walk state, the lock
 * handle); everything else is freed before anything is pushed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bbit/dircache.h"
#include "bbit/luax.h"
#include "bbit/path.h"
#include "bbit/sha256.h"

#define LOCK_TYPE "bbit.fs.lock"
#define WALK_TYPE "bbit.fs.walkstate"

/* ---- small helpers ------------------------------------------------------ */

static const char *type_name(mode_t m)
{
    if (S_ISREG(m))
        return "file";
    if (S_ISDIR(m))
        return "dir";
    if (S_ISLNK(m))
        return "link";
    return "other";
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void push_stat(lua_State *L, const struct stat *st)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, type_name(st->st_mode));
    lua_setfield(L, -2, "type");
    set_int(L, "size", (lua_Integer)st->st_size);
    set_int(L, "mode", (lua_Integer)(st->st_mode & 07777));
    set_int(L, "mtime_ns", (lua_Integer)mtime_ns(st));
    set_int(L, "ino", (lua_Integer)st->st_ino);
    set_int(L, "dev", (lua_Integer)st->st_dev);
}

/* nil, "fs.<fn>: <path>: <strerror(err)>", err */
static int fail_path(lua_State *L, const char *fn, const char *path, int err)
{
    errno = err;
    return bbit_fail_errno(L, lua_pushfstring(L, "fs.%s: %s", fn, path));
}

/* A permission mode argument: an integer or an octal string ("644", "0755"). */
static mode_t check_mode(lua_State *L, int idx, mode_t dflt)
{
    if (lua_isnoneornil(L, idx))
        return dflt;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        char *end;
        long v = strtol(s, &end, 8);
        if (*s == '\0' || *end != '\0' || v < 0 || v > 07777)
            luaL_argerror(L, idx, lua_pushfstring(L, "invalid octal mode '%s'", s));
        return (mode_t)v;
    }
    lua_Integer v = luaL_checkinteger(L, idx);
    luaL_argcheck(L, v >= 0 && v <= 07777, idx, "mode out of range 0..0o7777");
    return (mode_t)v;
}

static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* malloc'd directory part of path ("." when there is none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* fsync of a file or a directory (its entries); -1 with errno on failure. */
static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return (r != 0 && errno == EINVAL) ? 0 : r; /* some filesystems cannot */
}

// true = core.fs.sync(path): fsync of a file, or of a directory (its renames and new entries)
static int fs_sync(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (fsync_path(path) != 0)
        return fail_path(L, "sync", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- cwd, chdir, stat ---------------------------------------------------- */

// path = core.fs.cwd()
static int fs_cwd(lua_State *L)
{
    char *dir = getcwd(NULL, 0);
    if (!dir)
        return bbit_fail_errno(L, "fs.cwd");
    lua_pushstring(L, dir);
    free(dir);
    return 1;
}

// true = core.fs.chdir(path)
static int fs_chdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (chdir(path) != 0)
        return fail_path(L, "chdir", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

// info = core.fs.stat(path): {type, size, mode, mtime_ns, ino, dev}; nil, err, errno on failure
static int fs_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return fail_path(L, "stat", path, errno);
    push_stat(L, &st);
    return 1;
}

// info = core.fs.lstat(path): like stat, but a symlink is reported as type "link"
static int fs_lstat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (lstat(path, &st) != 0)
        return fail_path(L, "lstat", path, errno);
    push_stat(L, &st);
    return 1;
}

/* ---- read ---------------------------------------------------------------- */

/* Reads all of fd into a malloc'd buffer; -1 with errno on failure. */
static int read_fd(int fd, size_t hint, char **out, size_t *out_len)
{
    size_t cap = hint + 1 > 4096 ? hint + 1 : 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

// data = core.fs.read(path [, as_buffer]): the whole file, as a string or as a
// buffer (bbit/luax.h: decoders read it without a copy)
static int fs_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int as_buffer = lua_toboolean(L, 2);
    bbit_buffer *b = bbit_push_buffer(L); /* owns the bytes while Lua may raise */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_path(L, "read", path, errno);
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (!e && read_fd(fd, (size_t)st.st_size, &b->data, &b->len) != 0)
        e = errno;
    close(fd);
    if (e)
        return fail_path(L, "read", path, e);
    if (as_buffer)
        return 1;
    lua_pushlstring(L, b->data, b->len);
    free(b->data);
    b->data = NULL;
    return 1;
}

/* ---- atomic write ------------------------------------------------------- */

struct atomic_file {
    int fd;
    char *tmp;
};

/* Creates a unique temp file beside `path` (O_EXCL). -1 with errno on failure. */
static int atomic_begin(struct atomic_file *a, const char *path)
{
    static unsigned counter;
    char *dir = dir_of(path);
    if (!dir)
        return -1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t cap = strlen(dir) + strlen(base) + 64;
    a->tmp = malloc(cap);
    a->fd = -1;
    if (!a->tmp) {
        free(dir);
        errno = ENOMEM;
        return -1;
    }
    for (int tries = 0; tries < 1000; tries++) {
        snprintf(a->tmp, cap, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(), counter++);
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (a->fd >= 0 || errno != EEXIST)
            break;
    }
    int e = errno;
    free(dir);
    if (a->fd < 0) {
        free(a->tmp);
        a->tmp = NULL;
        errno = e;
        return -1;
    }
    return 0;
}

/* Removes the temp file; keeps errno. */
static void atomic_abort(struct atomic_file *a)
{
    int e = errno;
    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    a->fd = -1;
    a->tmp = NULL;
    errno = e;
}

/* chmod, fsync, close, rename over path, fsync the directory. On failure the
 * temp file is gone and errno says why. */
static int atomic_commit(struct atomic_file *a, const char *path, mode_t mode, int sync)
{
    if (fchmod(a->fd, mode) != 0 || (sync && fsync(a->fd) != 0)) {
        atomic_abort(a);
        return -1;
    }
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) != 0 || rename(a->tmp, path) != 0) {
        atomic_abort(a);
        return -1;
    }
    free(a->tmp);
    a->tmp = NULL;
    if (sync) {
        char *dir = dir_of(path);
        int r = dir ? fsync_path(dir) : -1;
        free(dir);
        return r;
    }
    return 0;
}

/* The mode a new version of path gets: `mode` when given (>= 0), else the
 * existing file's permissions, else 0644. */
static mode_t target_mode(const char *path, lua_Integer mode)
{
    if (mode >= 0)
        return (mode_t)mode;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return st.st_mode & 07777;
    return 0644;
}

// true = core.fs.write(path, data, mode?, fsync?): atomic (temp file + rename); mode default: keep or 0644
static int fs_write(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer mode = lua_isnoneornil(L, 3) ? -1 : (lua_Integer)check_mode(L, 3, 0);
    int sync = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
    mode_t m = target_mode(path, mode);
    struct atomic_file a;
    if (atomic_begin(&a, path) != 0)
        return fail_path(L, "write", path, errno);
    if (write_all(a.fd, data, len) != 0) {
        atomic_abort(&a);
        return fail_path(L, "write", path, errno);
    }
    if (atomic_commit(&a, path, m, sync) != 0)
        return fail_path(L, "write", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* Streams fd into the temp file. */
static int copy_fd(int in, int out)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        if (write_all(out, buf, (size_t)r) != 0)
            return -1;
    }
}

// true = core.fs.copy(from, to): a regular file, atomically, with its permission bits
static int fs_copy(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail_path(L, "copy", from, errno);
    struct stat st;
    int e = fstat(in, &st) != 0     ? errno
            : S_ISDIR(st.st_mode)   ? EISDIR
            : !S_ISREG(st.st_mode)  ? EINVAL
                                    : 0;
    if (e) {
        close(in);
        return fail_path(L, "copy", from, e);
    }
    struct atomic_file a;
    if (atomic_begin(&a, to) != 0) {
        e = errno;
        close(in);
        return fail_path(L, "copy", to, e);
    }
    if (copy_fd(in, a.fd) != 0) {
        e = errno;
        atomic_abort(&a);
        close(in);
        return fail_path(L, "copy", lua_pushfstring(L, "%s -> %s", from, to), e);
    }
    close(in);
    if (atomic_commit(&a, to, st.st_mode & 07777, 0) != 0)
        return fail_path(L, "copy", to, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- walk --------------------------------------------------------------- */

struct walk_entry {
    size_t path; /* offset into names, then path_ptr (walk_push) */
    const char *path_ptr;
    mode_t mode;
    int64_t size, mtime_ns;
    uint64_t ino;
};

struct walk_state {
    struct walk_entry *entries;
    size_t n, cap;
    char *names; /* every entry's path, NUL-terminated, back to back */
    size_t names_len, names_cap;
    char *rel; /* the relative path being visited */
    size_t rel_cap;
    /* options (Lua strings borrowed from the options table for the call) */
    const char **ignore;
    int n_ignore;
    int include_dirs, want_stat, max_depth;
    /* walk_digests with a folder-listing cache (bbit/dircache.h): the
     * absolute root, the cache read, the records of this walk */
    const char *root;
    const bbit_dircache *dircache;
    struct bbit_dircache_out *dircache_out;
    int64_t recent_ns;
    int dircache_missed; /* a folder was read, not found in the cache */
    char *abs;           /* root + "/" + rel */
    size_t abs_cap;
    /* the root's parent folder, open (O_PATH): paths under the root are
     * looked up from it (abs + base_skip), not from /: a path's lookup costs
     * per component, a fifth of a stat of an absolute path 6 deep */
    int base_fd;
    size_t base_skip;
    char *base_dir;
    int base_remote; /* the base is on a network filesystem: no listing cache */
    /* the first failure */
    int err;
    char *err_path;
};

/* Frees what a walk allocated as it went (not its options). */
static void walk_free_buffers(struct walk_state *w)
{
    free(w->entries);
    free(w->names);
    free(w->rel);
    free(w->abs);
    free(w->err_path);
}

static int walk_gc(lua_State *L)
{
    struct walk_state *w = luaL_checkudata(L, 1, WALK_TYPE);
    walk_free_buffers(w);
    free(w->ignore);
    memset(w, 0, sizeof *w);
    return 0;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *nb = realloc(*buf, ncap * elem);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int walk_add(struct walk_state *w, const char *rel, size_t rel_len, const struct stat *st,
                    mode_t type)
{
    if (grow((void **)&w->entries, &w->cap, w->n + 1, sizeof *w->entries) != 0 ||
        grow((void **)&w->names, &w->names_cap, w->names_len + rel_len + 1, 1) != 0)
        return -1;
    struct walk_entry *e = &w->entries[w->n++];
    memset(e, 0, sizeof *e);
    e->path = w->names_len;
    memcpy(w->names + w->names_len, rel, rel_len + 1);
    w->names_len += rel_len + 1;
    e->mode = type;
    if (st) {
        e->mode = st->st_mode;
        e->size = (int64_t)st->st_size;
        e->mtime_ns = mtime_ns(st);
        e->ino = (uint64_t)st->st_ino;
    }
    return 0;
}

static int walk_fail(struct walk_state *w, int err)
{
    if (!w->err) {
        w->err = err;
        w->err_path = strdup(w->rel ? w->rel : "");
    }
    return -1;
}

static int walk_ignored(const struct walk_state *w, const char *rel, int is_dir)
{
    for (int i = 0; i < w->n_ignore; i++)
        if (bbit_ignore_match_last(w->ignore[i], rel, is_dir))
            return 1;
    return 0;
}

static mode_t dtype_mode(unsigned char t)
{
    switch (t) {
    case DT_REG:
        return S_IFREG;
    case DT_DIR:
        return S_IFDIR;
    case DT_LNK:
        return S_IFLNK;
    case DT_UNKNOWN:
        return 0;
    default:
        return S_IFIFO; /* some other kind: skipped */
    }
}

static int walk_dir(struct walk_state *w, int fd, const struct stat *st, size_t rel_len, int depth);

/* w->root + "/" + w->rel[0..rel_len) in w->abs; NULL when out of memory. */
static const char *walk_abs(struct walk_state *w, size_t rel_len)
{
    size_t root_len = strlen(w->root);
    if (grow((void **)&w->abs, &w->abs_cap, root_len + 1 + rel_len + 1, 1) != 0)
        return NULL;
    memcpy(w->abs, w->root, root_len);
    if (rel_len) {
        w->abs[root_len] = '/';
        memcpy(w->abs + root_len + 1, w->rel, rel_len);
        root_len += 1 + rel_len;
    }
    w->abs[root_len] = '\0';
    return w->abs;
}

/* One directory entry `name` of the folder open as dfd, or (dfd < 0) of the
 * folder at w->rel (a cached listing: reached by its path from the root's
 * parent, w->base_fd); w->rel holds the parent's relative path. */
static int walk_entry(struct walk_state *w, int dfd, const char *name, unsigned char dtype,
                      size_t rel_len, int depth)
{
    size_t name_len = strlen(name);
    size_t len = rel_len + (rel_len ? 1 : 0) + name_len;
    if (grow((void **)&w->rel, &w->rel_cap, len + 1, 1) != 0)
        return walk_fail(w, ENOMEM);
    if (rel_len)
        w->rel[rel_len] = '/';
    memcpy(w->rel + len - name_len, name, name_len + 1);
    struct stat st;
    mode_t type = dtype_mode(dtype);
    if (w->want_stat || type == 0) {
        const char *at = dfd >= 0 ? name : walk_abs(w, len);
        if (!at)
            return walk_fail(w, ENOMEM);
        if (dfd < 0) {
            dfd = w->base_fd;
            at += w->base_skip;
        }
        if (fstatat(dfd, at, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno == ENOENT ? 0 : walk_fail(w, errno); /* vanished: skip */
        type = st.st_mode & S_IFMT;
    }
    int is_dir = S_ISDIR(type);
    if (!is_dir && !S_ISREG(type) && !S_ISLNK(type))
        return 0;
    if (walk_ignored(w, w->rel, is_dir))
        return 0;
    if ((!is_dir || w->include_dirs) &&
        walk_add(w, w->rel, len, w->want_stat ? &st : NULL, type) != 0)
        return walk_fail(w, ENOMEM);
    if (!is_dir || (w->max_depth > 0 && depth >= w->max_depth))
        return 0;
    if (w->dircache) /* want_stat is set: st is the folder's */
        return walk_dir(w, -1, &st, len, depth + 1);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return walk_fail(w, errno);
    return walk_dir(w, fd, NULL, len, depth + 1);
}

/* A directory entry as the getdents64 system call returns it. */
struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

enum { DIRENT_BUF = 32 * 1024 };

/* The entries of the folder open as fd (but . and ..) as a names block
 * (bbit/dircache.h: type byte, name, NUL), read with getdents64 directly:
 * opendir/readdir cost three more system calls per folder (fcntl twice,
 * fstat), a quarter of a scan of many small component folders. NULL with
 * errno on failure. */
static char *read_names(int fd, size_t *out_len)
{
    char *buf = malloc(DIRENT_BUF), *names = NULL;
    size_t len = 0, cap = 0;
    if (!buf)
        return NULL;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, DIRENT_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64_raw *de = (struct dirent64_raw *)(void *)(buf + off);
            off += de->d_reclen;
            const char *name = de->d_name;
            if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
                continue;
            size_t name_len = strlen(name);
            if (grow((void **)&names, &cap, len + name_len + 2, 1) != 0) {
                errno = ENOMEM;
                goto fail;
            }
            names[len] = (char)de->d_type;
            memcpy(names + len + 1, name, name_len + 1);
            len += name_len + 2;
        }
    }
    free(buf);
    *out_len = len;
    return names ? names : calloc(1, 1); /* an empty folder: an empty block */
fail:
    free(buf);
    free(names);
    return NULL;
}

/* Visits each entry of a names block. */
static int walk_names(struct walk_state *w, int dfd, const char *names, size_t len, size_t rel_len,
                      int depth)
{
    for (size_t i = 0; i < len;) {
        const char *name = names + i + 1;
        size_t name_len = strlen(name);
        int r = walk_entry(w, dfd, name, (unsigned char)names[i], rel_len, depth);
        w->rel[rel_len] = '\0';
        if (r != 0)
            return -1;
        i += name_len + 2;
    }
    return 0;
}

/* Visits the folder at relative path w->rel[0..rel_len), open as fd (this
 * takes it) or, with a listing cache, fd < 0 and its stat st: a cached
 * listing still valid for st is walked without opening the folder. */
static int walk_dir(struct walk_state *w, int fd, const struct stat *st, size_t rel_len, int depth)
{
    const char *abs = NULL;
    int recordable = 0;
    if (w->dircache && st) {
        if (!(abs = walk_abs(w, rel_len)))
            return walk_fail(w, ENOMEM);
        int64_t ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
        recordable = mtime_ns(st) < w->recent_ns && ctime_ns < w->recent_ns;
        size_t len;
        const char *names = bbit_dircache_lookup(w->dircache, abs, st, &len);
        if (names) {
            if (fd >= 0)
                close(fd);
            if (recordable && bbit_dircache_record(w->dircache_out, abs, st, names, len) != 0)
                return walk_fail(w, ENOMEM);
            return walk_names(w, -1, names, len, rel_len, depth);
        }
        w->dircache_missed = 1;
        if (fd < 0 && (fd = openat(w->base_fd, abs + w->base_skip,
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            return walk_fail(w, errno);
        struct stat now; /* the folder stat'ed is the one opened, or its listing is not kept */
        if (recordable && (fstat(fd, &now) != 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino))
            recordable = 0;
    }
    size_t len;
    char *names = read_names(fd, &len);
    int r = names ? 0 : walk_fail(w, errno);
    if (r == 0 && recordable && bbit_dircache_record(w->dircache_out, abs, st, names, len) != 0)
        r = walk_fail(w, ENOMEM);
    if (r == 0)
        r = walk_names(w, fd, names, len, rel_len, depth);
    free(names);
    close(fd);
    return r;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct walk_entry *)a)->path_ptr,
                  ((const struct walk_entry *)b)->path_ptr);
}

static void walk_read_options(lua_State *L, int idx, struct walk_state *w)
{
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "include_dirs");
    w->include_dirs = lua_toboolean(L, -1);
    lua_getfield(L, idx, "stat");
    w->want_stat = lua_toboolean(L, -1);
    lua_getfield(L, idx, "max_depth");
    w->max_depth = lua_isnil(L, -1) ? 0 : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 3);
    if (lua_getfield(L, idx, "ignore") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    luaL_argcheck(L, lua_istable(L, -1), idx, "ignore must be a list of patterns");
    int n = (int)lua_rawlen(L, -1);
    w->ignore = calloc((size_t)n + 1, sizeof *w->ignore);
    if (!w->ignore)
        luaL_error(L, "out of memory");
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad ignore pattern #%d (string expected, got %s)", i,
                       luaL_typename(L, -1));
        w->ignore[w->n_ignore++] = lua_tostring(L, -1); /* anchored by the table */
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void walk_push(lua_State *L, struct walk_state *w)
{
    for (size_t i = 0; i < w->n; i++)
        w->entries[i].path_ptr = w->names + w->entries[i].path;
    if (w->n > 1) /* entries is NULL for an empty walk: qsort needs an array */
        qsort(w->entries, w->n, sizeof *w->entries, entry_cmp);
    lua_createtable(L, (int)w->n, 0);
    for (size_t i = 0; i < w->n; i++) {
        const struct walk_entry *e = &w->entries[i];
        if (w->want_stat) {
            lua_createtable(L, 0, 6);
            lua_pushstring(L, e->path_ptr);
            lua_setfield(L, -2, "path");
            lua_pushstring(L, type_name(e->mode));
            lua_setfield(L, -2, "type");
            set_int(L, "size", (lua_Integer)e->size);
            set_int(L, "mode", (lua_Integer)(e->mode & 07777));
            set_int(L, "mtime_ns", (lua_Integer)e->mtime_ns);
            set_int(L, "ino", (lua_Integer)e->ino);
        } else {
            lua_pushstring(L, e->path_ptr);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

// paths = core.fs.walk(root, {ignore=, include_dirs=, stat=, max_depth=}): sorted relative paths
// of files and symlinks (never followed) below root; nil, err, errno when root is unreadable
static int fs_walk(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    struct walk_state *w = lua_newuserdatauv(L, sizeof *w, 0); // [root, opts, state]
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WALK_TYPE);
    walk_read_options(L, 2, w);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_path(L, "walk", root, errno);
    if (grow((void **)&w->rel, &w->rel_cap, 1, 1) != 0) {
        close(fd);
        return luaL_error(L, "out of memory");
    }
    w->rel[0] = '\0';
    if (walk_dir(w, fd, NULL, 0, 1) != 0) {
        const char *sub = lua_pushstring(L, w->err_path ? w->err_path : "");
        const char *where = *sub ? lua_pushfstring(L, "%s/%s", root, sub) : root;
        int e = w->err;
        lua_pushcfunction(L, walk_gc);
        lua_pushvalue(L, 3);
        lua_call(L, 1, 0);
        return fail_path(L, "walk", where, e);
    }
    walk_push(L, w);             // [root, opts, state, list]
    lua_pushcfunction(L, walk_gc);
    lua_pushvalue(L, 3);
    lua_call(L, 1, 0);           /* free now rather than at the next GC */
    return 1;
}

/* Hashes the sorted entries of a finished walk: path, type, size, mtime,
 * inode, mode. Sets *unstable when an entry is a symlink or changed at or
 * after `recent_ns` (its next change could keep the same mtime). */
static int walk_digest(struct walk_state *w, int64_t recent_ns, char hex[BBIT_SHA256_HEX_LEN + 1],
                       int *unstable)
{
    for (size_t i = 0; i < w->n; i++)
        w->entries[i].path_ptr = w->names + w->entries[i].path;
    if (w->n > 1)
        qsort(w->entries, w->n, sizeof *w->entries, entry_cmp);
    bbit_sha256 *h = bbit_sha256_new();
    if (!h)
        return -1;
    *unstable = 0;
    char line[128];
    for (size_t i = 0; i < w->n; i++) {
        const struct walk_entry *e = &w->entries[i];
        int n = snprintf(line, sizeof line, "%s\t%lld\t%lld\t%llu\t%o\n", type_name(e->mode),
                         (long long)e->size, (long long)e->mtime_ns, (unsigned long long)e->ino,
                         (unsigned)(e->mode & 07777));
        bbit_sha256_update(h, e->path_ptr, strlen(e->path_ptr) + 1);
        bbit_sha256_update(h, line, (size_t)n);
        if (S_ISLNK(e->mode) || e->mtime_ns >= recent_ns)
            *unstable = 1;
    }
    unsigned char digest[BBIT_SHA256_LEN];
    int r = bbit_sha256_final(h, digest);
    bbit_sha256_free(h);
    if (r == 0)
        bbit_sha256_hex(digest, hex);
    return r;
}

// hex, count, unstable = core.fs.walk_digest(root, opts, recent_ns): a digest of
// what `walk(root, opts)` with stat would list, without building the list
static int fs_walk_digest(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    int64_t recent_ns = (int64_t)luaL_optinteger(L, 3, INT64_MAX);
    lua_settop(L, 2);
    struct walk_state *w = lua_newuserdatauv(L, sizeof *w, 0); // [root, opts, state]
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WALK_TYPE);
    walk_read_options(L, 2, w);
    w->want_stat = 1;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_path(L, "walk_digest", root, errno);
    if (grow((void **)&w->rel, &w->rel_cap, 1, 1) != 0) {
        close(fd);
        return luaL_error(L, "out of memory");
    }
    w->rel[0] = '\0';
    char hex[BBIT_SHA256_HEX_LEN + 1];
    int unstable = 0;
    int failed = walk_dir(w, fd, NULL, 0, 1) != 0;
    int e = w->err;
    const char *sub = failed && w->err_path ? lua_pushstring(L, w->err_path) : "";
    if (!failed && walk_digest(w, recent_ns, hex, &unstable) != 0) {
        failed = 1;
        e = errno;
    }
    size_t count = w->n;
    lua_pushcfunction(L, walk_gc);
    lua_pushvalue(L, 3);
    lua_call(L, 1, 0); /* free now rather than at the next GC */
    if (failed)
        return fail_path(L, "walk_digest", *sub ? lua_pushfstring(L, "%s/%s", root, sub) : root, e);
    lua_pushstring(L, hex);
    lua_pushinteger(L, (lua_Integer)count);
    lua_pushboolean(L, unstable);
    return 3;
}

/* ---- many digests at once, on worker threads ------------------------------ */

#define DIGEST_JOB_TYPE "bbit.fs.digestjob"
enum { DIGEST_PENDING = 0, DIGEST_FALLBACK = 1, DIGEST_STABLE = 2, DIGEST_UNSTABLE = 3 };
enum { DIGEST_MAX_THREADS = 8 };

/* walk_digests: worker threads digest roots in order while the caller goes
 * on (decoding caches, looking at the roots already done). Everything the
 * workers read is owned by the job (copies), so the Lua side can do anything
 * meanwhile; the job is joined before it is freed. */
struct digest_job {
    char *block; /* first field: NULL once closed. Roots, patterns, results. */
    const char **roots;
    size_t n;
    const char **ignore;
    int n_ignore, max_depth;
    int64_t recent_ns;
    atomic_size_t next;
    char (*hex)[BBIT_SHA256_HEX_LEN + 1];
    atomic_uchar *state; /* DIGEST_* */
    atomic_int waiting;  /* callers blocked in get */
    pthread_mutex_t mu;
    pthread_cond_t done;
    pthread_t tids[DIGEST_MAX_THREADS];
    int nthreads;
    struct walk_state helper; /* the caller's buffers when it digests (in get) */
    /* opts.dircache: the cache file, what it held, the records of each
     * thread (DIGEST_MAX_THREADS: the caller's); few buffers, not one per
     * root: thousands of small allocations grew the threads' heaps page by
     * page (an mprotect each) */
    char *dircache_path;
    bbit_dircache *dircache;
    struct bbit_dircache_out dircache_outs[DIGEST_MAX_THREADS + 1];
    atomic_int dircache_missed, workers_started;
};

static void digest_state_init(struct digest_job *j, struct walk_state *w, int thread)
{
    memset(w, 0, sizeof *w);
    w->ignore = j->ignore;
    w->n_ignore = j->n_ignore;
    w->max_depth = j->max_depth;
    w->want_stat = 1;
    w->dircache = j->dircache;
    w->dircache_out = &j->dircache_outs[thread];
    w->recent_ns = j->recent_ns;
    w->base_fd = AT_FDCWD;
}

/* Network and FUSE filesystems may answer a folder's stat from a cache
 * while another machine adds to it: their listings are always read. */
static bool remote_fs(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return true;
    switch ((unsigned long)sf.f_type) {
    case 0x6969UL:     /* NFS */
    case 0xFF534D42UL: /* CIFS */
    case 0xFE534D42UL: /* SMB2 */
    case 0x517BUL:     /* SMB */
    case 0x65735546UL: /* FUSE */
    case 0x01021997UL: /* 9P */
    case 0x00C36400UL: /* Ceph */
    case 0x47504653UL: /* GPFS */
        return true;
    default:
        return false;
    }
}

/* How long after a change a file's mtime may still be set again to the same
 * value (a stat cache must not trust newer entries: git's "racy" case). On
 * local filesystems with nanosecond timestamps they come from the kernel's
 * coarse clock, one tick (<= 10 ms) behind: 0.1 s leaves a wide margin.
 * Elsewhere 2 s: FAT's granularity, network filesystems' own clocks. */
static int64_t timestamp_uncertainty_ns(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) == 0) {
        switch ((unsigned long)sf.f_type) {
        case 0xEF53UL:     /* ext2, ext3, ext4 */
        case 0x58465342UL: /* XFS */
        case 0x9123683EUL: /* Btrfs */
        case 0x01021994UL: /* tmpfs */
        case 0xF2F52010UL: /* F2FS */
        case 0x794C7630UL: /* overlayfs (its files are on one of these) */
        case 0x2FC12FC1UL: /* ZFS */
            return 100 * 1000000LL;
        default:
            break;
        }
    }
    return 2 * 1000000000LL;
}

// ns = core.fs.racy_since(path): the instant (ns since the epoch) from which a file
// under path changed too recently for a stat cache to trust its stat: now minus
// the filesystem's timestamp uncertainty (0.1 s on ext4, XFS, Btrfs, tmpfs, F2FS,
// overlayfs, ZFS; 2 s elsewhere)
static int fs_racy_since(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int64_t window = timestamp_uncertainty_ns(path);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    lua_pushinteger(L, (lua_Integer)now.tv_sec * 1000000000 + now.tv_nsec - window);
    return 1;
}

/* Makes root's parent folder w's base (kept open while the next roots share
 * it, as a workspace's components mostly do); without it, absolute paths.
 * Sets w->base_remote (see remote_fs). */
static void digest_set_base(struct walk_state *w, const char *root)
{
    size_t end = strlen(root);
    while (end > 1 && root[end - 1] == '/') /* "/ws/c1/" is "/ws/c1" */
        end--;
    size_t len = end;
    while (len > 0 && root[len - 1] != '/')
        len--;
    len = len > 1 ? len - 1 : 0; /* the parent, without its final '/' ("" for "/x") */
    if (w->base_dir && strlen(w->base_dir) == len && memcmp(w->base_dir, root, len) == 0)
        return;
    if (w->base_fd >= 0)
        close(w->base_fd);
    free(w->base_dir);
    w->base_fd = AT_FDCWD;
    w->base_skip = 0;
    w->base_remote = 0;
    w->base_dir = len ? strndup(root, len) : NULL;
    if (!w->base_dir)
        return;
    int fd = open(w->base_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        free(w->base_dir);
        w->base_dir = NULL;
        return;
    }
    w->base_fd = fd;
    w->base_skip = len + 1;
    w->base_remote = remote_fs(fd);
}

static void digest_state_free(struct walk_state *w)
{
    if (w->base_fd >= 0)
        close(w->base_fd);
    free(w->base_dir);
    walk_free_buffers(w); /* the options are the job's */
    memset(w, 0, sizeof *w);
}

/* Claims the next root and digests it with w's buffers; false when every
 * root is claimed. A root that is not a plain directory (missing, a symlink,
 * a file) or whose walk fails is left as DIGEST_FALLBACK: the caller looks at
 * it one by one, with the exact error. Touches no Lua state. */
static bool digest_next(struct digest_job *j, struct walk_state *w)
{
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->n)
        return false;
    unsigned char result = DIGEST_FALLBACK;
    w->n = 0;
    w->names_len = 0;
    w->err = 0;
    free(w->err_path);
    w->err_path = NULL;
    if (grow((void **)&w->rel, &w->rel_cap, 1, 1) == 0) {
        w->rel[0] = '\0';
        int unstable = 0, walked;
        if (j->dircache) { /* the root's listing may be cached too: stat it, not open it */
            struct stat st;
            struct bbit_dircache_out *out = w->dircache_out;
            size_t len = out->len, count = out->count;
            w->root = j->roots[i];
            w->dircache_missed = 0;
            digest_set_base(w, w->root);
            w->dircache = w->base_remote ? NULL : j->dircache;
            walked = fstatat(w->base_fd, w->root + w->base_skip, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISDIR(st.st_mode);
            if (walked && w->dircache) {
                walked = walk_dir(w, -1, &st, 0, 1) == 0;
            } else if (walked) {
                int fd = openat(w->base_fd, w->root + w->base_skip,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                walked = fd >= 0 && walk_dir(w, fd, NULL, 0, 1) == 0;
            }
            if (!walked) { /* none of its records */
                out->len = len;
                out->count = count;
            }
            if (w->dircache_missed)
                atomic_store(&j->dircache_missed, 1);
        } else {
            int fd = open(j->roots[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            walked = fd >= 0 && walk_dir(w, fd, NULL, 0, 1) == 0;
        }
        if (walked && walk_digest(w, j->recent_ns, j->hex[i], &unstable) == 0)
            result = unstable ? DIGEST_UNSTABLE : DIGEST_STABLE;
    }
    atomic_store(&j->state[i], result);
    if (atomic_load(&j->waiting) > 0) {
        pthread_mutex_lock(&j->mu);
        pthread_cond_broadcast(&j->done);
        pthread_mutex_unlock(&j->mu);
    }
    return true;
}

static void *digest_worker(void *arg)
{
    struct digest_job *j = arg;
    struct walk_state w;
    digest_state_init(j, &w, atomic_fetch_add(&j->workers_started, 1));
    while (digest_next(j, &w))
        ;
    digest_state_free(&w);
    return NULL;
}

/* Worker threads: one per core but the caller's (it digests too, see
 * digest_job_get), at most `max` (when >= 0), DIGEST_MAX_THREADS and one per
 * 32 roots. */
static int digest_threads(size_t n, lua_Integer max)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = cores > 1 ? (size_t)cores - 1 : 0;
    if (max >= 0 && (size_t)max < t)
        t = (size_t)max;
    if (t > DIGEST_MAX_THREADS)
        t = DIGEST_MAX_THREADS;
    if (t > n / 32 + 1)
        t = n / 32 + 1;
    return (int)t;
}

/* Saves the listings of this walk as the new cache when it walked every
 * root and the cache changed (a folder read, or one gone); frees it all. A
 * cache that cannot be written is only slower next time. */
static void dircache_finish(struct digest_job *j, bool every_root)
{
    enum { N_OUTS = DIGEST_MAX_THREADS + 1 };
    size_t recorded = 0;
    for (size_t t = 0; t < N_OUTS; t++)
        recorded += j->dircache_outs[t].count;
    if (every_root && (atomic_load(&j->dircache_missed) || recorded != bbit_dircache_count(j->dircache)))
        (void)bbit_dircache_save(j->dircache_path, j->dircache_outs, N_OUTS);
    for (size_t t = 0; t < N_OUTS; t++)
        free(j->dircache_outs[t].data);
    bbit_dircache_free(j->dircache);
    free(j->dircache_path);
    j->dircache = NULL;
}

/* Joins the workers and frees everything (idempotent; __gc/__close). */
static int digest_job_close(lua_State *L)
{
    struct digest_job *j = luaL_checkudata(L, 1, DIGEST_JOB_TYPE);
    if (!j->block)
        return 0;
    size_t claimed = atomic_exchange(&j->next, j->n); /* nothing new is started */
    for (int t = 0; t < j->nthreads; t++)
        pthread_join(j->tids[t], NULL);
    if (j->dircache)
        dircache_finish(j, claimed >= j->n);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->done);
    digest_state_free(&j->helper);
    free(j->block);
    j->block = NULL;
    return 0;
}

/* Copies s into the job's block at *at. */
static const char *copy_in(char **at, const char *s, size_t len)
{
    char *out = *at;
    memcpy(out, s, len + 1);
    *at += len + 1;
    return out;
}

// job = core.fs.walk_digests(roots, opts, recent_ns): starts worker threads (opts.threads at most)
// digesting each root as walk_digest would (opts.dircache: a folder-listing cache file, see
// bbit/dircache.h, used when the roots are absolute and rewritten when the job is closed); job:get(i) -> digest | false, unstable (root i, done
// by the caller or waited for; false
// when it is not a plain directory or its walk failed: call walk_digest on it for the error)
static int fs_walk_digests(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t recent_ns = (int64_t)luaL_optinteger(L, 3, INT64_MAX);
    lua_settop(L, 2);
    size_t n = lua_rawlen(L, 1);
    struct walk_state *opts = lua_newuserdatauv(L, sizeof *opts, 0); // [roots, opts, state]
    memset(opts, 0, sizeof *opts);
    luaL_setmetatable(L, WALK_TYPE); /* frees opts->ignore */
    walk_read_options(L, 2, opts);
    size_t strings = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "walk_digests: root #%d is not a string", (int)i + 1);
        strings += lua_rawlen(L, -1) + 1;
        lua_pop(L, 1);
    }
    for (int k = 0; k < opts->n_ignore; k++)
        strings += strlen(opts->ignore[k]) + 1;
    size_t per = sizeof(const char *) + BBIT_SHA256_HEX_LEN + 1 + sizeof(atomic_uchar);
    if (n > (SIZE_MAX - strings) / per - 1)
        return luaL_error(L, "walk_digests: too many roots");
    struct digest_job *j = lua_newuserdatauv(L, sizeof *j, 0); // [roots, opts, state, job]
    memset(j, 0, sizeof *j);
    j->helper.base_fd = AT_FDCWD; /* not fd 0, should the GC close the job before it starts */
    size_t ptrs = (n + (size_t)opts->n_ignore) * sizeof(const char *);
    char *block = calloc(1, ptrs + n * (BBIT_SHA256_HEX_LEN + 1) + n * sizeof(atomic_uchar) +
                                strings + 1);
    if (!block)
        return luaL_error(L, "walk_digests: out of memory");
    j->roots = (const char **)(void *)block;
    j->ignore = j->roots + n;
    j->hex = (void *)(block + ptrs);
    j->state = (atomic_uchar *)(void *)(block + ptrs + n * (BBIT_SHA256_HEX_LEN + 1));
    char *at = (char *)(j->state + n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        const char *root = lua_tolstring(L, -1, &len);
        j->roots[i] = copy_in(&at, root, len);
        lua_pop(L, 1);
    }
    for (int k = 0; k < opts->n_ignore; k++)
        j->ignore[k] = copy_in(&at, opts->ignore[k], strlen(opts->ignore[k]));
    j->n = n;
    j->n_ignore = opts->n_ignore;
    j->max_depth = opts->max_depth;
    j->recent_ns = recent_ns;
    atomic_init(&j->next, 0);
    atomic_init(&j->waiting, 0);
    for (size_t i = 0; i < n; i++)
        atomic_init(&j->state[i], DIGEST_PENDING);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->done, NULL);
    j->block = block;
    luaL_setmetatable(L, DIGEST_JOB_TYPE); /* from here on, the GC joins and frees */
    if (lua_type(L, 2) == LUA_TTABLE && lua_getfield(L, 2, "dircache") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "walk_digests: opts.dircache must be a file path");
        if (recent_ns == INT64_MAX) /* what to leave out of it: see bbit/dircache.h */
            return luaL_error(L, "walk_digests: opts.dircache needs recent_ns");
        const char *path = lua_tostring(L, -1);
        bool absolute = true; /* the cache is keyed by absolute paths */
        for (size_t i = 0; i < n; i++)
            absolute = absolute && j->roots[i][0] == '/';
        if (absolute) {
            j->dircache_path = strdup(path);
            j->dircache = j->dircache_path ? bbit_dircache_load(path) : NULL;
            if (!j->dircache) {
                free(j->dircache_path);
                j->dircache_path = NULL;
                return luaL_error(L, "walk_digests: out of memory");
            }
        }
    }
    lua_pop(L, lua_type(L, 2) == LUA_TTABLE ? 1 : 0);
    digest_state_init(j, &j->helper, DIGEST_MAX_THREADS);
    lua_Integer max = -1;
    if (lua_type(L, 2) == LUA_TTABLE && lua_getfield(L, 2, "threads") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
            return luaL_error(L, "walk_digests: opts.threads must be an integer >= 0");
        max = lua_tointeger(L, -1);
    }
    lua_pop(L, lua_type(L, 2) == LUA_TTABLE ? 1 : 0);
    int want = digest_threads(n, max);
    for (int t = 0; t < want; t++) /* without threads, get digests every root itself */
        if (pthread_create(&j->tids[j->nthreads], NULL, digest_worker, j) == 0)
            j->nthreads++;
    return 1;
}

// digest | false, unstable = job:get(i): root i's, once done (digesting unclaimed roots meanwhile)
static int digest_job_get(lua_State *L)
{
    struct digest_job *j = bbit_check_open(L, 1, DIGEST_JOB_TYPE, "walk_digests job");
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && (size_t)i <= j->n, 2, "no such root");
    atomic_uchar *state = &j->state[i - 1];
    /* rather than sleep while root i is walked, digest roots not yet claimed
     * (a wait costs two futex calls, microseconds each in a VM) */
    while (atomic_load(state) == DIGEST_PENDING && digest_next(j, &j->helper))
        ;
    if (atomic_load(state) == DIGEST_PENDING) {
        pthread_mutex_lock(&j->mu);
        atomic_fetch_add(&j->waiting, 1);
        while (atomic_load(state) == DIGEST_PENDING)
            pthread_cond_wait(&j->done, &j->mu);
        atomic_fetch_sub(&j->waiting, 1);
        pthread_mutex_unlock(&j->mu);
    }
    unsigned char result = atomic_load(state);
    if (result == DIGEST_FALLBACK) {
        lua_pushboolean(L, 0);
        lua_pushboolean(L, 0);
        return 2;
    }
    lua_pushlstring(L, j->hex[i - 1], BBIT_SHA256_HEX_LEN);
    lua_pushboolean(L, result == DIGEST_UNSTABLE);
    return 2;
}

/* ---- mkdir, remove, rename, links, modes, temp dirs ---------------------- */

static int mkdir_p(char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0)
        return 0;
    if (errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        errno = EEXIST;
        return -1;
    }
    if (errno != ENOENT)
        return -1;
    char *slash = strrchr(path, '/');
    while (slash && slash > path && slash[-1] == '/')
        slash--;
    if (!slash || slash == path)
        return -1;
    *slash = '\0';
    int r = mkdir_p(path, mode);
    *slash = '/';
    if (r != 0)
        return -1;
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

// true = core.fs.mkdir(path, mode?): creates path and its missing parents (mode default 0777 & ~umask)
static int fs_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = check_mode(L, 2, 0777);
    char *copy = strdup(path);
    if (!copy)
        return luaL_error(L, "out of memory");
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    int r = mkdir_p(copy, mode);
    int e = errno;
    free(copy);
    if (r != 0)
        return fail_path(L, "mkdir", path, e);
    lua_pushboolean(L, 1);
    return 1;
}

/* Removes everything inside the directory open as fd (takes ownership);
 * never follows a symlink (a link is removed, not its target). */
static int remove_contents(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (errno = 0, de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
            continue;
        if (unlinkat(dirfd(d), n, 0) == 0)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            r = errno == ENOENT ? 0 : -1;
            continue;
        }
        int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || remove_contents(sub) != 0 || unlinkat(dirfd(d), n, AT_REMOVEDIR) != 0)
            r = -1;
    }
    if (r == 0 && errno != 0)
        r = -1;
    int e = errno;
    closedir(d);
    errno = e;
    return r;
}

// removed = core.fs.remove(path, recursive?): true when removed, false when path did not exist
static int fs_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int recursive = lua_toboolean(L, 2);
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            lua_pushboolean(L, 0);
            return 1;
        }
        return fail_path(L, "remove", path, errno);
    }
    int r;
    if (!S_ISDIR(st.st_mode)) {
        r = unlink(path);
    } else if (!recursive) {
        r = rmdir(path);
    } else {
        char *norm = bbit_path_normalize(path);
        int is_root = norm && strcmp(norm, "/") == 0;
        free(norm);
        if (is_root)
            return fail_path(L, "remove", path, EPERM);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = (fd < 0 || remove_contents(fd) != 0) ? -1 : rmdir(path);
    }
    if (r != 0)
        return fail_path(L, "remove", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

// true = core.fs.rename(from, to)
static int fs_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    if (rename(from, to) != 0)
        return fail_path(L, "rename", lua_pushfstring(L, "%s -> %s", from, to), errno);
    lua_pushboolean(L, 1);
    return 1;
}

// true = core.fs.symlink(target, link): creates `link` pointing at `target`
static int fs_symlink(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    const char *link = luaL_checkstring(L, 2);
    if (symlink(target, link) != 0)
        return fail_path(L, "symlink", link, errno);
    lua_pushboolean(L, 1);
    return 1;
}

// target = core.fs.readlink(path)
static int fs_readlink(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf);
    if (n < 0)
        return fail_path(L, "readlink", path, errno);
    if ((size_t)n == sizeof buf)
        return fail_path(L, "readlink", path, ENAMETOOLONG);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

// abs = core.fs.realpath(path): absolute, symlinks resolved; the path must exist
static int fs_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *r = realpath(path, NULL);
    if (!r)
        return fail_path(L, "realpath", path, errno);
    lua_pushstring(L, r);
    free(r);
    return 1;
}

// true = core.fs.chmod(path, mode)
static int fs_chmod(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2))
        luaL_argerror(L, 2, "mode expected");
    mode_t mode = check_mode(L, 2, 0);
    if (chmod(path, mode) != 0)
        return fail_path(L, "chmod", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

// dir = core.fs.tempdir(prefix?): a new private directory (mkdtemp); a prefix without '/' goes in $TMPDIR or /tmp
static int fs_tempdir(lua_State *L)
{
    const char *prefix = luaL_optstring(L, 1, "bbit-");
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    const char *tpl = strchr(prefix, '/') ? lua_pushfstring(L, "%sXXXXXX", prefix)
                                          : lua_pushfstring(L, "%s/%sXXXXXX", tmp, prefix);
    char *buf = strdup(tpl);
    if (!buf)
        return luaL_error(L, "out of memory");
    if (!mkdtemp(buf)) {
        int e = errno;
        free(buf);
        return fail_path(L, "tempdir", tpl, e);
    }
    lua_pushstring(L, buf);
    free(buf);
    return 1;
}

/* ---- locks -------------------------------------------------------------- */

typedef struct {
    char *path; /* the resource pointer: NULL once released */
    int fd;
} lock_handle;

static int lock_close(lua_State *L)
{
    lock_handle *lk = luaL_checkudata(L, 1, LOCK_TYPE);
    if (lk->path) {
        free(lk->path);
        lk->path = NULL;
        if (ftruncate(lk->fd, 0) != 0) { /* best effort: forget the pid */
        }
        close(lk->fd); /* releases the flock */
        lk->fd = -1;
    }
    return 0;
}

// lock:release(): idempotent
static int lock_release(lua_State *L)
{
    return lock_close(L);
}

// path = lock:path()
static int lock_path(lua_State *L)
{
    lock_handle *lk = bbit_check_open(L, 1, LOCK_TYPE, "lock");
    lua_pushstring(L, lk->path);
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The pid written in the lock file by its holder, or 0 when unknown. */
static long lock_holder(int fd)
{
    for (int tries = 0; tries < 20; tries++) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            long pid = strtol(buf, NULL, 10);
            if (pid > 0)
                return pid;
        }
        sleep_ms(5); /* the holder may be between flock and write */
    }
    return 0;
}

/* Tries flock until it succeeds or `wait_s` seconds passed (< 0: once). */
static int lock_acquire(int fd, double wait_s)
{
    double deadline = bbit_monotonic() + (wait_s > 0 ? wait_s : 0);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return -1;
        double left = deadline - bbit_monotonic();
        if (wait_s <= 0 || left <= 0) {
            errno = EWOULDBLOCK;
            return -1;
        }
        sleep_ms(left < 0.05 ? (long)(left * 1000) + 1 : 50);
    }
}

// lock = core.fs.lock(path, wait_seconds?): exclusive advisory lock (flock) on path, holding our pid;
// nil, "<path> is locked by pid N (...)", EWOULDBLOCK, N when another holder keeps it past the wait
static int fs_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    double wait_s = luaL_optnumber(L, 2, 0);
    lock_handle *lk = lua_newuserdatauv(L, sizeof *lk, 0);
    lk->path = NULL;
    lk->fd = -1;
    luaL_setmetatable(L, LOCK_TYPE);
    char *copy = strdup(path);
    if (!copy)
        return luaL_error(L, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(copy);
        return fail_path(L, "lock", path, e);
    }
    if (lock_acquire(fd, wait_s) != 0) {
        int e = errno;
        long pid = e == EWOULDBLOCK ? lock_holder(fd) : 0;
        close(fd);
        free(copy);
        if (e != EWOULDBLOCK)
            return fail_path(L, "lock", path, e);
        lua_pushnil(L);
        if (pid > 0)
            lua_pushfstring(L, "%s is locked by pid %d (another bbit running? if not, the lock "
                               "is released when that process exits)", path, (int)pid);
        else
            lua_pushfstring(L, "%s is locked by another process (another bbit running? if not, "
                               "the lock is released when that process exits)", path);
        lua_pushinteger(L, EWOULDBLOCK);
        lua_pushinteger(L, pid);
        return 4;
    }
    char pidbuf[32];
    int n = snprintf(pidbuf, sizeof pidbuf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pidbuf, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        free(copy);
        return fail_path(L, "lock", path, e);
    }
    lk->fd = fd;
    lk->path = copy;
    return 1;
}

/* ---- lexical paths and globs (runtime/core/path.c) ----------------------- */

// norm = core.fs.path_normalize(path)
static int fs_path_normalize(lua_State *L)
{
    char *n = bbit_path_normalize(luaL_checkstring(L, 1));
    if (!n)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, n);
    free(n);
    return 1;
}

// norm = core.fs.path_safe_relative(path): nil, "<path>: reason" when absolute or escaping
static int fs_path_safe_relative(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *out;
    enum bbit_path_error e = bbit_path_safe_relative(path, &out);
    if (e == BBIT_PATH_NOMEM)
        return luaL_error(L, "out of memory");
    if (e != BBIT_PATH_OK)
        return bbit_fail(L, "path '%s' %s", path, bbit_path_error_message(e));
    lua_pushstring(L, out);
    free(out);
    return 1;
}

// ok = core.fs.path_is_within(root, path): lexical
static int fs_path_is_within(lua_State *L)
{
    lua_pushboolean(L, bbit_path_is_within(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

// ok = core.fs.glob_match(pattern, path)
static int fs_glob_match(lua_State *L)
{
    lua_pushboolean(L, bbit_glob_match(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

// ok = core.fs.ignore_match(pattern, path, is_dir?): .gitignore-style
static int fs_ignore_match(lua_State *L)
{
    lua_pushboolean(L, bbit_ignore_match(luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                                         lua_toboolean(L, 3)));
    return 1;
}

int luaopen_bbit_core_fs(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"cwd", fs_cwd},
        {"chdir", fs_chdir},
        {"stat", fs_stat},
        {"lstat", fs_lstat},
        {"read", fs_read},
        {"write", fs_write},
        {"sync", fs_sync},
        {"racy_since", fs_racy_since},
        {"copy", fs_copy},
        {"walk", fs_walk},
        {"walk_digest", fs_walk_digest},
        {"walk_digests", fs_walk_digests},
        {"mkdir", fs_mkdir},
        {"remove", fs_remove},
        {"rename", fs_rename},
        {"symlink", fs_symlink},
        {"readlink", fs_readlink},
        {"realpath", fs_realpath},
        {"chmod", fs_chmod},
        {"tempdir", fs_tempdir},
        {"lock", fs_lock},
        {"path_normalize", fs_path_normalize},
        {"path_safe_relative", fs_path_safe_relative},
        {"path_is_within", fs_path_is_within},
        {"glob_match", fs_glob_match},
        {"ignore_match", fs_ignore_match},
        {NULL, NULL},
    };
    static const luaL_Reg lock_methods[] = {
        {"release", lock_release},
        {"path", lock_path},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, LOCK_TYPE, lock_methods, lock_close);
    static const luaL_Reg digest_job_methods[] = {
        {"get", digest_job_get},
        {"close", digest_job_close},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, DIGEST_JOB_TYPE, digest_job_methods, digest_job_close);
    luaL_newmetatable(L, WALK_TYPE);
    lua_pushcfunction(L, walk_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_createtable(L, 0, 8); // [fs, errno]
    set_int(L, "ENOENT", ENOENT);
    set_int(L, "ENOTDIR", ENOTDIR);
    set_int(L, "EEXIST", EEXIST);
    set_int(L, "EISDIR", EISDIR);
    set_int(L, "EACCES", EACCES);
    set_int(L, "ENOTEMPTY", ENOTEMPTY);
    set_int(L, "EWOULDBLOCK", EWOULDBLOCK);
    set_int(L, "ELOOP", ELOOP);
    set_int(L, "EXDEV", EXDEV);
    lua_setfield(L, -2, "errno");
    return 1;
}
