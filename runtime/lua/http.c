/* bbit.core.http: HTTP transfers, on one of two transports.
 *
 * `core.http.start(request)` creates a transfer (a waitable, see
 * stdlib/bbit/jobs.lua); `core.http.wait` is the scheduler's blocking point
 * while transfers are pending. A request to an http:// URL (no proxy, no
 * redirects to follow) goes over the plain HTTP/1.1 transport (http_plain.c);
 * every other one over libcurl, loaded on first use (~15 ms: the plain
 * transport spares a command that). BBIT_HTTP=curl sends every request
 * through libcurl. Both give the same results and messages.
 *
 * libcurl transfers share one process-wide multi handle. Callbacks from curl
 * never touch Lua except the progress callback, which goes through lua_pcall
 * (garbage collector stopped, top saved) and aborts the transfer on error.
 * Retries, JSON and error wording for HTTP statuses are the public tier's
 * (stdlib/bbit/http.lua).
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http_transfer.h"

#ifndef BBIT_VERSION
#define BBIT_VERSION "0.0.0"
#endif

#define TRANSFER_T "bbit.http.transfer"
#define MULTI_T "bbit.http.multi"

enum { MAX_EXTRA_FDS = 256, ERROR_SNIPPET = 64 * 1024 };

static CURLM *multi;           // the process-wide multi handle
static lua_State *callback_L;  // the state running curl_multi_perform (for callbacks)
static int in_perform;         // guards against re-entry from a progress callback

/* ---- buffers and strings ---- */

int buffer_add(struct buffer *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void buffer_free(struct buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void set_abort(transfer *t, char *msg)
{
    if (!t->abort_msg)
        t->abort_msg = msg;
    else
        free(msg);
}

/* ---- the multi handle ---- */

static int multi_gc(lua_State *L)
{
    if (multi) {
        CURLM *m = multi;
        multi = NULL;
        curl_multi_cleanup(m);
        curl_global_cleanup();
    }
    return 0;
}

/* Creates the multi handle once; its lifetime is a userdata in the registry. */
static void multi_open(lua_State *L)
{
    if (multi)
        return;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lua_newuserdatauv(L, 1, 0); // [ud]
    luaL_newmetatable(L, MULTI_T);
    lua_pushcfunction(L, multi_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, MULTI_T);
    multi = curl_multi_init();
    if (!multi)
        luaL_error(L, "http: cannot initialise libcurl");
}

/* ---- closing ---- */

static void discard_output(transfer *t)
{
    if (t->out) {
        fclose(t->out);
        t->out = NULL;
    }
    if (t->tmp_path) {
        unlink(t->tmp_path);
        free(t->tmp_path);
        t->tmp_path = NULL;
    }
}

static void detach(transfer *t)
{
    if (t->in_multi && multi)
        curl_multi_remove_handle(multi, t->easy);
    t->in_multi = 0;
}

/* Frees every resource of t; idempotent. */
static void transfer_free(lua_State *L, transfer *t)
{
    t->open = NULL;
    detach(t);
    if (t->easy) { // every libcurl call is behind this test: a plain transfer never loads it
        CURL *e = t->easy;
        t->easy = NULL;
        curl_easy_cleanup(e);
        curl_slist_free_all(t->curl_headers);
        t->curl_headers = NULL;
    }
    if (t->plain)
        plain_close(t);
    for (size_t i = 0; i < t->n_headers; i++)
        free(t->headers[i]);
    free(t->headers);
    t->headers = NULL;
    t->n_headers = 0;
    discard_output(t);
    if (t->upload) {
        fclose(t->upload);
        t->upload = NULL;
    }
    if (t->progress_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, t->progress_ref);
        t->progress_ref = LUA_NOREF;
    }
    free(t->url);
    free(t->body);
    free(t->out_path);
    free(t->abort_msg);
    free(t->error);
    free(t->effective_url);
    t->url = t->body = t->out_path = t->abort_msg = t->error = t->effective_url = NULL;
    buffer_free(&t->data);
    buffer_free(&t->header_lines);
}

// t:close() (also __gc, __close): drops the transfer and frees everything
static int transfer_close(lua_State *L)
{
    transfer *t = luaL_checkudata(L, 1, TRANSFER_T);
    if (in_perform && t->state == RUNNING && (t->in_multi || t->plain))
        return luaL_error(L, "http: cannot close a running transfer from a progress callback");
    transfer_free(L, t);
    return 0;
}

/* ---- the response, from either transport ---- */

int transfer_header(transfer *t, const char *line, size_t n)
{
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        t->header_lines.len = 0; // a new response (after 100-continue or a redirect)
        const char *sp = memchr(line, ' ', n);
        t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    }
    return buffer_add(&t->header_lines, line, n);
}

int transfer_body(transfer *t, const char *p, size_t n)
{
    t->received += (curl_off_t)n;
    if (t->max_size > 0 && t->received > t->max_size) {
        set_abort(t, dup_printf("response larger than the limit of %lld bytes",
                                (long long)t->max_size));
        t->error_kind = "too_large";
        return -1;
    }
    if (t->out && t->status < 300) {
        if (fwrite(p, 1, n, t->out) != n) {
            set_abort(t, dup_printf("cannot write %s: %s", t->out_path, strerror(errno)));
            t->error_kind = "io";
            return -1;
        }
        return 0;
    }
    // In memory (or an error body while downloading to a file: keep a snippet).
    if (t->out && t->data.len >= ERROR_SNIPPET)
        return 0;
    if (buffer_add(&t->data, p, n) != 0) {
        set_abort(t, dup_printf("out of memory reading the response"));
        t->error_kind = "too_large";
        return -1;
    }
    return 0;
}

long transfer_read_body(transfer *t, char *buf, size_t n)
{
    if (t->upload) {
        size_t r = fread(buf, 1, n, t->upload);
        if (r == 0 && ferror(t->upload)) {
            set_abort(t, dup_printf("cannot read the request body file: %s", strerror(errno)));
            t->error_kind = "io";
            return -1;
        }
        return (long)r;
    }
    size_t left = t->body_len - t->body_pos;
    if (n > left)
        n = left;
    memcpy(buf, t->body + t->body_pos, n);
    t->body_pos += n;
    return (long)n;
}

int transfer_rewind_body(transfer *t)
{
    t->body_pos = 0;
    if (t->upload && fseek(t->upload, 0, SEEK_SET) != 0) {
        set_abort(t, dup_printf("cannot read the request body file: %s", strerror(errno)));
        t->error_kind = "io";
        return -1;
    }
    return 0;
}

/* ---- curl callbacks (no Lua here except through progress_cb's pcall) ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return transfer_body(ud, ptr, n) == 0 ? n : 0;
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return transfer_header(ud, ptr, n) == 0 ? n : 0;
}

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    long r = transfer_read_body(ud, ptr, size * nmemb);
    return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

static int call_progress(lua_State *L, transfer *t, curl_off_t dlnow, curl_off_t dltotal,
                         curl_off_t ulnow, curl_off_t ultotal)
{
    curl_off_t now[4] = {dlnow, dltotal, ulnow, ultotal};
    if (!L || t->progress_ref == LUA_NOREF || memcmp(now, t->last_progress, sizeof now) == 0)
        return 0;
    memcpy(t->last_progress, now, sizeof now);
    int top = lua_gettop(L);
    int gc_running = lua_gc(L, LUA_GCISRUNNING);
    lua_gc(L, LUA_GCSTOP); // no finaliser of another transfer may run inside curl
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->progress_ref);
    lua_pushinteger(L, (lua_Integer)dlnow);
    lua_pushinteger(L, (lua_Integer)dltotal);
    lua_pushinteger(L, (lua_Integer)ulnow);
    lua_pushinteger(L, (lua_Integer)ultotal); // [fn, dlnow, dltotal, ulnow, ultotal]
    int abort = 0;
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (!msg && luaL_callmeta(L, -1, "__tostring"))
            msg = lua_tostring(L, -1);
        set_abort(t, dup_printf("progress callback failed: %s", msg ? msg : "(error object)"));
        t->error_kind = "callback";
        abort = 1;
    } else if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
        set_abort(t, dup_printf("cancelled by the progress callback"));
        t->error_kind = "cancelled";
        abort = 1;
    }
    lua_settop(L, top);
    if (gc_running)
        lua_gc(L, LUA_GCRESTART);
    return abort;
}

static int progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    return call_progress(callback_L, ud, dlnow, dltotal, ulnow, ultotal);
}

int transfer_progress(lua_State *L, transfer *t, curl_off_t dlnow, curl_off_t dltotal,
                      curl_off_t ulnow, curl_off_t ultotal)
{
    if (t->progress_ref == LUA_NOREF)
        return 0;
    in_perform = 1; // the callback may not start, step or close transfers
    int abort = call_progress(L, t, dlnow, dltotal, ulnow, ultotal);
    in_perform = 0;
    return abort;
}

/* ---- finishing a transfer ---- */

/* The proxy variable libcurl takes for t's URL ("http_proxy"), or NULL:
 * the lower-case name only for http (as libcurl), then ALL_PROXY. */
static const char *proxy_variable(const transfer *t)
{
    static const char *const https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    static const char *const http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    const char *const *vars = strncmp(t->url, "https:", 6) == 0 ? https : http;
    for (int i = 0; i < 4 && vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return vars[i];
    }
    return NULL;
}

static char *connect_error(transfer *t)
{
    long os_errno = 0;
    curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno != ECONNREFUSED)
        return NULL;
    const char *proxy = proxy_variable(t);
    if (proxy) // (unless no_proxy exempts the host)
        return dup_printf("connection refused (is the server running? requests go through the "
                          "proxy %s=%s)", proxy, getenv(proxy));
    return dup_printf("connection refused (is the server running?)");
}

/* "cannot resolve host 'example.invalid' (check the URL and the network)" */
static char *resolve_error(transfer *t)
{
    char *host = NULL;
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, t->url, 0) == CURLUE_OK)
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    char *msg = dup_printf("cannot resolve host '%s' (check the URL and the network)",
                           host ? host : "?");
    curl_free(host);
    curl_url_cleanup(u);
    return msg;
}

/* Which limit ended the transfer: curl's message tells the phase. */
static char *timeout_error(transfer *t, const char *detail)
{
    if (strstr(detail, "too slow"))
        return dup_printf("transfer too slow (less than %ld bytes/s for %ld s)", t->low_speed_limit,
                          t->low_speed_time);
    int connecting = strncmp(detail, "Connection timed out", 20) == 0 ||
                     strncmp(detail, "Resolving timed out", 19) == 0;
    double limit = t->timeout;
    if (connecting && t->connect_timeout > 0 && (limit <= 0 || t->connect_timeout < limit))
        limit = t->connect_timeout;
    if (limit <= 0)
        return dup_printf("timed out: %s", detail);
    return dup_printf("%s after %g s", connecting ? "connection timed out" : "timed out", limit);
}

/* The message and kind of a failed transfer (curl code != OK). */
static void describe_failure(transfer *t)
{
    size_t n = strlen(t->errbuf);
    while (n > 0 && isspace((unsigned char)t->errbuf[n - 1]))
        t->errbuf[--n] = '\0';
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->code);
    char *reason = NULL;
    const char *kind = "network";
    if (t->abort_msg) {
        reason = dup_printf("%s", t->abort_msg);
        kind = t->error_kind ? t->error_kind : "aborted";
    } else {
        switch (t->code) {
        case CURLE_COULDNT_CONNECT:
            reason = connect_error(t);
            if (!reason)
                reason = dup_printf("cannot connect: %s", detail);
            kind = "connect";
            break;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            reason = resolve_error(t);
            kind = "dns";
            break;
        case CURLE_OPERATION_TIMEDOUT:
            reason = timeout_error(t, detail);
            kind = "timeout";
            break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
            reason = dup_printf("TLS error: %s", detail);
            kind = "tls";
            break;
        case CURLE_UNSUPPORTED_PROTOCOL:
            reason = dup_printf("unsupported protocol (only http:// and https:// URLs)");
            kind = "usage";
            break;
        case CURLE_URL_MALFORMAT:
            reason = dup_printf("malformed URL: %s", detail);
            kind = "usage";
            break;
        case CURLE_TOO_MANY_REDIRECTS:
            reason = dup_printf("too many redirects: %s", detail);
            kind = "redirects";
            break;
        case CURLE_FILESIZE_EXCEEDED:
            reason = dup_printf("response larger than the limit of %lld bytes",
                                (long long)t->max_size);
            kind = "too_large";
            break;
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
            reason = dup_printf("connection lost: %s", detail);
            kind = "network";
            break;
        default:
            reason = dup_printf("%s", detail);
            break;
        }
    }
    transfer_fail(t, kind, "%s", reason ? reason : "out of memory");
    free(reason);
}

void transfer_fail(transfer *t, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *reason = malloc((size_t)n + 1);
    if (reason) {
        va_start(ap, fmt);
        vsnprintf(reason, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    free(t->error);
    t->error = dup_printf("%s %s: %s", t->method, t->url, reason ? reason : "out of memory");
    t->error_kind = kind;
    free(reason);
}

/* Moves a finished download into place: the temp file becomes output_file. */
static void finish_output(transfer *t)
{
    if (!t->out)
        return;
    int ok = !t->error && t->status >= 200 && t->status < 300;
    if (!ok) {
        discard_output(t);
        return;
    }
    FILE *f = t->out;
    t->out = NULL;
    int failed = fflush(f) != 0 || fsync(fileno(f)) != 0;
    failed = (fclose(f) != 0) || failed;
    if (failed || rename(t->tmp_path, t->out_path) != 0) {
        t->error = dup_printf("%s %s: cannot write %s: %s", t->method, t->url, t->out_path,
                              strerror(errno));
        t->error_kind = "io";
        unlink(t->tmp_path);
    }
    free(t->tmp_path);
    t->tmp_path = NULL;
}

void transfer_finish(transfer *t)
{
    t->state = DONE;
    if (t->upload) {
        fclose(t->upload);
        t->upload = NULL;
    }
    finish_output(t);
}

/* A libcurl transfer ended with code. */
static void finish(transfer *t, CURLcode code)
{
    detach(t);
    t->code = code;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
    curl_off_t retry_after = 0, micros = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &micros);
    t->retry_after = (long)retry_after;
    t->seconds = (double)micros / 1e6;
    char *effective = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &effective);
    if (effective && strcmp(effective, t->url) != 0)
        t->effective_url = strdup(effective);
    if (code != CURLE_OK)
        describe_failure(t);
    transfer_finish(t);
}

/* Runs curl (non-blocking) and marks the transfers that finished; returns
 * the number of transfers still running. */
static int perform(lua_State *L)
{
    int running = 0;
    callback_L = L;
    in_perform = 1;
    curl_multi_perform(multi, &running);
    in_perform = 0;
    callback_L = NULL;
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t && t->state == RUNNING)
            finish(t, msg->data.result);
    }
    return running;
}

static void check_not_in_callback(lua_State *L, const char *fn)
{
    if (in_perform)
        luaL_error(L, "http.%s: not allowed inside a progress callback", fn);
}

/* ---- building a request ---- */

static const char *opt_string(lua_State *L, int idx, const char *field)
{
    lua_getfield(L, idx, field);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "http.start: request field '%s' must be a string", field);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1); // the string stays alive: the request table holds it
    return s;
}

static double opt_number(lua_State *L, int idx, const char *field, double dflt)
{
    lua_getfield(L, idx, field);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "http.start: request field '%s' must be a number", field);
        v = lua_tonumber(L, -1);
        if (!(v >= 0 && v <= 1e15)) // also rejects NaN
            luaL_error(L, "http.start: request field '%s' must be between 0 and 1e15", field);
    }
    lua_pop(L, 1);
    return v;
}

static int header_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

static void add_header(lua_State *L, transfer *t, const char *line)
{
    if (!header_ok(line))
        luaL_error(L, "http.start: header contains a line break: %s", line);
    char **list = realloc(t->headers, (t->n_headers + 1) * sizeof *list);
    if (list)
        t->headers = list;
    char *copy = list ? strdup(line) : NULL;
    if (!copy)
        luaL_error(L, "http.start: out of memory");
    t->headers[t->n_headers++] = copy;
}

/* headers = {["Name"] = "value", ...} or {"Name: value", ...} */
static void set_headers(lua_State *L, int idx, transfer *t)
{
    lua_getfield(L, idx, "headers"); // [headers]
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    luaL_argexpected(L, lua_istable(L, -1), idx, "headers as a table");
    lua_pushnil(L);
    while (lua_next(L, -2)) { // [headers, key, value]
        if (lua_type(L, -2) == LUA_TNUMBER) {
            add_header(L, t, luaL_checkstring(L, -1));
        } else {
            const char *name = lua_tostring(L, -2);
            const char *value = lua_tostring(L, -1);
            if (!name || !value)
                luaL_error(L, "http.start: header names and values must be strings");
            lua_pushfstring(L, "%s: %s", name, value); // [headers, key, value, line]
            add_header(L, t, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void check_method(lua_State *L, const char *method)
{
    size_t n = strlen(method);
    if (n == 0 || n >= sizeof(((transfer *)0)->method))
        luaL_error(L, "http.start: invalid method '%s'", method);
    for (const char *p = method; *p; p++)
        if (!isupper((unsigned char)*p))
            luaL_error(L, "http.start: invalid method '%s' (use upper case, e.g. GET)", method);
}

/* Opens the upload file; returns an error message or NULL. */
static const char *set_body_file(lua_State *L, transfer *t, const char *path)
{
    t->upload = fopen(path, "rb");
    struct stat st;
    if (!t->upload || fstat(fileno(t->upload), &st) != 0)
        return lua_pushfstring(L, "http.start: %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return lua_pushfstring(L, "http.start: %s: not a regular file", path);
    t->body_len = (size_t)st.st_size;
    return NULL;
}

/* Creates the temp file beside output_file; returns an error message or NULL. */
static const char *set_output_file(lua_State *L, transfer *t, const char *path)
{
    t->out_path = strdup(path);
    t->tmp_path = dup_printf("%s.part.XXXXXX", path);
    if (!t->out_path || !t->tmp_path)
        return "http.start: out of memory";
    int fd = mkstemp(t->tmp_path);
    if (fd < 0) {
        const char *msg = lua_pushfstring(L, "http.start: %s: %s", path, strerror(errno));
        free(t->tmp_path);
        t->tmp_path = NULL;
        return msg;
    }
    fchmod(fd, 0644);
    t->out = fdopen(fd, "wb");
    if (!t->out) {
        close(fd);
        return lua_pushfstring(L, "http.start: %s: %s", path, strerror(errno));
    }
    return NULL;
}

/* The limits of the request (seconds, bytes, redirects). */
static void read_limits(lua_State *L, int idx, transfer *t)
{
    t->timeout = opt_number(L, idx, "timeout", 0);
    t->connect_timeout = opt_number(L, idx, "connect_timeout", 0);
    t->low_speed_limit = (long)opt_number(L, idx, "low_speed_limit", 0);
    t->low_speed_time = (long)opt_number(L, idx, "low_speed_time", 0);
    t->max_size = (curl_off_t)opt_number(L, idx, "max_size", 0);
    t->follow_redirects = -1;
    lua_getfield(L, idx, "follow_redirects"); // false/nil: off; true: 10; n: at most n
    if (lua_toboolean(L, -1)) {
        lua_Integer max = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 10;
        if (max < 0 || max > 1000)
            luaL_error(L, "http.start: request field 'follow_redirects' must be 0..1000");
        t->follow_redirects = (long)max;
    }
    lua_pop(L, 1);
}

static void read_progress(lua_State *L, int idx, transfer *t)
{
    lua_getfield(L, idx, "progress");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_isfunction(L, -1))
        luaL_error(L, "http.start: request field 'progress' must be a function");
    t->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    for (int i = 0; i < 4; i++)
        t->last_progress[i] = -1;
}

/* ---- the libcurl transport ---- */

static void curl_method_and_body(transfer *t, int has_body)
{
    CURL *e = t->easy;
    if (has_body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, t);
        // curl sends `Expect: 100-continue` for bodies over 1 MiB: a server can
        // then refuse (401, 413) before the body is sent.
        if (strcmp(t->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
    } else if (strcmp(t->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(t->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
    }
}

static void curl_limits(transfer *t)
{
    CURL *e = t->easy;
    if (t->timeout > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(t->timeout * 1000));
    if (t->connect_timeout > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(t->connect_timeout * 1000));
    if (t->low_speed_limit > 0 && t->low_speed_time > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, t->low_speed_limit);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, t->low_speed_time);
    }
    if (t->max_size > 0)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, t->max_size);
    if (t->follow_redirects >= 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, t->follow_redirects);
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (t->progress_ref != LUA_NOREF) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    }
}

/* Hands t to libcurl (loading it on first use); an error message or NULL. */
static const char *curl_start(lua_State *L, transfer *t, int has_body)
{
    multi_open(L);
    CURL *e = t->easy = curl_easy_init();
    if (!e)
        return "http.start: out of memory";
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)t);
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bbit/" BBIT_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    for (size_t i = 0; i < t->n_headers; i++) {
        struct curl_slist *l = curl_slist_append(t->curl_headers, t->headers[i]);
        if (!l)
            return "http.start: out of memory";
        t->curl_headers = l;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->curl_headers);
    curl_limits(t);
    curl_method_and_body(t, has_body);
    CURLMcode mc = curl_multi_add_handle(multi, e);
    if (mc != CURLM_OK)
        return lua_pushfstring(L, "http.start: %s", curl_multi_strerror(mc));
    t->in_multi = 1;
    return NULL;
}

// t = core.http.start{method=, url=, headers=, body=|body_file=, output_file=, timeout=,
//   connect_timeout=, low_speed_limit=, low_speed_time=, max_size=, follow_redirects=,
//   progress=fn(dlnow, dltotal, ulnow, ultotal)}   -> t | nil, err
static int http_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    check_not_in_callback(L, "start");
    transfer *t = lua_newuserdatauv(L, sizeof *t, 0); // [req, t]
    memset(t, 0, sizeof *t);
    t->open = t; // close() frees whatever is set below
    t->progress_ref = LUA_NOREF;
    luaL_setmetatable(L, TRANSFER_T);

    const char *url = opt_string(L, 1, "url");
    if (!url)
        return luaL_error(L, "http.start: request field 'url' is required");
    const char *method = opt_string(L, 1, "method");
    check_method(L, method ? method : "GET");
    snprintf(t->method, sizeof t->method, "%s", method ? method : "GET");
    size_t body_len = 0;
    lua_getfield(L, 1, "body");
    const char *body = lua_tolstring(L, -1, &body_len);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "http.start: request field 'body' must be a string");
    lua_pop(L, 1);
    const char *body_file = opt_string(L, 1, "body_file");
    const char *output_file = opt_string(L, 1, "output_file");
    if (body && body_file)
        return luaL_error(L, "http.start: give 'body' or 'body_file', not both");

    t->url = strdup(url);
    if (!t->url)
        return luaL_error(L, "http.start: out of memory");
    set_headers(L, 1, t);
    read_limits(L, 1, t);
    read_progress(L, 1, t);
    if (body) {
        t->body = malloc(body_len ? body_len : 1);
        if (!t->body)
            return luaL_error(L, "http.start: out of memory");
        memcpy(t->body, body, body_len);
        t->body_len = body_len;
    }
    const char *err = NULL;
    if (body_file)
        err = set_body_file(L, t, body_file);
    if (!err && output_file)
        err = set_output_file(L, t, output_file);
    int has_body = body != NULL || body_file != NULL;
    if (!err) {
        int plain = plain_start(t, has_body);
        err = plain > 0 ? NULL : plain < 0 ? "http.start: out of memory" : curl_start(L, t, has_body);
    }
    if (err) {
        lua_pushstring(L, err); // [req, t, ..., err]
        transfer_free(L, t);
        return bbit_fail(L, "%s", lua_tostring(L, -1));
    }
    lua_settop(L, 2);
    return 1;
}

/* ---- transfer methods ---- */

/* Pushes {fd} when t waits on its socket that way (writing: 1), else {}. */
static int push_poll_fd(lua_State *L, int writing)
{
    transfer *t = bbit_check_open(L, 1, TRANSFER_T, "HTTP transfer");
    int read_fd = -1, write_fd = -1;
    if (t->plain && t->state == RUNNING)
        plain_poll(t, &read_fd, &write_fd);
    lua_newtable(L);
    int fd = writing ? write_fd : read_fd;
    if (fd >= 0) {
        lua_pushinteger(L, fd);
        lua_rawseti(L, -2, 1);
    }
    return 1;
}

// fds = t:poll_fds(): descriptors to wait on for reading (a libcurl transfer has none:
//   core.http.wait watches curl's own sockets)
static int transfer_poll_fds(lua_State *L)
{
    return push_poll_fd(L, 0);
}

// fds = t:poll_write_fds(): descriptors to wait on for writing
static int transfer_poll_write_fds(lua_State *L)
{
    return push_poll_fd(L, 1);
}

// finished = t:step(): makes progress without blocking; true once the transfer ended
static int transfer_step(lua_State *L)
{
    transfer *t = bbit_check_open(L, 1, TRANSFER_T, "HTTP transfer");
    check_not_in_callback(L, "step");
    if (t->state == RUNNING && t->plain)
        plain_step(L, t);
    else if (t->state == RUNNING && multi)
        perform(L);
    lua_pushboolean(L, t->state != RUNNING);
    return 1;
}

// t:cancel(): stops the transfer (a partial download is removed)
static int transfer_cancel(lua_State *L)
{
    transfer *t = bbit_check_open(L, 1, TRANSFER_T, "HTTP transfer");
    check_not_in_callback(L, "cancel");
    if (t->state != RUNNING)
        return 0;
    detach(t);
    if (t->plain)
        plain_close(t);
    discard_output(t);
    t->state = CANCELLED;
    free(t->error);
    t->error = dup_printf("%s %s: cancelled", t->method, t->url);
    t->error_kind = "cancelled";
    return 0;
}

/* Pushes the response headers as a table of lowercased names (repeats joined by ", "). */
static void push_headers(lua_State *L, transfer *t)
{
    lua_newtable(L); // [headers]
    const char *p = t->header_lines.data;
    const char *end = p ? p + t->header_lines.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && colon > p && memcmp(p, "HTTP/", 5) != 0) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *q = p; q < colon; q++)
                luaL_addchar(&b, (char)tolower((unsigned char)*q));
            luaL_pushresult(&b); // [headers, name]
            const char *v = colon + 1;
            const char *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3); // [headers, name, old]
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            } else {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3); // [headers]
        }
        p = line_end + 1;
    }
}

/* The reason phrase of the status line ("Internal Server Error"), or "". */
static void push_reason(lua_State *L, transfer *t)
{
    const char *p = t->header_lines.data;
    if (!p || strncmp(p, "HTTP/", 5) != 0) {
        lua_pushliteral(L, "");
        return;
    }
    const char *eol = strpbrk(p, "\r\n");
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    const char *sp = memchr(p, ' ', n);                              // before the code
    const char *sp2 = sp ? memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p)) : NULL; // after it
    if (!sp2) {
        lua_pushliteral(L, "");
        return;
    }
    lua_pushlstring(L, sp2 + 1, n - (size_t)(sp2 + 1 - p));
}

// status, headers, body, info = t:result()   (body nil with output_file;
//   info = {reason=, retry_after=, url=, seconds=}) | nil, err, kind
static int transfer_result(lua_State *L)
{
    transfer *t = bbit_check_open(L, 1, TRANSFER_T, "HTTP transfer");
    if (t->state == RUNNING)
        return luaL_error(L, "http: result of a transfer that has not finished (call step)");
    if (t->error) {
        lua_pushnil(L);
        lua_pushstring(L, t->error);
        lua_pushstring(L, t->error_kind ? t->error_kind : "network");
        return 3;
    }
    lua_pushinteger(L, t->status);
    push_headers(L, t);
    if (t->out_path && t->status >= 200 && t->status < 300)
        lua_pushnil(L);
    else
        lua_pushlstring(L, t->data.data ? t->data.data : "", t->data.len);
    lua_createtable(L, 0, 4); // [status, headers, body, info]
    push_reason(L, t);
    lua_setfield(L, -2, "reason");
    lua_pushinteger(L, (lua_Integer)t->retry_after);
    lua_setfield(L, -2, "retry_after");
    lua_pushstring(L, t->effective_url ? t->effective_url : t->url);
    lua_setfield(L, -2, "url");
    lua_pushnumber(L, t->seconds);
    lua_setfield(L, -2, "seconds");
    return 4;
}

/* ---- module functions ---- */

/* Reads the integers of the table at idx into fds (events set); returns the new count. */
static int read_fds(lua_State *L, int idx, struct pollfd *fds, int n, short events)
{
    if (lua_isnoneornil(L, idx))
        return n;
    luaL_checktype(L, idx, LUA_TTABLE);
    int count = (int)lua_rawlen(L, idx);
    if (n + count > MAX_EXTRA_FDS)
        luaL_error(L, "http.wait: too many file descriptors (%d)", n + count);
    for (int i = 0; i < count; i++, n++) {
        lua_rawgeti(L, idx, i + 1);
        fds[n].fd = (int)luaL_checkinteger(L, -1);
        fds[n].events = events;
        fds[n].revents = 0;
        lua_pop(L, 1);
    }
    return n;
}

// running = core.http.wait(fds, timeout_ms[, write_fds]): blocks until curl or one of fds
//   (readable) or write_fds (writable) has work; libcurl is not loaded when no
//   transfer uses it
static int http_wait(lua_State *L)
{
    int timeout = (int)luaL_checkinteger(L, 2);
    check_not_in_callback(L, "wait");
    struct pollfd fds[MAX_EXTRA_FDS];
    int n = read_fds(L, 1, fds, 0, POLLIN);
    n = read_fds(L, 3, fds, n, POLLOUT);
    if (!multi) {
        poll(fds, (nfds_t)n, timeout < 0 ? 0 : timeout);
        lua_pushinteger(L, 0);
        return 1;
    }
    struct curl_waitfd extra[MAX_EXTRA_FDS];
    for (int i = 0; i < n; i++) {
        extra[i].fd = (curl_socket_t)fds[i].fd;
        extra[i].events = fds[i].events == POLLIN ? CURL_WAIT_POLLIN : CURL_WAIT_POLLOUT;
        extra[i].revents = 0;
    }
    CURLMcode mc = curl_multi_poll(multi, extra, (unsigned)n, timeout < 0 ? 0 : timeout, NULL);
    if (mc != CURLM_OK)
        return bbit_fail(L, "http.wait: %s", curl_multi_strerror(mc));
    lua_pushinteger(L, perform(L));
    return 1;
}

// seconds = core.http.now(): a monotonic clock (for deadlines and backoff)
static int http_now(lua_State *L)
{
    lua_pushnumber(L, bbit_monotonic());
    return 1;
}

// text = core.http.escape(s): percent-encodes s for a URL component
static int http_escape(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            luaL_addchar(&b, (char)c);
        else {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", c);
            luaL_addlstring(&b, hex, 3);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

// core.http.prefetch(url): starts loading libcurl on another thread (bbit/lazylibs.h) if
//   requests to url need it
static int http_prefetch(lua_State *L)
{
    if (!plain_accepts(luaL_checkstring(L, 1)))
        bbit_lazylibs_prefetch(BBIT_LAZY_CURL);
    return 0;
}

int luaopen_bbit_core_http(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"poll_fds", transfer_poll_fds},
        {"poll_write_fds", transfer_poll_write_fds},
        {"step", transfer_step},
        {"cancel", transfer_cancel},
        {"result", transfer_result},
        {"close", transfer_close},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"start", http_start},
        {"wait", http_wait},
        {"now", http_now},
        {"escape", http_escape},
        {"prefetch", http_prefetch},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, TRANSFER_T, methods, transfer_close);
    luaL_getmetatable(L, TRANSFER_T);
    lua_getfield(L, -1, "__index"); // [mt, methods]
    lua_pushliteral(L, "http");
    lua_setfield(L, -2, "kind");
    lua_pop(L, 2);
    luaL_newlib(L, fns); /* touches no libcurl function: a prefetch stays in the background */
    return 1;
}
