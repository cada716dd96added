/* The plain HTTP/1.1 transport of bbit.core.http (see http.c).
 *
 * It carries requests to http:// URLs when no proxy variable applies: the
 * usual way to reach a self-hosted bbit server on the machine or the local
 * network, and one a command should not pay ~15 ms of loading libcurl for.
 * https, proxies and redirects to follow go to libcurl. Host names are looked
 * up by http_resolve.c; each address is tried in turn, as libcurl does.
 *
 * Non-blocking: each step sends or reads what the socket takes and returns;
 * the scheduler waits on the descriptor plain_poll names. Like libcurl it
 * keeps idle connections (at most POOL_SIZE) for the next request to the same
 * host and port, replaces once a reused connection the server closed meanwhile,
 * sends `Expect: 100-continue` before a body over 1 MiB (so a server can
 * refuse it unsent), and reads Content-Length, chunked and close-delimited
 * bodies. Its messages are the libcurl transport's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_transfer.h"

#ifndef BBIT_VERSION
#define BBIT_VERSION "0.0.0"
#endif

enum {
    POOL_SIZE = 8,                 // idle connections kept
    MAX_HEAD = 256 * 1024,         // a response's status line and headers
    MAX_CHUNK_LINE = 4096,         // a chunk-size line or trailer line
    IO_SIZE = 64 * 1024,           // one send or recv
    STEP_BUDGET = 1 << 20,         // bytes moved in one step before other jobs get a turn
    EXPECT_THRESHOLD = 1024 * 1024 // bodies larger than this wait for 100 Continue (as libcurl)
};
static const double EXPECT_WAIT = 1.0; // seconds to wait for 100 Continue (libcurl's default)

enum phase { RESOLVE, CONNECT, SEND_HEAD, WAIT_CONTINUE, SEND_BODY, RECEIVE };
enum body_mode { NO_BODY, BY_LENGTH, CHUNKED, TO_CLOSE };
enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };
/* What one move did; receive and send_some may also say: */
enum { BLOCKED, PROGRESS, ENDED, BODY_CLOSED /* end of a close-delimited body */,
       SEND_FAILED /* p->send_errno */ };

struct plain {
    char host[HTTP_HOST_MAX]; // as in the URL (no brackets)
    int port;
    struct http_resolver *resolving;
    struct http_address addrs[HTTP_MAX_ADDRS];
    int n_addrs, addr_i, connect_errno;
    int fd;
    enum phase phase;
    int has_body, expect, reused, retried;
    double start, continue_deadline;
    // the request
    char *head; // request line and headers
    size_t head_len, head_pos;
    char chunk[IO_SIZE]; // the part of the body being sent
    size_t chunk_len, chunk_pos;
    curl_off_t body_sent;
    int request_sent, send_errno;
    // the response
    struct buffer in; // received, from `used` on not yet consumed
    size_t used;
    int got_bytes, head_done, keep_alive;
    enum body_mode mode;
    enum chunk_state chunk_state;
    curl_off_t remaining; // of the body (BY_LENGTH) or of the chunk
    curl_off_t content_length;
    // the low-speed limit's window
    double window_start;
    curl_off_t window_bytes;
};

static struct {
    char host[HTTP_HOST_MAX];
    int port;
    int fd;
} pool[POOL_SIZE];
static int pool_n;

/* ---- URLs ---- */

/* Parses http://HOST[:PORT][PATH][?QUERY][#FRAGMENT] into its host, port,
 * authority and request target; 0 when the plain transport cannot take url
 * (libcurl then reports what is wrong with it, if anything). */
static int parse_url(const char *url, char host[HTTP_HOST_MAX], int *port_out,
                     const char **authority, size_t *authority_len, const char **target,
                     size_t *target_len)
{
    if (strncmp(url, "http://", 7) != 0)
        return 0;
    const char *a = url + 7;
    size_t alen = strcspn(a, "/?#");
    const char *port = NULL;
    if (alen == 0 || memchr(a, '@', alen))
        return 0;
    if (a[0] == '[') { // [IPv6]
        const char *close = memchr(a, ']', alen);
        if (!close || close - a - 1 >= INET6_ADDRSTRLEN)
            return 0;
        memcpy(host, a + 1, (size_t)(close - a - 1));
        host[close - a - 1] = '\0';
        struct in6_addr v6;
        if (inet_pton(AF_INET6, host, &v6) != 1 || (close + 1 < a + alen && close[1] != ':'))
            return 0;
        port = close + 1 < a + alen ? close + 2 : NULL;
    } else { // a name or an IPv4 address: letters, digits, dots and dashes
        const char *colon = memchr(a, ':', alen);
        size_t hlen = colon ? (size_t)(colon - a) : alen;
        if (hlen == 0 || hlen >= HTTP_HOST_MAX || a[0] == '-' || a[0] == '.')
            return 0;
        for (size_t i = 0; i < hlen; i++)
            if (!isalnum((unsigned char)a[i]) && a[i] != '.' && a[i] != '-')
                return 0;
        memcpy(host, a, hlen);
        host[hlen] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    long port_no = 80;
    if (port) {
        port_no = 0;
        const char *p = port;
        for (; p < a + alen; p++) {
            if (*p < '0' || *p > '9' || port_no > 65535)
                return 0;
            port_no = port_no * 10 + (*p - '0');
        }
        if (p == port || port_no < 1 || port_no > 65535)
            return 0;
    }
    const char *t = a + alen;
    size_t tlen = strcspn(t, "#");
    for (size_t i = 0; i < tlen; i++) // libcurl escapes or refuses these: leave them to it
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return 0;
    *port_out = (int)port_no;
    *authority = a;
    *authority_len = alen;
    *target = t;
    *target_len = tlen;
    return 1;
}

/* BBIT_HTTP=curl: every request goes through libcurl. */
static int plain_forced_off(void)
{
    const char *forced = getenv("BBIT_HTTP");
    return forced && strcmp(forced, "curl") == 0;
}

/* Would libcurl send a request to url through a proxy? (It reads http_proxy,
 * lower case only for http, then all_proxy / ALL_PROXY.) */
static int proxy_set(void)
{
    static const char *const vars[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

int plain_accepts(const char *url)
{
    char host[HTTP_HOST_MAX];
    int port;
    const char *authority, *target;
    size_t alen, tlen;
    return !plain_forced_off() && !proxy_set() &&
           parse_url(url, host, &port, &authority, &alen, &target, &tlen);
}

/* ---- the request ---- */

/* The caller's header named name ("Host"), or NULL. */
static const char *user_header(const transfer *t, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < t->n_headers; i++)
        if (strncasecmp(t->headers[i], name, n) == 0 && t->headers[i][n] == ':')
            return t->headers[i];
    return NULL;
}

/* "Name:" with nothing after it: libcurl's way to drop a header it would send. */
static int empty_header(const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon)
        return 0;
    for (const char *p = colon + 1; *p; p++)
        if (*p != ' ' && *p != '\t')
            return 0;
    return 1;
}

static int add_line(struct buffer *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= sizeof line ? -1 : buffer_add(b, line, (size_t)n);
}

/* The request line and headers, as libcurl would send them. */
static int build_head(transfer *t, struct plain *p, const char *authority, size_t alen,
                      const char *target, size_t tlen)
{
    struct buffer b = {0};
    int failed = buffer_add(&b, t->method, strlen(t->method)) || buffer_add(&b, " ", 1);
    if (tlen == 0 || target[0] == '?')
        failed = failed || buffer_add(&b, "/", 1);
    failed = failed || buffer_add(&b, target, tlen) || buffer_add(&b, " HTTP/1.1\r\n", 11);
    if (!user_header(t, "Host"))
        failed = failed || buffer_add(&b, "Host: ", 6) || buffer_add(&b, authority, alen) ||
                 buffer_add(&b, "\r\n", 2);
    if (!user_header(t, "User-Agent"))
        failed = failed || add_line(&b, "User-Agent: bbit/%s\r\n", BBIT_VERSION);
    if (!user_header(t, "Accept"))
        failed = failed || add_line(&b, "Accept: */*\r\n");
    if (p->has_body && !user_header(t, "Content-Length"))
        failed = failed || add_line(&b, "Content-Length: %zu\r\n", t->body_len);
    p->expect = p->has_body && t->body_len > EXPECT_THRESHOLD && !user_header(t, "Expect");
    if (p->expect)
        failed = failed || add_line(&b, "Expect: 100-continue\r\n");
    for (size_t i = 0; i < t->n_headers; i++)
        if (!empty_header(t->headers[i]))
            failed = failed || buffer_add(&b, t->headers[i], strlen(t->headers[i])) ||
                     buffer_add(&b, "\r\n", 2);
    failed = failed || buffer_add(&b, "\r\n", 2);
    if (failed) {
        buffer_free(&b);
        return -1;
    }
    p->head = b.data;
    p->head_len = b.len;
    return 0;
}

int plain_start(transfer *t, int has_body)
{
    if (t->follow_redirects >= 0 || plain_forced_off() || proxy_set())
        return 0;
    struct plain *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    const char *authority, *target;
    size_t alen, tlen;
    if (!parse_url(t->url, p->host, &p->port, &authority, &alen, &target, &tlen)) {
        free(p);
        return 0;
    }
    p->fd = -1;
    p->has_body = has_body;
    p->content_length = -1;
    if (build_head(t, p, authority, alen, target, tlen) != 0) {
        free(p);
        return -1;
    }
    t->plain = p;
    return 1;
}

/* ---- connections ---- */

/* An idle connection to the server the server has not closed, or -1. */
static int pool_take(const struct plain *p)
{
    for (int i = pool_n - 1; i >= 0; i--) {
        if (pool[i].port != p->port || strcasecmp(pool[i].host, p->host) != 0)
            continue;
        int fd = pool[i].fd;
        memmove(&pool[i], &pool[i + 1], (size_t)(pool_n - i - 1) * sizeof *pool);
        pool_n--;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 0) == 0)
            return fd; // nothing to read: still open, as far as one can tell
        close(fd);     // closed by the server (or sent something unasked)
    }
    return -1;
}

static void pool_put(const struct plain *p)
{
    if (pool_n == POOL_SIZE) {
        close(pool[0].fd);
        memmove(&pool[0], &pool[1], (POOL_SIZE - 1) * sizeof *pool);
        pool_n--;
    }
    memcpy(pool[pool_n].host, p->host, sizeof p->host);
    pool[pool_n].port = p->port;
    pool[pool_n].fd = p->fd;
    pool_n++;
}

static void drop_connection(struct plain *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

/* Ends t with an error (the connection is closed). */
static void fail(transfer *t, const char *kind, const char *fmt, ...)
{
    struct plain *p = t->plain;
    drop_connection(p);
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    transfer_fail(t, kind, "%s", reason);
    t->seconds = bbit_monotonic() - p->start;
    transfer_finish(t);
}

/* Ends t after a callback or a write refused to go on (abort_msg says why). */
static void fail_aborted(transfer *t)
{
    fail(t, t->error_kind ? t->error_kind : "aborted", "%s", t->abort_msg);
}

static void connect_failed(transfer *t, int err)
{
    if (err == ECONNREFUSED)
        fail(t, "connect", "connection refused (is the server running?)");
    else
        fail(t, "connect", "cannot connect: %s", strerror(err));
}

/* Connects to the next address not tried yet; 0, or -1 when t failed. */
static int connect_next(transfer *t, struct plain *p)
{
    for (; p->addr_i < p->n_addrs; p->addr_i++) {
        const struct http_address *to = &p->addrs[p->addr_i];
        drop_connection(p);
        p->fd = socket(to->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->fd < 0) {
            p->connect_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(p->fd, (const struct sockaddr *)&to->sa, to->len) == 0) {
            p->phase = SEND_HEAD;
            return 0;
        }
        if (errno == EINPROGRESS) {
            p->phase = CONNECT;
            return 0;
        }
        p->connect_errno = errno;
    }
    connect_failed(t, p->connect_errno);
    return -1;
}

/* The addresses are known: connects to the first that answers. */
static int addresses_known(transfer *t, struct plain *p, int found)
{
    http_resolve_free(p->resolving);
    p->resolving = NULL;
    if (found < 0) {
        fail(t, "dns", "cannot resolve host '%s' (check the URL and the network)", p->host);
        return -1;
    }
    p->addr_i = 0;
    return connect_next(t, p);
}

/* Opens (or reuses) the connection; 0, or -1 when t failed. */
static int open_connection(transfer *t, struct plain *p)
{
    p->fd = p->retried ? -1 : pool_take(p);
    p->reused = p->fd >= 0;
    if (p->reused) {
        p->phase = SEND_HEAD;
        return 0;
    }
    if (p->n_addrs > 0) { // a retry: the addresses are known
        p->addr_i = 0;
        return connect_next(t, p);
    }
    p->resolving = http_resolve_start(p->host, p->port);
    if (!p->resolving) {
        fail(t, "dns", "cannot resolve host '%s': %s", p->host, strerror(errno));
        return -1;
    }
    p->phase = RESOLVE;
    int found = http_resolve_result(p->resolving, p->addrs, &p->n_addrs);
    return found == 0 ? 0 : addresses_known(t, p, found);
}

/* A reused connection the server had closed: the request starts again once,
 * on a new connection. 1 if it did (or t failed), 0 if not allowed. */
static int retry_fresh(transfer *t, struct plain *p)
{
    if (!p->reused || p->retried || p->got_bytes)
        return 0;
    drop_connection(p);
    p->retried = 1;
    p->head_pos = p->chunk_len = p->chunk_pos = 0;
    p->body_sent = 0;
    p->request_sent = p->send_errno = 0;
    p->in.len = p->used = 0;
    if (transfer_rewind_body(t) != 0)
        fail_aborted(t);
    else
        open_connection(t, p);
    return 1;
}

/* The connection ended before the response did. */
static void lost(transfer *t, struct plain *p, int err)
{
    if (retry_fresh(t, p))
        return;
    if (p->head_done && p->mode == BY_LENGTH)
        fail(t, "network", "connection lost: transfer closed with %lld bytes remaining to read",
             (long long)p->remaining);
    else if (p->head_done)
        fail(t, "network", "connection lost: transfer closed with outstanding read data remaining");
    else if (p->send_errno)
        fail(t, "network", "connection lost: Send failure: %s", strerror(p->send_errno));
    else if (err)
        fail(t, "network", "connection lost: Recv failure: %s", strerror(err));
    else if (!p->got_bytes)
        fail(t, "network", "connection lost: Empty reply from server");
    else
        fail(t, "network", "connection lost: the server closed the connection mid-response");
}

/* Tells the progress callback where t stands; -1 when it ended t. */
static int report_progress(lua_State *L, transfer *t, struct plain *p)
{
    if (!transfer_progress(L, t, t->received, p->content_length > 0 ? p->content_length : 0,
                           p->body_sent, p->has_body ? (curl_off_t)t->body_len : 0))
        return 0;
    fail_aborted(t);
    return -1;
}

/* The response is complete: t finishes, the connection waits for the next request. */
static void response_done(lua_State *L, transfer *t, struct plain *p)
{
    if (report_progress(L, t, p) != 0)
        return;
    if (p->keep_alive && p->request_sent && p->used == p->in.len)
        pool_put(p);
    else
        close(p->fd);
    p->fd = -1;
    t->seconds = bbit_monotonic() - p->start;
    transfer_finish(t);
}

/* ---- the response ---- */

/* Reads the header block ending at `end` (status line first); 0, or -1 when t failed. */
static int parse_head(transfer *t, struct plain *p, const char *head, const char *end)
{
    if (end - head < 12 || memcmp(head, "HTTP/1.", 7) != 0) {
        fail(t, "network", "connection lost: the server's reply is not HTTP/1.x");
        return -1;
    }
    int http10 = head[7] == '0';
    curl_off_t length = -1;
    int chunked = 0, close_asked = 0, keep_asked = 0;
    for (const char *line = head; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *next = eol ? eol + 1 : end;
        if (transfer_header(t, line, (size_t)(next - line)) != 0) {
            fail(t, "too_large", "out of memory reading the response");
            return -1;
        }
        const char *colon = memchr(line, ':', (size_t)(next - line));
        if (line != head && colon) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < next && (*v == ' ' || *v == '\t'))
                v++;
            if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0)
                length = strtoll(v, NULL, 10);
            else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0)
                chunked = memmem(v, (size_t)(next - v), "chunked", 7) != NULL;
            else if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0) {
                close_asked = strncasecmp(v, "close", 5) == 0;
                keep_asked = strncasecmp(v, "keep-alive", 10) == 0;
            } else if (nlen == 11 && strncasecmp(line, "Retry-After", 11) == 0)
                t->retry_after = strtol(v, NULL, 10);
        }
        line = next;
    }
    if (t->status >= 100 && t->status < 200) { // interim: the final response follows
        t->header_lines.len = 0;
        if (t->status == 100 && p->phase == WAIT_CONTINUE)
            p->phase = SEND_BODY;
        return 0;
    }
    p->head_done = 1;
    p->keep_alive = http10 ? keep_asked : !close_asked;
    if (p->phase != RECEIVE) { // answered before the body was sent (401, 413 ...)
        p->keep_alive = 0;
        p->phase = RECEIVE;
    }
    if (strcmp(t->method, "HEAD") == 0 || t->status == 204 || t->status == 304) {
        p->mode = NO_BODY;
    } else if (chunked) {
        p->mode = CHUNKED;
        p->chunk_state = CHUNK_SIZE;
    } else if (length >= 0) {
        p->mode = BY_LENGTH;
        p->remaining = p->content_length = length;
        if (t->max_size > 0 && length > t->max_size) {
            fail(t, "too_large", "response larger than the limit of %lld bytes",
                 (long long)t->max_size);
            return -1;
        }
    } else {
        p->mode = TO_CLOSE;
        p->keep_alive = 0;
    }
    return 0;
}

/* Consumes the received bytes; 1 when the response is complete, -1 when t
 * failed, 0 when more is needed. */
static int consume(transfer *t, struct plain *p)
{
    for (;;) {
        const char *at = p->in.data + p->used;
        size_t avail = p->in.len - p->used;
        if (!p->head_done) {
            const char *end = memmem(at, avail, "\r\n\r\n", 4);
            if (!end) {
                if (avail > MAX_HEAD) {
                    fail(t, "network", "the response headers are larger than %d KiB",
                         MAX_HEAD / 1024);
                    return -1;
                }
                return 0;
            }
            p->used += (size_t)(end + 4 - at);
            if (parse_head(t, p, at, end + 2) != 0)
                return -1;
            continue;
        }
        if (p->mode == NO_BODY || (p->mode == BY_LENGTH && p->remaining == 0))
            return 1;
        if (avail == 0)
            return 0;
        if (p->mode == TO_CLOSE || p->mode == BY_LENGTH ||
            (p->mode == CHUNKED && p->chunk_state == CHUNK_DATA)) {
            size_t n = avail;
            if (p->mode != TO_CLOSE && (curl_off_t)n > p->remaining)
                n = (size_t)p->remaining;
            if (transfer_body(t, at, n) != 0) {
                fail_aborted(t);
                return -1;
            }
            p->used += n;
            if (p->mode != TO_CLOSE)
                p->remaining -= (curl_off_t)n;
            if (p->mode == CHUNKED && p->remaining == 0)
                p->chunk_state = CHUNK_DATA_END;
            continue;
        }
        // chunk framing: a line ending in \n
        const char *eol = memchr(at, '\n', avail);
        if (!eol) {
            if (avail > MAX_CHUNK_LINE) {
                fail(t, "network", "connection lost: invalid chunked encoding in the response");
                return -1;
            }
            return 0;
        }
        p->used += (size_t)(eol + 1 - at);
        if (p->chunk_state == CHUNK_DATA_END) {
            p->chunk_state = CHUNK_SIZE; // the CRLF after a chunk's data
        } else if (p->chunk_state == CHUNK_SIZE) {
            char *hex_end;
            long long size = strtoll(at, &hex_end, 16);
            if (hex_end == at || size < 0) {
                fail(t, "network", "connection lost: invalid chunked encoding in the response");
                return -1;
            }
            p->remaining = size;
            p->chunk_state = size ? CHUNK_DATA : CHUNK_TRAILER;
        } else if (eol == at || (eol == at + 1 && at[0] == '\r')) { // the empty line after trailers
            return 1;
        }
    }
}

/* Reads what the socket has (at most budget bytes) into p->in. */
static int receive(transfer *t, struct plain *p, size_t *budget)
{
    if (p->used == p->in.len)
        p->in.len = p->used = 0;
    else if (p->used > IO_SIZE) { // keep the unconsumed tail at the start
        memmove(p->in.data, p->in.data + p->used, p->in.len - p->used);
        p->in.len -= p->used;
        p->used = 0;
    }
    if (p->in.cap < p->in.len + IO_SIZE + 1) {
        size_t cap = p->in.cap ? p->in.cap : IO_SIZE + 1;
        while (cap < p->in.len + IO_SIZE + 1)
            cap *= 2;
        char *d = realloc(p->in.data, cap);
        if (!d) {
            fail(t, "too_large", "out of memory reading the response");
            return ENDED;
        }
        p->in.data = d;
        p->in.cap = cap;
    }
    ssize_t n = recv(p->fd, p->in.data + p->in.len, IO_SIZE, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return BLOCKED;
    if (n <= 0) {
        int err = n < 0 ? errno : 0;
        if (n == 0 && p->head_done && p->mode == TO_CLOSE)
            return BODY_CLOSED;
        lost(t, p, err);
        return ENDED;
    }
    p->got_bytes = 1;
    p->in.len += (size_t)n;
    p->window_bytes += n;
    *budget = *budget > (size_t)n ? *budget - (size_t)n : 0;
    return PROGRESS;
}

/* ---- sending ---- */

/* Sends from buf; PROGRESS when all of it went, BLOCKED or SEND_FAILED. */
static int send_some(transfer *t, struct plain *p, const char *buf, size_t len, size_t *pos,
                     size_t *budget)
{
    while (*pos < len) {
        ssize_t n = send(p->fd, buf + *pos, len - *pos, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return BLOCKED;
        if (n < 0) {
            p->send_errno = errno;
            return SEND_FAILED; // the caller reads what the server said, if anything
        }
        *pos += (size_t)n;
        p->window_bytes += n;
        *budget = *budget > (size_t)n ? *budget - (size_t)n : 0;
        if (*budget == 0 && *pos < len)
            return BLOCKED;
    }
    return PROGRESS;
}

/* Sends the next part of the body; PROGRESS, BLOCKED, ENDED or SEND_FAILED. */
static int send_body(transfer *t, struct plain *p, size_t *budget)
{
    if (p->chunk_pos == p->chunk_len) {
        curl_off_t left = (curl_off_t)t->body_len - p->body_sent;
        if (left == 0) {
            p->request_sent = 1;
            p->phase = RECEIVE;
            return PROGRESS;
        }
        long n = transfer_read_body(t, p->chunk, left < IO_SIZE ? (size_t)left : IO_SIZE);
        if (n < 0) {
            fail_aborted(t);
            return ENDED;
        }
        if (n == 0) {
            fail(t, "io", "the request body file shrank while it was sent");
            return ENDED;
        }
        p->chunk_len = (size_t)n;
        p->chunk_pos = 0;
    }
    size_t before = p->chunk_pos;
    int r = send_some(t, p, p->chunk, p->chunk_len, &p->chunk_pos, budget);
    p->body_sent += (curl_off_t)(p->chunk_pos - before);
    return r;
}

/* ---- stepping ---- */

/* Reads and consumes what the server sent: ENDED (t finished), BLOCKED
 * (nothing to read) or PROGRESS. */
static int read_response(lua_State *L, transfer *t, struct plain *p, size_t *budget)
{
    int r = receive(t, p, budget);
    if (r == BODY_CLOSED) {
        response_done(L, t, p);
        return ENDED;
    }
    if (r != PROGRESS)
        return r;
    int c = consume(t, p);
    if (c == 0)
        return PROGRESS;
    if (c > 0)
        response_done(L, t, p);
    return ENDED;
}

/* One move of the state machine: PROGRESS (go on), BLOCKED (wait) or ENDED. */
static int move(lua_State *L, transfer *t, struct plain *p, size_t *budget, int *peeked)
{
    switch (p->phase) {
    case RESOLVE: {
        int found = http_resolve_result(p->resolving, p->addrs, &p->n_addrs);
        if (found == 0)
            return BLOCKED;
        return addresses_known(t, p, found) == 0 ? PROGRESS : ENDED;
    }
    case CONNECT: {
        struct pollfd pfd = {p->fd, POLLOUT, 0};
        if (poll(&pfd, 1, 0) == 0)
            return BLOCKED;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { // the next address, if any (::1 refused, 127.0.0.1 listening)
            p->connect_errno = err;
            p->addr_i++;
            return connect_next(t, p) == 0 ? PROGRESS : ENDED;
        }
        p->phase = SEND_HEAD;
        return PROGRESS;
    }
    case SEND_HEAD: {
        int r = send_some(t, p, p->head, p->head_len, &p->head_pos, budget);
        if (r == SEND_FAILED) {
            lost(t, p, 0); // or a retry on a new connection
            return ENDED;
        }
        if (r != PROGRESS)
            return r;
        if (!p->has_body) {
            p->request_sent = 1;
            p->phase = RECEIVE;
        } else if (p->expect) {
            p->phase = WAIT_CONTINUE;
            p->continue_deadline = bbit_monotonic() + EXPECT_WAIT;
        } else {
            p->phase = SEND_BODY;
        }
        return PROGRESS;
    }
    case WAIT_CONTINUE:
    case SEND_BODY:
        // Has the server answered already (100 Continue, or a refusal)?
        if (p->phase == WAIT_CONTINUE || !*peeked) {
            *peeked = 1;
            int r = read_response(L, t, p, budget);
            if (r != BLOCKED)
                return r; // PROGRESS: the phase may have changed
            if (p->phase == WAIT_CONTINUE) {
                if (bbit_monotonic() < p->continue_deadline)
                    return BLOCKED;
                p->phase = SEND_BODY; // no answer: send anyway, as libcurl does
            }
        }
        {
            int r = send_body(t, p, budget);
            if (r == SEND_FAILED) { // the server may have answered and closed: read it
                p->phase = RECEIVE;
                p->keep_alive = 0;
                return PROGRESS;
            }
            return r;
        }
    case RECEIVE: {
        int r = read_response(L, t, p, budget);
        return r == PROGRESS && *budget == 0 ? BLOCKED : r;
    }
    }
    return BLOCKED;
}

/* The time limits; 0, or -1 when t failed. */
static int check_limits(transfer *t, struct plain *p)
{
    double now = bbit_monotonic(), elapsed = now - p->start;
    int connecting = p->phase == CONNECT || p->phase == RESOLVE;
    if (connecting && t->connect_timeout > 0 && elapsed >= t->connect_timeout) {
        double limit = t->timeout > 0 && t->timeout < t->connect_timeout ? t->timeout
                                                                          : t->connect_timeout;
        fail(t, "timeout", "connection timed out after %g s", limit);
        return -1;
    }
    if (t->timeout > 0 && elapsed >= t->timeout) {
        fail(t, "timeout", "%s after %g s", connecting ? "connection timed out" : "timed out",
             t->timeout);
        return -1;
    }
    if (t->low_speed_limit > 0 && t->low_speed_time > 0 &&
        now - p->window_start >= (double)t->low_speed_time) {
        if ((double)p->window_bytes < (double)t->low_speed_limit * (now - p->window_start)) {
            fail(t, "timeout", "transfer too slow (less than %ld bytes/s for %ld s)",
                 t->low_speed_limit, t->low_speed_time);
            return -1;
        }
        p->window_start = now;
        p->window_bytes = 0;
    }
    return 0;
}

void plain_step(lua_State *L, transfer *t)
{
    struct plain *p = t->plain;
    if (p->start == 0) {
        p->start = p->window_start = bbit_monotonic();
        if (open_connection(t, p) != 0)
            return;
    }
    size_t budget = STEP_BUDGET;
    int peeked = 0, r;
    do
        r = move(L, t, p, &budget, &peeked);
    while (r == PROGRESS && budget > 0);
    if (t->state == RUNNING && check_limits(t, p) == 0)
        report_progress(L, t, p);
}

void plain_poll(const transfer *t, int *read_fd, int *write_fd)
{
    const struct plain *p = t->plain;
    *read_fd = *write_fd = -1;
    if (p->phase == RESOLVE && p->resolving) {
        *read_fd = http_resolve_fd(p->resolving);
        return;
    }
    if (p->fd < 0)
        return;
    switch (p->phase) {
    case RESOLVE:
        break;
    case CONNECT:
    case SEND_HEAD:
        *write_fd = p->fd;
        break;
    case SEND_BODY:
        *write_fd = p->fd;
        *read_fd = p->fd; // an early answer ends the upload
        break;
    case WAIT_CONTINUE:
    case RECEIVE:
        *read_fd = p->fd;
        break;
    }
}

void plain_close(transfer *t)
{
    struct plain *p = t->plain;
    if (!p)
        return;
    drop_connection(p);
    http_resolve_free(p->resolving);
    free(p->head);
    buffer_free(&p->in);
    free(p);
    t->plain = NULL;
}
