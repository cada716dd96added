/* bbit.core.archive: deterministic tar writer (tar.gz / tar.zst / tar), a
 * streaming reader, and a hardened extractor, over libarchive. Plain
 * tar.gz and tar entries are written by bbit's own writer instead
 * (runtime/core/tarball_native.c: the same bytes, without loading libarchive).
 *
 * Determinism (runtime/core/tarball.c): pax (restricted: plain ustar headers
 * unless a name needs pax), fixed mtime/uid/gid, no user/group names, perms
 * reduced to 0644/0755, gzip without its timestamp at a fixed level, zstd at a
 * fixed level in single-threaded mode (libarchive's default; setting its
 * `threads` option switches zstd to multi-threaded framing: other bytes, ~30
 * MiB more memory, so it is deliberately left unset). The caller sorts the
 * entries (the public tier, stdlib/bbit/archive.lua, does).
 *
 * Atomicity: a writer writes "<path>.tmp-XXXXXX" in the target's directory;
 * finish() renames it over <path>; closing without finish() removes it.
 *
 * Extraction (see extract below): only regular files and directories, names
 * checked before anything is written, libarchive's SECURE_* flags on top,
 * everything written into a fresh staging directory inside dest that is
 * moved into place only when the whole archive extracted; on any failure the
 * staging directory is removed, so dest is left as it was. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbit/lazylibs.h" /* libarchive, loaded on first use */
#include "bbit/luax.h"
#include "bbit/tarball.h"

#define WRITER_TYPE "bbit.core.archive.writer"
#define READER_TYPE "bbit.core.archive.reader"


enum { COPY_CHUNK = 64 * 1024, READ_MAX = 1024 * 1024, ERR_MAX = 4096 };

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */


/* The entry's name as UTF-8 (raw bytes when it does not convert), or NULL. */
static const char *entry_name(struct archive_entry *e)
{
    const char *name = archive_entry_pathname_utf8(e);
    return name ? name : archive_entry_pathname(e);
}

/* "file", "dir", "symlink", "hardlink", "fifo", "char", "block", "socket". */
static const char *entry_type(struct archive_entry *e)
{
    if (archive_entry_hardlink(e))
        return "hardlink";
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: return "file";
    case AE_IFDIR: return "dir";
    case AE_IFLNK: return "symlink";
    case AE_IFIFO: return "fifo";
    case AE_IFCHR: return "char";
    case AE_IFBLK: return "block";
    case AE_IFSOCK: return "socket";
    default: return "unknown";
    }
}

static const char *archive_msg(struct archive *a)
{
    const char *m = a ? archive_error_string(a) : NULL;
    return m ? m : "unknown libarchive error";
}

/* nil, "<what>: <subject>: <strerror(errno)>", errno */
static int fail_subject(lua_State *L, const char *what, const char *subject)
{
    int e = errno;
    const char *s = lua_pushfstring(L, "%s: %s", what, subject);
    errno = e;
    return bbit_fail_errno(L, s);
}

/* A reader for tar archives (plain, gzip, zstd, xz, bzip2) on fd. */
static struct archive *open_tar_reader(int fd)
{
    struct archive *a = archive_read_new();
    if (!a)
        return NULL;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_format_tar(a);
    return a;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */

typedef struct {
    void *h; /* the writer, NULL once finished or closed: a bbit_tarw (native) or a libarchive one */
    int native;
    int fd;
    char *tmp_path;
    char *final_path;
} writer_ud;

/* Frees what the writer holds; removes the temp file unless it was renamed. */
static void writer_release(writer_ud *w)
{
    void *h = w->h;
    w->h = NULL;
    if (h && w->native)
        bbit_tarw_free(h);
    else if (h)
        archive_write_free(h);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    if (w->tmp_path)
        unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    w->tmp_path = NULL;
    w->final_path = NULL;
}

/* The native writer's output: the temp file. */
static int fd_sink(void *ctx, const void *buf, size_t len, char *err, size_t errlen)
{
    int fd = *(int *)ctx;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            return -1;
        }
        buf = (const char *)buf + n;
        len -= (size_t)n;
    }
    return 0;
}

// w = core.archive.writer(path, format [, engine]) | nil, err: format "tar.gz", "tar.zst" or
// "tar"; engine "libarchive" forces libarchive, else tar.gz and tar are written natively (see
// bbit_tarw_* in tarball.h: an entry it cannot write fails with "unsupported" as a third result,
// and the archive is started over with libarchive)
static int archive_writer(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *format = luaL_checkstring(L, 2);
    luaL_argcheck(L, bbit_tar_valid_format(format), 2, "expected \"tar.gz\", \"tar.zst\" or \"tar\"");
    const char *engine = luaL_optstring(L, 3, "auto");
    writer_ud *w = lua_newuserdatauv(L, sizeof *w, 0);
    *w = (writer_ud){.h = NULL, .fd = -1};
    luaL_setmetatable(L, WRITER_TYPE);
    size_t n = strlen(path);
    w->final_path = strdup(path);
    w->tmp_path = malloc(n + sizeof ".tmp-XXXXXX");
    if (!w->final_path || !w->tmp_path) {
        writer_release(w);
        return luaL_error(L, "archive.writer: out of memory");
    }
    memcpy(w->tmp_path, path, n);
    memcpy(w->tmp_path + n, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        free(w->tmp_path);
        w->tmp_path = NULL; // nothing to unlink
        writer_release(w);
        errno = e;
        return fail_subject(L, "archive.writer", path);
    }
    if (strcmp(engine, "libarchive") != 0 && bbit_tarw_native_format(format)) {
        w->native = 1;
        if (!(w->h = bbit_tarw_open(format, fd_sink, &w->fd))) {
            writer_release(w);
            return luaL_error(L, "archive.writer: out of memory");
        }
        return 1;
    }
    struct archive *a = archive_write_new();
    if (!a) {
        writer_release(w);
        return luaL_error(L, "archive.writer: out of memory");
    }
    if (bbit_tar_configure(a, format) != ARCHIVE_OK ||
        archive_write_open_fd(a, w->fd) != ARCHIVE_OK) {
        lua_pushfstring(L, "archive.writer: %s: %s", path, archive_msg(a));
        archive_write_free(a);
        writer_release(w);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    w->h = a;
    return 1;
}

/* Writes a header; nil, err [, "unsupported"] pushed (returns 2 or 3) on failure, 0 when fine. */
static int write_header(lua_State *L, writer_ud *w, const char *fn, const char *name,
                        mode_t type, int perm, int64_t size)
{
    if (w->native) {
        char err[512];
        int r = bbit_tarw_header(w->h, name, type == AE_IFDIR, perm, (uint64_t)size, err,
                                 sizeof err);
        if (r == BBIT_TARW_UNSUPPORTED) {
            bbit_fail(L, "%s: %s: needs libarchive", fn, name);
            lua_pushliteral(L, "unsupported");
            return 3;
        }
        return r == 0 ? 0 : bbit_fail(L, "%s: %s: %s", fn, name, err);
    }
    struct archive_entry *e = bbit_tar_entry(name, type, perm, size);
    if (!e)
        return bbit_fail(L, "%s: %s: out of memory", fn, name);
    int r = archive_write_header(w->h, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return bbit_fail(L, "%s: %s: %s", fn, name, archive_msg(w->h));
    return 0;
}

/* The current entry's next bytes. 0, or -1 with err filled. */
static int write_data(writer_ud *w, const void *buf, size_t len, char *err, size_t errlen)
{
    if (w->native)
        return bbit_tarw_data(w->h, buf, len, err, errlen);
    if (len > 0 && archive_write_data(w->h, buf, len) != (la_ssize_t)len) {
        snprintf(err, errlen, "%s", archive_msg(w->h));
        return -1;
    }
    return 0;
}

/* Streams exactly size bytes of fd into the current entry. 0, or -1 with
 * err filled. */
static int copy_fd(writer_ud *w, int fd, int64_t size, char *err, size_t errlen)
{
    char *buf = malloc(COPY_CHUNK);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    while (size > 0) {
        size_t want = size < COPY_CHUNK ? (size_t)size : COPY_CHUNK;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s",
                     n < 0 ? strerror(errno) : "file shrank while being archived");
            rc = -1;
            break;
        }
        if (write_data(w, buf, (size_t)n, err, errlen) != 0) {
            rc = -1;
            break;
        }
        size -= n;
    }
    free(buf);
    return rc;
}

// true = w:add_file(name, disk_path) | nil, err [, "unsupported"]: a regular file, streamed
static int writer_add_file(lua_State *L)
{
    writer_ud *w = bbit_check_open(L, 1, WRITER_TYPE, "archive writer");
    const char *name = luaL_checkstring(L, 2);
    const char *disk = luaL_checkstring(L, 3);
    int fd = open(disk, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_subject(L, "archive.add_file", disk);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return fail_subject(L, "archive.add_file", disk);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bbit_fail(L, "archive.add_file: %s: not a regular file", disk);
    }
    int r = write_header(L, w, "archive.add_file", name, AE_IFREG, bbit_tar_perm(st.st_mode),
                         st.st_size);
    if (r) {
        close(fd);
        return r;
    }
    char err[512];
    int rc = copy_fd(w, fd, st.st_size, err, sizeof err);
    close(fd);
    if (rc != 0)
        return bbit_fail(L, "archive.add_file: %s: %s", disk, err);
    lua_pushboolean(L, 1);
    return 1;
}

// true = w:add_data(name, data [, mode]) | nil, err [, "unsupported"]: a file with this content
static int writer_add_data(lua_State *L)
{
    writer_ud *w = bbit_check_open(L, 1, WRITER_TYPE, "archive writer");
    const char *name = luaL_checkstring(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    lua_Integer mode = luaL_optinteger(L, 4, 0644);
    int r = write_header(L, w, "archive.add_data", name, AE_IFREG, bbit_tar_perm((mode_t)mode),
                         (int64_t)len);
    if (r)
        return r;
    char err[512];
    if (write_data(w, data, len, err, sizeof err) != 0)
        return bbit_fail(L, "archive.add_data: %s: %s", name, err);
    lua_pushboolean(L, 1);
    return 1;
}

// true = w:add_dir(name) | nil, err [, "unsupported"]: a directory entry (0755)
static int writer_add_dir(lua_State *L)
{
    writer_ud *w = bbit_check_open(L, 1, WRITER_TYPE, "archive writer");
    const char *name = luaL_checkstring(L, 2);
    int r = write_header(L, w, "archive.add_dir", name, AE_IFDIR, 0755, 0);
    if (r)
        return r;
    lua_pushboolean(L, 1);
    return 1;
}

// true = w:finish([fsync]) | nil, err: completes the archive and renames it into place
// (fsync defaults to true; false for scratch archives that are stored elsewhere)
static int writer_finish(lua_State *L)
{
    writer_ud *w = bbit_check_open(L, 1, WRITER_TYPE, "archive writer");
    int do_fsync = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    char err[ERR_MAX];
    err[0] = '\0';
    void *h = w->h;
    w->h = NULL;
    if (w->native) {
        bbit_tarw_finish(h, err, sizeof err);
        bbit_tarw_free(h);
    } else {
        if (archive_write_close(h) != ARCHIVE_OK)
            snprintf(err, sizeof err, "%s", archive_msg(h));
        archive_write_free(h);
    }
    if (!err[0] && (fchmod(w->fd, 0644) != 0 || (do_fsync && fsync(w->fd) != 0)))
        snprintf(err, sizeof err, "%s", strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && !err[0])
        snprintf(err, sizeof err, "%s", strerror(errno));
    if (!err[0] && rename(w->tmp_path, w->final_path) != 0)
        snprintf(err, sizeof err, "%s", strerror(errno));
    if (err[0]) {
        lua_pushfstring(L, "archive.finish: %s: %s", w->final_path, err);
        writer_release(w); // removes the temp file
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    free(w->tmp_path);
    w->tmp_path = NULL; // renamed: nothing to remove
    writer_release(w);
    lua_pushboolean(L, 1);
    return 1;
}

// w:close(): discards an unfinished archive (idempotent; also __gc/__close)
static int writer_close(lua_State *L)
{
    writer_ud *w = luaL_checkudata(L, 1, WRITER_TYPE);
    writer_release(w);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */

typedef struct {
    struct archive *a; /* NULL once closed */
    int fd;
    char *path;
} reader_ud;

static void reader_release(reader_ud *r)
{
    struct archive *a = r->a;
    r->a = NULL;
    if (a)
        archive_read_free(a);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->path);
    r->path = NULL;
}

// r = core.archive.reader(path) | nil, err: reads a tar (plain/gz/zst/xz/bz2)
static int archive_reader(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    reader_ud *r = lua_newuserdatauv(L, sizeof *r, 0);
    *r = (reader_ud){.a = NULL, .fd = -1};
    luaL_setmetatable(L, READER_TYPE);
    r->path = strdup(path);
    if (!r->path)
        return luaL_error(L, "archive.reader: out of memory");
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        reader_release(r);
        errno = e;
        return fail_subject(L, "archive.reader", path);
    }
    struct archive *a = open_tar_reader(r->fd);
    if (!a) {
        reader_release(r);
        return luaL_error(L, "archive.reader: out of memory");
    }
    if (archive_read_open_fd(a, r->fd, COPY_CHUNK) != ARCHIVE_OK) {
        lua_pushfstring(L, "archive.reader: %s: %s", path, archive_msg(a));
        archive_read_free(a);
        reader_release(r);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    r->a = a;
    return 1;
}

/* Pushes {name, size, type, mode [, link]} for e. */
static void push_entry(lua_State *L, struct archive_entry *e)
{
    lua_createtable(L, 0, 5);
    const char *name = entry_name(e);
    lua_pushstring(L, name ? name : "");
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, (lua_Integer)archive_entry_size(e));
    lua_setfield(L, -2, "size");
    lua_pushstring(L, entry_type(e));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)archive_entry_perm(e));
    lua_setfield(L, -2, "mode");
    const char *link = archive_entry_hardlink(e);
    if (!link)
        link = archive_entry_symlink(e);
    if (link) {
        lua_pushstring(L, link);
        lua_setfield(L, -2, "link");
    }
}

// entry = r:next() | nil (end) | nil, err: {name, size, type, mode [, link]}
static int reader_next(lua_State *L)
{
    reader_ud *r = bbit_check_open(L, 1, READER_TYPE, "archive reader");
    struct archive_entry *e;
    int rc = archive_read_next_header(r->a, &e);
    if (rc == ARCHIVE_EOF) {
        lua_pushnil(L);
        return 1;
    }
    if (rc < ARCHIVE_WARN)
        return bbit_fail(L, "archive.read: %s: %s", r->path, archive_msg(r->a));
    push_entry(L, e);
    return 1;
}

// data = r:read([max]) | nil (end of entry) | nil, err: the current entry's next bytes
static int reader_read(lua_State *L)
{
    reader_ud *r = bbit_check_open(L, 1, READER_TYPE, "archive reader");
    lua_Integer max = luaL_optinteger(L, 2, COPY_CHUNK);
    luaL_argcheck(L, max > 0, 2, "expected a positive size");
    if (max > READ_MAX)
        max = READ_MAX; // fewer bytes than asked is allowed: callers loop
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)max);
    la_ssize_t n = archive_read_data(r->a, p, (size_t)max);
    if (n < 0)
        return bbit_fail(L, "archive.read: %s: %s", r->path, archive_msg(r->a));
    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

// r:close() (idempotent; also __gc/__close)
static int reader_close(lua_State *L)
{
    reader_ud *r = luaL_checkudata(L, 1, READER_TYPE);
    reader_release(r);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Extraction                                                                */

typedef struct {
    const char *archive_path;
    const char *dest;
    int in_fd;
    struct archive *in;
    struct archive *out;
    char *staging;   /* dest/.bbit-extract-XXXXXX, NULL until created */
    int cwd_fd;      /* the caller's working directory, restored at the end */
    int in_staging;  /* chdir'ed into staging */
    int created_dest; /* dest did not exist: removed again on failure */
    int64_t max_bytes, max_entries, bytes, entries;
    char *buf;
    char err[ERR_MAX];
} extract_ctx;

#define EXTRACT_FLAGS                                                                   \
    (ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |                \
     ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_NO_OVERWRITE)

static int xfail(extract_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xfail(extract_ctx *x, const char *fmt, ...)
{
    if (x->err[0])
        return -1; // keep the first failure
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Why the entry name is refused, or NULL: absolute, `..`, empty. */
static const char *bad_name(const char *name)
{
    if (!name || !*name)
        return "empty name";
    if (name[0] == '/')
        return "absolute path";
    const char *p = name;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return "path escapes the target (..)";
        if (!slash)
            break;
        p = slash + 1;
    }
    return NULL;
}

/* Checks one header against the rules and the limits; normalises its perms. */
static int check_entry(extract_ctx *x, struct archive_entry *e, const char *name)
{
    const char *why = bad_name(name);
    if (why)
        return xfail(x, "entry \"%s\": refused: %s", name ? name : "", why);
    const char *type = entry_type(e);
    if (strcmp(type, "file") != 0 && strcmp(type, "dir") != 0)
        return xfail(x, "entry \"%s\": refused: %s entries are not allowed (only regular files "
                        "and directories)", name, type);
    if (++x->entries > x->max_entries)
        return xfail(x, "entry \"%s\": refused: more than %lld entries (the extraction limit)",
                     name, (long long)x->max_entries);
    int64_t size = archive_entry_size(e);
    if (size < 0 || size > x->max_bytes - x->bytes)
        return xfail(x, "entry \"%s\": refused: more than %lld bytes in total (the extraction "
                        "limit)", name, (long long)x->max_bytes);
    // The staging dir started empty: anything at this name came from an
    // earlier entry. libarchive's NO_OVERWRITE would skip it silently.
    struct stat st;
    if (lstat(name, &st) == 0 && (strcmp(type, "dir") != 0 || !S_ISDIR(st.st_mode)))
        return xfail(x, "entry \"%s\": refused: duplicate entry (the name occurs twice)", name);
    archive_entry_set_perm(e, strcmp(type, "dir") == 0 ? 0755 : bbit_tar_perm(archive_entry_perm(e)));
    return 0;
}

/* Copies the current entry's data to disk, counting it against the limit. */
static int copy_entry_data(extract_ctx *x, const char *name)
{
    for (;;) {
        la_ssize_t n = archive_read_data(x->in, x->buf, COPY_CHUNK);
        if (n == 0)
            return 0;
        if (n < 0)
            return xfail(x, "entry \"%s\": %s", name, archive_msg(x->in));
        x->bytes += n;
        if (x->bytes > x->max_bytes)
            return xfail(x, "entry \"%s\": refused: more than %lld bytes in total (the "
                            "extraction limit)", name, (long long)x->max_bytes);
        if (archive_write_data(x->out, x->buf, (size_t)n) != n)
            return xfail(x, "entry \"%s\": %s", name, archive_msg(x->out));
    }
}

/* Extracts every entry into the current directory (the staging dir). */
static int extract_entries(extract_ctx *x)
{
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(x->in, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return xfail(x, "%s", archive_msg(x->in));
        const char *name = entry_name(e);
        if (check_entry(x, e, name) != 0)
            return -1;
        // strict: a warning here is an entry libarchive would skip (e.g. the
        // second of two entries with one name: "Already exists")
        if (archive_write_header(x->out, e) != ARCHIVE_OK)
            return xfail(x, "entry \"%s\": refused: %s", name, archive_msg(x->out));
        if (archive_entry_size(e) > 0 && copy_entry_data(x, name) != 0)
            return -1;
        if (archive_write_finish_entry(x->out) < ARCHIVE_WARN)
            return xfail(x, "entry \"%s\": %s", name, archive_msg(x->out));
    }
}

/* Creates dest (one level) when missing; it must be a directory. */
static int ensure_dest(extract_ctx *x)
{
    struct stat st;
    if (mkdir(x->dest, 0755) == 0)
        x->created_dest = 1;
    else if (errno != EEXIST)
        return xfail(x, "destination %s: %s", x->dest, strerror(errno));
    if (stat(x->dest, &st) != 0)
        return xfail(x, "destination %s: %s", x->dest, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return xfail(x, "destination %s: not a directory", x->dest);
    return 0;
}

/* Opens the archive, creates the staging dir and enters it. */
static int extract_setup(extract_ctx *x)
{
    x->in_fd = open(x->archive_path, O_RDONLY | O_CLOEXEC);
    if (x->in_fd < 0)
        return xfail(x, "%s", strerror(errno));
    x->in = open_tar_reader(x->in_fd);
    x->out = archive_write_disk_new();
    x->buf = malloc(COPY_CHUNK);
    if (!x->in || !x->out || !x->buf)
        return xfail(x, "out of memory");
    if (archive_read_open_fd(x->in, x->in_fd, COPY_CHUNK) != ARCHIVE_OK)
        return xfail(x, "%s", archive_msg(x->in));
    if (archive_write_disk_set_options(x->out, EXTRACT_FLAGS) != ARCHIVE_OK)
        return xfail(x, "%s", archive_msg(x->out));
    if (ensure_dest(x) != 0)
        return -1;
    size_t n = strlen(x->dest);
    x->staging = malloc(n + sizeof "/.bbit-extract-XXXXXX");
    if (!x->staging)
        return xfail(x, "out of memory");
    memcpy(x->staging, x->dest, n);
    memcpy(x->staging + n, "/.bbit-extract-XXXXXX", sizeof "/.bbit-extract-XXXXXX");
    if (!mkdtemp(x->staging)) {
        int e = errno;
        free(x->staging);
        x->staging = NULL;
        return xfail(x, "destination %s: %s", x->dest, strerror(e));
    }
    x->cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (x->cwd_fd < 0)
        return xfail(x, "current directory: %s", strerror(errno));
    if (chdir(x->staging) != 0)
        return xfail(x, "%s: %s", x->staging, strerror(errno));
    x->in_staging = 1;
    return 0;
}

/* Returns to the caller's working directory. */
static int leave_staging(extract_ctx *x)
{
    if (!x->in_staging)
        return 0;
    x->in_staging = 0;
    if (fchdir(x->cwd_fd) != 0)
        return xfail(x, "cannot return to the working directory: %s", strerror(errno));
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The staging dir's top-level names are moved into dest; none may exist. */
static int move_into_place(extract_ctx *x)
{
    DIR *d = opendir(x->staging);
    if (!d)
        return xfail(x, "%s: %s", x->staging, strerror(errno));
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        rewinddir(d);
        struct dirent *de;
        while (rc == 0 && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char from[PATH_MAX], to[PATH_MAX];
            struct stat st;
            snprintf(from, sizeof from, "%s/%s", x->staging, de->d_name);
            snprintf(to, sizeof to, "%s/%s", x->dest, de->d_name);
            if (pass == 0 && lstat(to, &st) == 0)
                rc = xfail(x, "entry \"%s\": refused: %s already exists (nothing is overwritten)",
                           de->d_name, to);
            else if (pass == 1 && rename(from, to) != 0)
                rc = xfail(x, "%s: %s", to, strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

static void extract_cleanup(extract_ctx *x)
{
    leave_staging(x);
    if (x->out)
        archive_write_free(x->out);
    if (x->in)
        archive_read_free(x->in);
    if (x->in_fd >= 0)
        close(x->in_fd);
    if (x->cwd_fd >= 0)
        close(x->cwd_fd);
    if (x->staging) {
        nftw(x->staging, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        free(x->staging);
    }
    free(x->buf);
}

/* After a failure: a dest this extraction created is removed again. */
static void remove_created_dest(extract_ctx *x)
{
    if (x->created_dest)
        rmdir(x->dest);
}

static int64_t opt_limit(lua_State *L, int idx, int64_t dflt)
{
    lua_Integer v = luaL_optinteger(L, idx, dflt);
    luaL_argcheck(L, v > 0, idx, "expected a positive limit");
    return (int64_t)v;
}

// info = core.archive.extract(path, dest [, max_bytes [, max_entries]]) | nil, err
//   info = {entries = n, bytes = n}; dest is created (one level) when missing
static int archive_extract(lua_State *L)
{
    extract_ctx x = {.in_fd = -1, .cwd_fd = -1};
    x.archive_path = luaL_checkstring(L, 1);
    x.dest = luaL_checkstring(L, 2);
    x.max_bytes = opt_limit(L, 3, (int64_t)8 << 30);
    x.max_entries = opt_limit(L, 4, 100000);
    int rc = extract_setup(&x);
    if (rc == 0)
        rc = extract_entries(&x);
    if (rc == 0 && archive_write_close(x.out) != ARCHIVE_OK)
        rc = xfail(&x, "%s", archive_msg(x.out));
    if (leave_staging(&x) != 0)
        rc = -1;
    if (rc == 0)
        rc = move_into_place(&x);
    extract_cleanup(&x);
    if (rc != 0)
        remove_created_dest(&x);
    if (rc != 0)
        return bbit_fail(L, "archive.extract: %s: %s", x.archive_path, x.err);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)x.entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)x.bytes);
    lua_setfield(L, -2, "bytes");
    return 1;
}

/* ------------------------------------------------------------------------ */

// core.archive.prefetch(): starts loading the library on another thread (bbit/lazylibs.h)
static int archive_prefetch(lua_State *L)
{
    (void)L;
    bbit_lazylibs_prefetch(BBIT_LAZY_ARCHIVE);
    return 0;
}

int luaopen_bbit_core_archive(lua_State *L)
{
    static const luaL_Reg writer_methods[] = {
        {"add_file", writer_add_file},
        {"add_data", writer_add_data},
        {"add_dir", writer_add_dir},
        {"finish", writer_finish},
        {"close", writer_close},
        {NULL, NULL},
    };
    static const luaL_Reg reader_methods[] = {
        {"next", reader_next},
        {"read", reader_read},
        {"close", reader_close},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"writer", archive_writer},
        {"reader", archive_reader},
        {"extract", archive_extract},
        {"prefetch", archive_prefetch},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, WRITER_TYPE, writer_methods, writer_close);
    bbit_new_handle_type(L, READER_TYPE, reader_methods, reader_close);
    luaL_newlib(L, fns);
    lua_pushinteger(L, BBIT_TAR_MTIME);
    lua_setfield(L, -2, "mtime");
    return 1;
}
