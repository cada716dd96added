/* Small helpers of the scope server: name and version checks, scope globs,
 * time, random ids, buffers. */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "bbit/sha256.h"
#include "server/internal.h"

int srv_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One scope part: [a-z0-9][a-z0-9_-]*, returns its length (0 if invalid). */
static size_t scope_part(const char *s)
{
    if (!is_lower_alnum(s[0]))
        return 0;
    size_t i = 1;
    while (is_lower_alnum(s[i]) || s[i] == '_' || s[i] == '-')
        i++;
    return i;
}

bool srv_valid_scope(const char *s)
{
    if (!s || strlen(s) > SRV_MAX_SCOPE)
        return false;
    size_t n = scope_part(s);
    if (n == 0)
        return false;
    if (s[n] == '\0')
        return true;
    if (s[n] != '.')
        return false;
    size_t m = scope_part(s + n + 1);
    return m > 0 && s[n + 1 + m] == '\0';
}

bool srv_valid_component(const char *s)
{
    if (!s || *s == '\0' || strlen(s) > SRV_MAX_COMPONENT || strstr(s, ".."))
        return false;
    bool segment_start = true;
    for (const char *p = s; *p; p++) {
        if (segment_start) {
            if (!is_lower_alnum(*p))
                return false;
            segment_start = false;
        } else if (*p == '/') {
            segment_start = true;
        } else if (!(is_lower_alnum(*p) || *p == '_' || *p == '.' || *p == '-')) {
            return false;
        }
    }
    return !segment_start;
}

bool srv_valid_user(const char *s)
{
    if (!s || strlen(s) > SRV_MAX_USER || !is_lower_alnum(s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!(is_lower_alnum(*p) || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

bool srv_valid_pattern(const char *s)
{
    if (!s || *s == '\0' || strlen(s) > SRV_MAX_PATTERN)
        return false;
    for (const char *p = s; *p; p++)
        if (!(is_lower_alnum(*p) || *p == '_' || *p == '.' || *p == '-' || *p == '*'))
            return false;
    return true;
}

bool srv_valid_token_name(const char *s)
{
    if (!s || *s == '\0' || strlen(s) > SRV_MAX_PATTERN)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool srv_valid_txn_id(const char *s)
{
    if (!s || strlen(s) != SRV_TXN_ID_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* A numeric identifier without leading zeros; returns its length or 0. */
static size_t semver_number(const char *s)
{
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    if (n == 0 || (n > 1 && s[0] == '0'))
        return 0;
    return n;
}

/* Dot-separated identifiers of [0-9A-Za-z-]; returns the length or 0. */
static size_t semver_idents(const char *s)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (isalnum((unsigned char)s[i]) || s[i] == '-')
            i++;
        if (i == start)
            return 0;
        if (s[i] != '.')
            return i;
        i++;
    }
}

bool srv_valid_semver(const char *s)
{
    if (!s || strlen(s) > SRV_MAX_VERSION)
        return false;
    size_t i = 0;
    for (int part = 0; part < 3; part++) {
        size_t n = semver_number(s + i);
        if (n == 0)
            return false;
        i += n;
        if (part < 2) {
            if (s[i] != '.')
                return false;
            i++;
        }
    }
    if (s[i] == '-') {
        size_t n = semver_idents(s + i + 1);
        if (n == 0)
            return false;
        i += 1 + n;
    }
    if (s[i] == '+') {
        size_t n = semver_idents(s + i + 1);
        if (n == 0)
            return false;
        i += 1 + n;
    }
    return s[i] == '\0';
}

/* Compares two digit strings without leading zeros numerically. */
static int cmp_digits(const char *a, size_t na, const char *b, size_t nb)
{
    if (na != nb)
        return na < nb ? -1 : 1;
    int c = strncmp(a, b, na);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

/* Compares prerelease strings a and b (up to '+' or NUL) by semver rules. */
static int cmp_prerelease(const char *a, const char *b)
{
    for (;;) {
        size_t na = strcspn(a, ".+"), nb = strcspn(b, ".+");
        bool da = all_digits(a, na), db = all_digits(b, nb);
        int c;
        if (da && db)
            c = cmp_digits(a, na, b, nb);
        else if (da != db)
            c = da ? -1 : 1;
        else {
            size_t n = na < nb ? na : nb;
            c = strncmp(a, b, n);
            if (c == 0 && na != nb)
                c = na < nb ? -1 : 1;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        bool ma = a[na] == '.', mb = b[nb] == '.';
        if (!ma || !mb)
            return ma == mb ? 0 : (ma ? 1 : -1);
        a += na + 1;
        b += nb + 1;
    }
}

int srv_semver_cmp(const char *a, const char *b)
{
    for (int part = 0; part < 3; part++) {
        size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
        int c = cmp_digits(a, na, b, nb);
        if (c != 0)
            return c;
        a += na;
        b += nb;
        if (part < 2) {
            a++;
            b++;
        }
    }
    bool pa = *a == '-', pb = *b == '-';
    if (!pa && !pb)
        return 0;
    if (pa != pb)
        return pa ? -1 : 1; // a prerelease sorts before its release
    return cmp_prerelease(a + 1, b + 1);
}

bool srv_glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

const char *srv_role_name(int role)
{
    switch (role) {
    case SRV_ROLE_READ:
        return "read";
    case SRV_ROLE_WRITE:
        return "write";
    case SRV_ROLE_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

int srv_role_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "read") == 0)
        return SRV_ROLE_READ;
    if (strcmp(s, "write") == 0)
        return SRV_ROLE_WRITE;
    if (strcmp(s, "admin") == 0)
        return SRV_ROLE_ADMIN;
    return -1;
}

bool srv_fault_wanted(const char *name)
{
    const char *wanted = getenv("BBIT_FAULT");
    return wanted && strcmp(wanted, name) == 0;
}

void srv_fault_point(const char *name)
{
    if (srv_fault_wanted(name)) {
        fprintf(stderr, "bbit serve: crash point %s (BBIT_FAULT)\n", name);
        kill(getpid(), SIGKILL);
    }
}

int64_t srv_now(void)
{
    return (int64_t)time(NULL);
}

void srv_iso8601(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int srv_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    if (nbytes > sizeof raw || RAND_bytes(raw, (int)nbytes) != 1)
        return -1;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    out[2 * nbytes] = '\0';
    return 0;
}

void srv_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[BBIT_SHA256_LEN];
    bbit_sha256_buffer(data, len, md);
    bbit_sha256_hex(md, out);
}

int srv_buf_add(struct srv_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void srv_buf_free(struct srv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
