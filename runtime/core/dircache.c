/* The folder-listing cache of the status walk: see include/bbit/dircache.h.
 *
 * File: the magic, then one record per folder: a fixed header (below), the
 * folder's absolute path (no NUL), its names block. Native byte order: the
 * file never leaves the machine, and a foreign one fails validation at
 * worst. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbit/dircache.h"

static const char MAGIC[8] = "BBDIRC1\n";
enum { MAX_FILE = 256 << 20 };

struct rec_header {
    uint32_t dir_len, names_len;
    uint64_t ino;
    int64_t mtime_ns, ctime_ns, size;
};

struct slot {
    const char *dir; /* NULL: empty slot */
    const char *names;
    struct rec_header h;
};

struct bbit_dircache {
    char *data;
    struct slot *slots;
    size_t mask, count;
};

static uint64_t hash_of(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void header_of(struct rec_header *h, const struct stat *st)
{
    h->ino = (uint64_t)st->st_ino;
    h->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    h->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    h->size = (int64_t)st->st_size;
}

/* A names block is (type, name, NUL)*, each name a single path component:
 * the walk joins them to the folder's path, so nothing may lead out of it. */
static int names_valid(const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        i++; /* the type */
        const char *name = p + i;
        const char *nul = memchr(name, '\0', len - i);
        if (!nul || nul == name || memchr(name, '/', (size_t)(nul - name)))
            return 0;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            return 0;
        i = (size_t)(nul - p) + 1;
    }
    return 1;
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= MAX_FILE &&
        (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        *len = got;
    }
    close(fd);
    return buf;
}

/* Parses data into c's table; 0, or -1 when it is not a valid cache. */
static int parse(bbit_dircache *c, size_t len)
{
    const char *p = c->data;
    if (len < sizeof MAGIC || memcmp(p, MAGIC, sizeof MAGIC) != 0)
        return -1;
    size_t count = 0;
    for (size_t at = sizeof MAGIC; at < len; count++) { /* validate, count */
        struct rec_header h;
        if (len - at < sizeof h)
            return -1;
        memcpy(&h, p + at, sizeof h);
        at += sizeof h;
        if (h.dir_len == 0 || len - at < (size_t)h.dir_len + h.names_len || p[at] != '/' ||
            memchr(p + at, '\0', h.dir_len) || !names_valid(p + at + h.dir_len, h.names_len))
            return -1;
        at += (size_t)h.dir_len + h.names_len;
    }
    size_t size = 16;
    while (size < count * 2)
        size *= 2;
    c->slots = calloc(size, sizeof *c->slots);
    if (!c->slots)
        return -1;
    c->mask = size - 1;
    for (size_t at = sizeof MAGIC; at < len;) {
        struct slot s;
        memcpy(&s.h, p + at, sizeof s.h);
        at += sizeof s.h;
        s.dir = p + at;
        s.names = p + at + s.h.dir_len;
        at += (size_t)s.h.dir_len + s.h.names_len;
        size_t i = hash_of(s.dir, s.h.dir_len) & c->mask;
        while (c->slots[i].dir) /* a folder twice: the first one is found */
            i = (i + 1) & c->mask;
        c->slots[i] = s;
    }
    c->count = count;
    return 0;
}

bbit_dircache *bbit_dircache_load(const char *path)
{
    bbit_dircache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t len = 0;
    c->data = read_file(path, &len);
    if (c->data && parse(c, len) != 0) {
        free(c->slots);
        c->slots = NULL;
        c->count = 0;
    }
    return c;
}

const char *bbit_dircache_lookup(const bbit_dircache *c, const char *dir, const struct stat *st,
                                 size_t *len)
{
    if (!c || !c->slots)
        return NULL;
    size_t dir_len = strlen(dir);
    struct rec_header now;
    header_of(&now, st);
    for (size_t i = hash_of(dir, dir_len) & c->mask; c->slots[i].dir; i = (i + 1) & c->mask) {
        const struct slot *s = &c->slots[i];
        if (s->h.dir_len != dir_len || memcmp(s->dir, dir, dir_len) != 0)
            continue;
        if (s->h.ino != now.ino || s->h.mtime_ns != now.mtime_ns || s->h.ctime_ns != now.ctime_ns ||
            s->h.size != now.size)
            return NULL;
        *len = s->h.names_len;
        return s->names;
    }
    return NULL;
}

size_t bbit_dircache_count(const bbit_dircache *c)
{
    return c ? c->count : 0;
}

void bbit_dircache_free(bbit_dircache *c)
{
    if (!c)
        return;
    free(c->slots);
    free(c->data);
    free(c);
}

int bbit_dircache_record(struct bbit_dircache_out *out, const char *dir, const struct stat *st,
                         const char *names, size_t names_len)
{
    struct rec_header h;
    size_t dir_len = strlen(dir);
    if (dir_len > UINT32_MAX || names_len > UINT32_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    header_of(&h, st);
    h.dir_len = (uint32_t)dir_len;
    h.names_len = (uint32_t)names_len;
    size_t need = out->len + sizeof h + dir_len + names_len;
    if (need > out->cap) {
        size_t cap = out->cap ? out->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *data = realloc(out->data, cap);
        if (!data) {
            errno = ENOMEM;
            return -1;
        }
        out->data = data;
        out->cap = cap;
    }
    memcpy(out->data + out->len, &h, sizeof h);
    memcpy(out->data + out->len + sizeof h, dir, dir_len);
    if (names_len)
        memcpy(out->data + out->len + sizeof h + dir_len, names, names_len);
    out->len = need;
    out->count++;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int bbit_dircache_save(const char *path, const struct bbit_dircache_out *outs, size_t n)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(tmp, '/');
    if (slash && slash != tmp) { /* the folder (a cache folder may not exist yet) */
        *slash = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return -1;
        *slash = '/';
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int r = write_all(fd, MAGIC, sizeof MAGIC);
    for (size_t i = 0; r == 0 && i < n; i++)
        if (outs[i].len)
            r = write_all(fd, outs[i].data, outs[i].len);
    int e = errno;
    if (close(fd) != 0 && r == 0) {
        r = -1;
        e = errno;
    }
    if (r == 0 && rename(tmp, path) != 0) {
        r = -1;
        e = errno;
    }
    if (r != 0) {
        unlink(tmp);
        errno = e;
    }
    return r;
}
