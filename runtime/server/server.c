/* `bbit serve`: libmicrohttpd set-up, routing, authentication of each
 * request, request bodies (JSON buffered up to 8 MiB, objects streamed into
 * the store writer), responses and the request log.
 *
 * A request's life: the first call of the access handler (headers only)
 * routes it, authenticates the caller, checks the scope and its role and the
 * Content-Length; failures are answered right there, before any body is
 * read. Body chunks then go to the JSON buffer or the object writer. The
 * last call (no more data) runs the route's handler. Errors found while a
 * body streams in (corrupt frame, too large) are remembered and answered at
 * the end: libmicrohttpd accepts a response only before or after the body.
 *
 * Paths that are not under /api/ are the web pages (pages.c, login.c): one
 * catch-all route whose handler does its own routing and authentication
 * (session cookie); their POST forms are buffered up to SRV_MAX_FORM_BODY. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "bbit/store.h"
#include "server/internal.h"

enum need {
    NEED_NOTHING,    /* no database, no auth (health) */
    NEED_OPTIONAL,   /* anonymous or a valid token */
    NEED_TOKEN,      /* a valid token */
    NEED_SCOPE_READ, /* read on the {scope} parameter */
    NEED_SCOPE_WRITE /* write on the {scope} parameter */
};

struct srv_route {
    const char *method;
    const char *pattern; /* "{}" segments are captured into params */
    srv_handler handler;
    enum need need;
    enum srv_body body;
};

static const struct srv_route ROUTES[] = {
    {"GET", "/api/v1/health", api_health, NEED_NOTHING, SRV_BODY_NONE},
    {"GET", "/api/v1/whoami", api_whoami, NEED_TOKEN, SRV_BODY_NONE},
    {"GET", "/api/v1/scopes", api_scopes, NEED_OPTIONAL, SRV_BODY_NONE},
    {"GET", "/api/v1/scopes/{}", api_scope, NEED_SCOPE_READ, SRV_BODY_NONE},
    {"GET", "/api/v1/scopes/{}/components", api_components, NEED_SCOPE_READ, SRV_BODY_NONE},
    {"GET", "/api/v1/scopes/{}/component", api_component, NEED_SCOPE_READ, SRV_BODY_NONE},
    {"POST", "/api/v1/scopes/{}/objects/missing", api_objects_missing, NEED_SCOPE_WRITE,
     SRV_BODY_JSON},
    {"GET", "/api/v1/scopes/{}/objects/{}", api_object_get, NEED_SCOPE_READ, SRV_BODY_NONE},
    {"PUT", "/api/v1/scopes/{}/objects/{}", api_object_put, NEED_SCOPE_WRITE, SRV_BODY_OBJECT},
    {"POST", "/api/v1/scopes/{}/objects/pack", api_objects_pack, NEED_SCOPE_WRITE, SRV_BODY_PACK},
    {"POST", "/api/v1/transactions", txn_prepare, NEED_TOKEN, SRV_BODY_JSON},
    {"GET", "/api/v1/transactions/{}", txn_get, NEED_TOKEN, SRV_BODY_NONE},
    {"POST", "/api/v1/transactions/{}/commit", txn_commit, NEED_TOKEN, SRV_BODY_NONE},
    {"POST", "/api/v1/transactions/{}/abort", txn_abort, NEED_TOKEN, SRV_BODY_NONE},
    {"POST", "/api/v1/logout", api_logout, NEED_TOKEN, SRV_BODY_NONE},
};
/* Everything outside /api/: the web pages. */
static const struct srv_route PAGES = {"*", "/", pages_handle, NEED_NOTHING, SRV_BODY_NONE};
#define NROUTES (sizeof ROUTES / sizeof ROUTES[0])

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- responses ------------------------------------------------------------ */

static int queue(struct srv_request *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return -1;
    enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        return -1;
    r->status = status;
    r->responded = true;
    return 0;
}

int srv_send_json(struct srv_request *r, unsigned status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text)
        return -1;
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return -1;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return queue(r, status, resp);
}

int srv_send_error_details(struct srv_request *r, unsigned status, const char *code, cJSON *details,
                           const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", message);
    if (details)
        cJSON_AddItemToObject(err, "details", details);
    return srv_send_json(r, status, root);
}

int srv_send_internal(struct srv_request *r, const char *reason)
{
    fprintf(stderr, "bbit serve: %s %s: internal error: %s\n", r->method, r->path, reason);
    return srv_send_error(r, 500, "internal", "internal server error (see the server log)");
}

int srv_send_file(struct srv_request *r, int fd, uint64_t offset, uint64_t size)
{
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(size, fd, offset);
    if (!resp) {
        close(fd);
        return -1;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    return queue(r, 200, resp);
}

cJSON *srv_parse_body(struct srv_request *r)
{
    if (r->body.len == 0) {
        srv_send_error(r, 400, "bad_request", "the request needs a JSON body");
        return NULL;
    }
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts(r->body.data, &end, 1);
    if (!json) {
        size_t at = end ? (size_t)(end - r->body.data) : 0;
        if (memchr(r->body.data, '\0', r->body.len))
            srv_send_error(r, 400, "bad_request", "malformed JSON: the body contains a NUL byte");
        else
            srv_send_error(r, 400, "bad_request", "malformed JSON at byte %zu of the body", at);
        return NULL;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        srv_send_error(r, 400, "bad_request", "the body must be a JSON object");
        return NULL;
    }
    return json;
}

const char *srv_query(struct srv_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int srv_scope_role(struct srv_request *r, const char *scope, bool *exists)
{
    char err[SRV_ERR_SIZE];
    bool is_public = false;
    int found = srv_db_scope_get(r->db, scope, &is_public, err, sizeof err);
    if (found < 0)
        return -1;
    *exists = found == 1;
    return srv_auth_role(&r->auth, scope, *exists && is_public);
}

struct bbit_store *srv_request_scope_store(struct srv_request *r, const char *scope)
{
    if (r->store && r->store_scope && strcmp(r->store_scope, scope) == 0)
        return r->store;
    bbit_store_close(r->store);
    free(r->store_scope);
    r->store_scope = NULL;
    r->store = srv_open_scope_store(r, scope);
    if (r->store && !(r->store_scope = strdup(scope))) {
        bbit_store_close(r->store);
        r->store = NULL;
        srv_send_internal(r, "out of memory");
    }
    return r->store;
}

struct bbit_store *srv_open_scope_store(struct srv_request *r, const char *scope)
{
    char dir[4200], err[BBIT_STORE_ERR_SIZE];
    if (srv_scope_dir(r->srv->root, scope, dir, sizeof dir) != 0) {
        srv_send_internal(r, "scope directory path too long");
        return NULL;
    }
    bbit_store *store = bbit_store_open(dir, BBIT_STORE_CREATE | BBIT_STORE_FSYNC, err, sizeof err);
    if (!store)
        srv_send_internal(r, err);
    return store;
}

/* ---- routing ---------------------------------------------------------------- */

/* Matches path against pattern, capturing "{}" segments into r->params. */
static bool match(const char *pattern, const char *path, struct srv_request *r)
{
    int nparam = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++, path++;
        size_t plen = strcspn(pattern, "/"), slen = strcspn(path, "/");
        if (plen == 2 && strncmp(pattern, "{}", 2) == 0) {
            if (slen == 0 || slen >= sizeof r->params[0] || nparam >= 2)
                return false;
            memcpy(r->params[nparam], path, slen);
            r->params[nparam][slen] = '\0';
            nparam++;
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return false;
        }
        pattern += plen, path += slen;
    }
    return *pattern == '\0' && *path == '\0';
}

/* The route for method+path; *path_known tells whether another method would match. */
static const struct srv_route *find_route(struct srv_request *r, const char *method,
                                          const char *path, bool *path_known)
{
    *path_known = false;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!match(ROUTES[i].pattern, path, r))
            continue;
        *path_known = true;
        if (strcmp(ROUTES[i].method, m) == 0)
            return &ROUTES[i];
    }
    return NULL;
}

static int send_method_not_allowed(struct srv_request *r, const char *path)
{
    char allow[64] = "";
    for (size_t i = 0; i < NROUTES; i++) {
        struct srv_request scratch;
        if (match(ROUTES[i].pattern, path, &scratch) && !strstr(allow, ROUTES[i].method)) {
            if (*allow)
                strcat(allow, ", ");
            strcat(allow, ROUTES[i].method);
        }
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", "method_not_allowed");
    char msg[256];
    snprintf(msg, sizeof msg, "%s is not allowed on %s (allowed: %s)", r->method, path, allow);
    cJSON_AddStringToObject(err, "message", msg);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return -1;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Allow", allow);
    return queue(r, 405, resp);
}

/* Checks the caller's role on the scope parameter; 0 when the request may go on. */
static int check_scope(struct srv_request *r)
{
    const char *scope = r->params[0];
    int need = r->route->need == NEED_SCOPE_WRITE ? SRV_ROLE_WRITE : SRV_ROLE_READ;
    if (!srv_valid_scope(scope)) {
        srv_send_error(r, 404, "scope_not_found", "invalid scope name '%.100s'", scope);
        return -1;
    }
    bool exists = false;
    int role = srv_scope_role(r, scope, &exists);
    if (role < 0) {
        srv_send_internal(r, sqlite3_errmsg(r->db));
        return -1;
    }
    r->role = role;
    if (role < need) {
        if (r->auth.token_id == 0)
            srv_send_error(r, 401, "unauthorized",
                           "scope %s needs a token with %s permission (sign in with 'bbit login')",
                           scope, srv_role_name(need));
        else
            srv_send_error(r, 403, "forbidden",
                           "your token (user %s) lacks %s permission on scope %s", r->auth.user,
                           srv_role_name(need), scope);
        return -1;
    }
    if (!exists) {
        srv_send_error(r, 404, "scope_not_found", "scope %s does not exist on this server", scope);
        return -1;
    }
    return 0;
}

/* Opens the database and resolves the caller; 0 when the request may go on. */
static int authenticate(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    r->db = srv_db_acquire(r->srv->root, err, sizeof err);
    if (!r->db) {
        srv_send_internal(r, err);
        return -1;
    }
    const char *header = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    int rc = srv_auth_lookup(r->db, header, &r->auth, err, sizeof err);
    if (rc == SRV_AUTH_ERROR) {
        srv_send_internal(r, err);
        return -1;
    }
    if (rc == SRV_AUTH_UNAUTHORIZED) {
        srv_send_error(r, 401, "unauthorized", "%s", err);
        return -1;
    }
    if (r->route->need == NEED_TOKEN && r->auth.token_id == 0) {
        srv_send_error(r, 401, "unauthorized",
                       "this request needs a token (sign in with 'bbit login' or set BBIT_TOKEN)");
        return -1;
    }
    return 0;
}

static uint64_t body_limit(const struct srv_request *r)
{
    if (r->body_kind == SRV_BODY_OBJECT)
        return r->srv->max_object_size;
    if (r->body_kind == SRV_BODY_PACK)
        return (r->srv->max_object_size > SRV_MAX_PACK_BODY ? r->srv->max_object_size : SRV_MAX_PACK_BODY) +
               4096;
    return r->body_kind == SRV_BODY_FORM ? SRV_MAX_FORM_BODY : BBIT_SERVER_MAX_JSON_BODY;
}

/* Checks Content-Length against the route's limit; 0 when acceptable. */
static int check_length(struct srv_request *r)
{
    const char *len = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t limit = body_limit(r);
    r->chunked = len == NULL;
    if (len && strtoull(len, NULL, 10) > limit && r->body_kind == SRV_BODY_FORM) {
        html_send_message(r, 413, "Request too large", "The form is too large.", NULL);
        return -1;
    }
    if (len && strtoull(len, NULL, 10) > limit) {
        srv_send_error(r, 413, "too_large",
                       "the request body (%s bytes) exceeds the limit of %llu bytes", len,
                       (unsigned long long)limit);
        return -1;
    }
    return 0;
}

/* Sets up an object upload: the store, and a writer unless the object exists. */
static int begin_upload(struct srv_request *r)
{
    const char *id = r->params[1];
    if (!bbit_store_is_id(id)) {
        srv_send_error(r, 400, "bad_request",
                       "invalid object id '%.80s' (expected 64 lowercase hex digits)", id);
        return -1;
    }
    r->store = srv_open_scope_store(r, r->params[0]);
    if (!r->store)
        return -1;
    char err[BBIT_STORE_ERR_SIZE];
    int has = bbit_store_has(r->store, id, err, sizeof err);
    if (has < 0) {
        srv_send_internal(r, err);
        return -1;
    }
    if (has == 1) {
        r->object_existed = true; // the body is read and discarded
        return 0;
    }
    r->writer = bbit_store_writer_begin(r->store, BBIT_STORE_COMPRESSED, id,
                                        r->srv->max_object_size, err, sizeof err);
    if (!r->writer) {
        srv_send_internal(r, err);
        return -1;
    }
    return 0;
}

/* Whether url is the JSON API's (/api, /api/...): everything else is a page. */
static bool is_api(const char *url)
{
    return strncmp(url, "/api", 4) == 0 && (url[4] == '\0' || url[4] == '/');
}

/* Routes a request outside /api/ to the web pages. */
static bool begin_page(struct srv_request *r, const char *method, const char *url)
{
    r->route = &PAGES;
    r->body_kind = strcmp(method, "POST") == 0 ? SRV_BODY_FORM : SRV_BODY_NONE;
    if (strlen(url) > SRV_MAX_PAGE_URL) {
        html_send_message(r, 414, "Address too long", "The address of this page is too long.",
                          NULL);
        return false;
    }
    r->url = strdup(url);
    if (!r->url) {
        srv_send_internal(r, "out of memory");
        return false;
    }
    return check_length(r) == 0;
}

/* The first call: route, authenticate, check limits. false when the request
 * was refused (and answered, unless libmicrohttpd refused the response). */
static bool begin_request(struct srv_request *r, const char *method, const char *url)
{
    bool path_known;
    if (!is_api(url))
        return begin_page(r, method, url);
    r->route = find_route(r, method, url, &path_known);
    if (!r->route) {
        if (path_known)
            send_method_not_allowed(r, url);
        else
            srv_send_error(r, 404, "not_found", "no such API endpoint: %s %.200s", method, url);
        return false;
    }
    r->body_kind = r->route->body;
    if (r->route->need != NEED_NOTHING && authenticate(r) != 0)
        return false;
    if ((r->route->need == NEED_SCOPE_READ || r->route->need == NEED_SCOPE_WRITE) &&
        check_scope(r) != 0)
        return false;
    if (check_length(r) != 0)
        return false;
    if (r->body_kind == SRV_BODY_OBJECT && begin_upload(r) != 0)
        return false;
    if (r->body_kind == SRV_BODY_PACK && srv_pack_begin(r) != 0)
        return false;
    return true;
}

/* Classifies a store writer failure into status and error code. */
static void upload_failed(struct srv_request *r, const char *err)
{
    r->write_failed = true;
    snprintf(r->write_err, sizeof r->write_err, "%s", err);
    bbit_store_writer_abort(r->writer);
    r->writer = NULL;
}

/* A chunk of the body. Returns false to drop the connection. */
static bool receive(struct srv_request *r, const char *data, size_t len)
{
    r->received += len;
    if (r->body_kind == SRV_BODY_JSON || r->body_kind == SRV_BODY_FORM) {
        if (r->body_too_large || r->received > body_limit(r)) {
            r->body_too_large = true;
            return !r->chunked;
        }
        if (srv_buf_add(&r->body, data, len) != 0) {
            r->body_too_large = true;
            return false;
        }
        return true;
    }
    if (r->body_kind == SRV_BODY_PACK) {
        if (r->received > body_limit(r))
            return false; /* beyond the limit announced (or not) by Content-Length */
        srv_pack_receive(r, data, len);
        return true;
    }
    if (r->body_kind != SRV_BODY_OBJECT)
        return true; // a body nobody asked for: ignored
    if (r->received > r->srv->max_object_size && !r->write_failed) {
        char msg[128];
        snprintf(msg, sizeof msg, "object store: object exceeds the size limit of %llu bytes",
                 (unsigned long long)r->srv->max_object_size);
        upload_failed(r, msg);
    }
    if (r->write_failed || r->object_existed)
        return !(r->write_failed && r->chunked); // discard (bounded by Content-Length)
    char err[BBIT_STORE_ERR_SIZE];
    if (bbit_store_writer_write(r->writer, data, len, err, sizeof err) != 0)
        upload_failed(r, err);
    else
        srv_fault_point("server:during-upload");
    return true;
}

/* The last call: the body is complete; run the handler. */
static void finish_request(struct srv_request *r)
{
    if (r->body_kind == SRV_BODY_JSON && r->body_too_large) {
        srv_send_error(r, 413, "too_large", "the JSON body exceeds the limit of %u bytes",
                       BBIT_SERVER_MAX_JSON_BODY);
        return;
    }
    if (r->route->handler(r) != 0 && !r->responded)
        srv_send_internal(r, "no response");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct srv_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = cls;
        r->conn = conn;
        r->started_us = now_us();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        if (!begin_request(r, method, url) && !r->responded)
            return MHD_NO; // refused but not answered: drop the connection
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->responded)
            return MHD_YES;
        return receive(r, upload_data, n) ? MHD_YES : MHD_NO;
    }
    if (!r->responded)
        finish_request(r);
    return r->responded ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    double ms = (double)(now_us() - r->started_us) / 1000.0;
    for (char *c = r->path; *c; c++) /* a decoded %0A must not forge log lines */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (r->responded)
        fprintf(stderr, "bbit serve: %s %s %u %.1fms%s\n", r->method, r->path, r->status, ms,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    else
        fprintf(stderr, "bbit serve: %s %s aborted %.1fms\n", r->method, r->path, ms);
    bbit_store_writer_abort(r->writer);
    srv_pack_free(r);
    bbit_store_close(r->store);
    free(r->store_scope);
    srv_auth_free(&r->auth);
    srv_db_release(r->srv->root, r->db);
    srv_buf_free(&r->body);
    free(r->url);
    free(r);
}

/* ---- start-up ---------------------------------------------------------------- */

struct listen_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool ipv6;
    bool loopback;
    char host[72]; /* the host of --listen (< 64) and brackets */
};

/* Parses "HOST:PORT" ("localhost", an IPv4 address or "[IPv6]"). */
static int parse_listen(const char *listen, struct listen_addr *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    const char *colon = strrchr(listen, ':');
    char host[64];
    if (!colon || (size_t)(colon - listen) >= sizeof host || colon == listen)
        return srv_fail(err, errlen,
                        "invalid --listen '%s' (expected HOST:PORT, e.g. 127.0.0.1:3000)", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
        return srv_fail(err, errlen, "invalid port in --listen '%s' (0 to 65535)", listen);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return srv_fail(err, errlen, "invalid IPv6 address in --listen '%s'", listen);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *s6;
        a->ipv6 = true;
        a->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        snprintf(a->host, sizeof a->host, "[%s]", host + 1);
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return srv_fail(err, errlen,
                        "invalid address '%s' in --listen (use an IP address or localhost)", host);
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    a->len = sizeof *s4;
    a->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    snprintf(a->host, sizeof a->host, "%s", host);
    return 0;
}

/* Removes the temp files (older than an hour, so that no upload of another
 * server on this root is cut) that crashed uploads left in dir. */
static void remove_stale_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d)) != NULL) {
        char path[4600];
        struct stat st;
        if (strncmp(e->d_name, "obj-", 4) != 0)
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof path && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > 3600)
            unlink(path);
    }
    closedir(d);
}

/* Cleans the objects/tmp directory of every scope. */
static void clean_temp_files(const char *root)
{
    char err[SRV_ERR_SIZE];
    sqlite3 *db = srv_db_open(root, err, sizeof err);
    if (!db)
        return;
    sqlite3_stmt *st = srv_db_prepare(db, "SELECT name FROM scopes", err, sizeof err);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char dir[4400];
        const char *scope = (const char *)sqlite3_column_text(st, 0);
        int n = snprintf(dir, sizeof dir, "%s/scopes/%s/objects/tmp", root, scope);
        if (srv_valid_scope(scope) && n > 0 && (size_t)n < sizeof dir)
            remove_stale_temp_files(dir);
    }
    sqlite3_finalize(st);
    srv_db_close(db);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    fputs("bbit serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int bbit_server_serve(const struct bbit_server_options *o, char *err, size_t errlen)
{
    struct srv_server srv = {0};
    struct listen_addr addr;
    if (parse_listen(o->listen ? o->listen : "127.0.0.1:3000", &addr, err, errlen) != 0)
        return -1;
    if (!addr.loopback && !o->public_listen)
        return srv_fail(err, errlen,
                        "refusing to listen on %s, which is not a loopback address: the server "
                        "speaks plain HTTP; put it behind a TLS proxy and pass --public-listen "
                        "to allow it",
                        addr.host);
    int n = snprintf(srv.root, sizeof srv.root, "%s", o->root);
    if (n < 0 || (size_t)n >= sizeof srv.root)
        return srv_fail(err, errlen, "%s: path too long", o->root);
    sqlite3 *db = srv_db_open(srv.root, err, errlen);
    if (!db)
        return -1;
    srv_db_close(db);
    clean_temp_files(srv.root);
    /* Loaded now, not by the first transaction that rebuilds a package only
     * libarchive writes (tarball.h: long or non-ASCII names, tar.zst): ~10 ms
     * of dynamic linking in a request. A missing libarchive stops the
     * server here. */
    (void)bbit_archive_api();
    srv.max_object_size =
        o->max_object_size ? o->max_object_size : BBIT_SERVER_DEFAULT_MAX_OBJECT_SIZE;
    srv.version = o->version ? o->version : "0.0.0";
    unsigned max_conn =
        o->max_connections ? o->max_connections : BBIT_SERVER_DEFAULT_MAX_CONNECTIONS;

    // SIGINT/SIGTERM are blocked here (and so in MHD's threads) and taken by sigwait.
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr.ipv6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr.ss, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)4,
        MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, max_conn,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_END);
    if (!d) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return srv_fail(err, errlen, "cannot listen on %s: %s",
                        o->listen ? o->listen : "127.0.0.1:3000",
                        errno ? strerror(errno) : "libmicrohttpd failed to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "bbit serve: listening on http://%s:%u (root %s)\n", addr.host,
            info ? (unsigned)info->port : 0u, srv.root);
    fflush(stderr);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "bbit serve: %s received, shutting down\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    fprintf(stderr, "bbit serve: stopped\n");
    return 0;
}
