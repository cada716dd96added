/* Lexical path checks and glob matching; see include/bbit/path.h. */
#include "bbit/path.h"

#include <stdlib.h>
#include <string.h>

/* ---- normalize ---------------------------------------------------------- */

/* Drops the last segment of out[0..*len) (which holds no ".." to cancel). */
static void pop_segment(char *out, size_t *len, size_t floor)
{
    size_t n = *len;
    while (n > floor && out[n - 1] != '/')
        n--;
    if (n > floor)
        n--; /* the '/' before the segment */
    *len = n;
}

static void push_segment(char *out, size_t *len, size_t floor, const char *seg, size_t n)
{
    if (*len > floor)
        out[(*len)++] = '/';
    memcpy(out + *len, seg, n);
    *len += n;
}

char *bbit_path_normalize(const char *path)
{
    size_t in_len = strlen(path);
    char *out = malloc(in_len + 2);
    if (!out)
        return NULL;
    size_t floor = 0, len = 0;
    size_t poppable = 0; /* segments in out that a ".." may cancel */
    if (path[0] == '/') {
        out[len++] = '/';
        floor = 1;
    }
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.')) {
            p += n;
            continue;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (poppable > 0) {
                pop_segment(out, &len, floor);
                poppable--;
            } else if (floor == 0) {
                push_segment(out, &len, floor, p, n); /* leading ".." of a relative path */
            }
        } else {
            push_segment(out, &len, floor, p, n);
            poppable++;
        }
        p += n;
    }
    if (len == 0)
        out[len++] = '.';
    out[len] = '\0';
    return out;
}

enum bbit_path_error bbit_path_safe_relative(const char *path, char **out)
{
    *out = NULL;
    if (path[0] == '\0')
        return BBIT_PATH_EMPTY;
    if (path[0] == '/')
        return BBIT_PATH_ABSOLUTE;
    char *norm = bbit_path_normalize(path);
    if (!norm)
        return BBIT_PATH_NOMEM;
    if (norm[0] == '.' && norm[1] == '.' && (norm[2] == '/' || norm[2] == '\0')) {
        free(norm);
        return BBIT_PATH_ESCAPES;
    }
    *out = norm;
    return BBIT_PATH_OK;
}

const char *bbit_path_error_message(enum bbit_path_error e)
{
    switch (e) {
    case BBIT_PATH_OK:
        return "ok";
    case BBIT_PATH_EMPTY:
        return "is empty";
    case BBIT_PATH_ABSOLUTE:
        return "is absolute (a relative path was expected)";
    case BBIT_PATH_ESCAPES:
        return "escapes its root with ..";
    case BBIT_PATH_NOMEM:
        return "out of memory";
    }
    return "invalid path";
}

static bool starts_with_dotdot(const char *p)
{
    return p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0');
}

static bool within_normalized(const char *root, const char *path)
{
    if ((root[0] == '/') != (path[0] == '/'))
        return false;
    if (strcmp(root, ".") == 0)
        return !starts_with_dotdot(path);
    if (strcmp(root, "/") == 0)
        return true;
    size_t n = strlen(root);
    return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool bbit_path_is_within(const char *root, const char *path)
{
    char *r = bbit_path_normalize(root);
    char *p = bbit_path_normalize(path);
    bool result = r && p && within_normalized(r, p);
    free(r);
    free(p);
    return result;
}

/* ---- glob --------------------------------------------------------------- */

/* Reads one (possibly backslash-escaped) class member character at *qp. */
static char class_char(const char **qp, const char *pend)
{
    const char *q = *qp;
    if (*q == '\\' && q + 1 < pend)
        q++;
    *qp = q + 1;
    return *q;
}

/* Matches the class starting at p ('[') against c; *next gets the position
 * after ']'. Returns -1 when p starts no well-formed class (then '[' is a
 * literal). */
static int match_class(const char *p, const char *pend, char c, const char **next)
{
    const char *q = p + 1;
    bool negate = false;
    if (q < pend && (*q == '!' || *q == '^')) {
        negate = true;
        q++;
    }
    bool found = false;
    bool first = true;
    while (q < pend && (*q != ']' || first)) {
        first = false;
        unsigned char lo = (unsigned char)class_char(&q, pend), hi = lo;
        if (q + 1 < pend && *q == '-' && q[1] != ']') {
            q++;
            hi = (unsigned char)class_char(&q, pend);
        }
        if ((unsigned char)c >= lo && (unsigned char)c <= hi)
            found = true;
    }
    if (q >= pend)
        return -1;
    *next = q + 1;
    return found != negate;
}

/* Does pattern char(s) at *pp match c? Advances *pp past them on a match. */
static bool match_one(const char **pp, const char *pend, char c)
{
    const char *p = *pp;
    if (*p == '?') {
        *pp = p + 1;
        return true;
    }
    if (*p == '[') {
        const char *next;
        int r = match_class(p, pend, c, &next);
        if (r >= 0) {
            if (r)
                *pp = next;
            return r == 1;
        }
    }
    if (*p == '\\' && p + 1 < pend)
        p++;
    if (*p != c)
        return false;
    *pp = p + 1;
    return true;
}

/* One segment: pattern [p, pend) against name [s, send), no '/' in either. */
static bool match_segment(const char *p, const char *pend, const char *s, const char *send)
{
    const char *star_p = NULL, *star_s = NULL;
    while (s < send) {
        if (p < pend && *p == '*') {
            while (p < pend && *p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (p < pend && match_one(&p, pend, *s)) {
            s++;
            continue;
        }
        if (!star_p)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (p < pend && *p == '*')
        p++;
    return p == pend;
}

static const char *segment_end(const char *s, const char *end)
{
    const char *slash = memchr(s, '/', (size_t)(end - s));
    return slash ? slash : end;
}

/* Whole pattern [p, pend) against whole path [s, send), segment by segment. */
static bool match_path(const char *p, const char *pend, const char *s, const char *send)
{
    for (;;) {
        if (p == pend)
            return s == send;
        const char *pseg = segment_end(p, pend);
        if (pseg - p == 2 && p[0] == '*' && p[1] == '*') {
            const char *rest = pseg < pend ? pseg + 1 : pseg;
            for (const char *q = s;;) {
                if (match_path(rest, pend, q, send))
                    return true;
                if (q == send)
                    return false;
                q = segment_end(q, send);
                if (q < send)
                    q++;
            }
        }
        if (s == send)
            return false;
        const char *sseg = segment_end(s, send);
        if (!match_segment(p, pseg, s, sseg))
            return false;
        p = pseg;
        s = sseg;
        if (p == pend)
            return s == send;
        if (s == send) /* the rest may be globstar segments */
            return match_path(p + 1, pend, s, send);
        p++; /* both at '/' */
        s++;
    }
}

bool bbit_glob_match(const char *pattern, const char *path)
{
    return match_path(pattern, pattern + strlen(pattern), path, path + strlen(path));
}

/* ---- ignore patterns ---------------------------------------------------- */

static bool ignore_match(const char *pattern, const char *path, bool is_dir, bool all_segments)
{
    const char *p = pattern, *pend = pattern + strlen(pattern);
    bool dir_only = false;
    while (pend > p && pend[-1] == '/') {
        pend--;
        dir_only = true;
    }
    bool anchored = false;
    while (p < pend && *p == '/') {
        p++;
        anchored = true;
    }
    if (p == pend)
        return false;
    const char *send = path + strlen(path);
    if (anchored || memchr(p, '/', (size_t)(pend - p))) {
        if (dir_only && !is_dir)
            return false;
        return match_path(p, pend, path, send);
    }
    /* no '/': any one segment (only the last one when !all_segments) */
    const char *s = path;
    if (!all_segments) {
        const char *slash = strrchr(path, '/');
        s = slash ? slash + 1 : path;
    }
    while (s < send) {
        const char *seg = segment_end(s, send);
        bool seg_is_dir = seg < send || is_dir;
        if ((!dir_only || seg_is_dir) && match_segment(p, pend, s, seg))
            return true;
        s = seg < send ? seg + 1 : seg;
    }
    return false;
}

bool bbit_ignore_match(const char *pattern, const char *path, bool is_dir)
{
    return ignore_match(pattern, path, is_dir, true);
}

bool bbit_ignore_match_last(const char *pattern, const char *path, bool is_dir)
{
    return ignore_match(pattern, path, is_dir, false);
}
