/* Internals shared by the scope server's C files (runtime/server/). The
 * public entry points are in include/bbit/server.h.
 *
 *   util.c    names, versions, globs, time, random ids, growable buffers
 *   db.c      the SQLite schema and connection set-up of a server root
 *   auth.c    passwords, tokens, grants and roles
 *   admin.c   the `bbit server ...` operations on a root
 *   server.c  libmicrohttpd set-up, routing, request bodies, responses
 *   api.c     the JSON API handlers (scopes, components, objects)
 *   txn.c     export transactions (prepare, commit, abort)
 *   html.c    HTML building (escaping, URL encoding, the page frame), page responses
 *   pages.c   the web pages: scopes, components, versions, files, artifacts
 *   login.c   the web sign-in (/login, /logout, CSRF, rate limit), POST /api/v1/logout
 *
 * Error convention: functions returning int give 0 on success and -1 with a
 * message in err (NUL-terminated, truncated to errlen). */
#ifndef BBIT_SERVER_INTERNAL_H
#define BBIT_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include "bbit/lazylibs.h" /* SQLite and libmicrohttpd, loaded on first use */

#include "bbit/server.h"
#include "bbit/store.h"

#define SRV_ERR_SIZE 1024
#define SRV_MAX_SCOPE 100
#define SRV_MAX_COMPONENT 200
#define SRV_MAX_USER 64
#define SRV_MAX_PATTERN 100
#define SRV_MAX_VERSION 128
#define SRV_TOKEN_PREFIX "bbit_"
#define SRV_TOKEN_LEN 45 /* "bbit_" + 40 hex */
#define SRV_TXN_ID_LEN 32
#define SRV_TXN_TTL_SECONDS (24 * 3600)

/* ---- util.c -------------------------------------------------------------- */

/* Formats into err (when errlen > 0); returns -1. */
int srv_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

bool srv_valid_scope(const char *s);
bool srv_valid_component(const char *s);
bool srv_valid_user(const char *s);
bool srv_valid_pattern(const char *s);
bool srv_valid_token_name(const char *s);
bool srv_valid_semver(const char *s);
bool srv_valid_txn_id(const char *s);
/* Semver precedence: <0, 0, >0 (both must be valid). */
int srv_semver_cmp(const char *a, const char *b);
/* Glob over scope names: `*` matches any run of characters. */
bool srv_glob_match(const char *pattern, const char *s);

enum srv_role { SRV_ROLE_NONE = 0, SRV_ROLE_READ, SRV_ROLE_WRITE, SRV_ROLE_ADMIN };
const char *srv_role_name(int role);
/* The role named s, or -1. */
int srv_role_parse(const char *s);

int64_t srv_now(void);
/* "2024-05-01T12:00:00Z" */
void srv_iso8601(int64_t t, char out[32]);
/* n random bytes as 2n lowercase hex digits + NUL into out. */
int srv_random_hex(char *out, size_t nbytes);
/* Crash point for fault-injection tests (like stdlib/bbit/fault.lua): when
 * the environment variable BBIT_FAULT equals name, the server kills itself
 * with SIGKILL right there. Points: server:during-upload (an object's first
 * bytes are in its temp file), server:after-prepare (the prepare is committed
 * to SQLite, not yet answered), server:during-commit (versions written inside
 * the SQLite transaction, before COMMIT), server:after-commit (committed, not
 * yet answered). */
void srv_fault_point(const char *name);
/* Does BBIT_FAULT name this point? For faults other than a crash:
 * server:prepare-lost (a prepare is committed, then answered 500, as if its
 * answer had been lost). */
bool srv_fault_wanted(const char *name);

/* Lowercase hex SHA-256 of s. */
void srv_sha256_hex(const void *data, size_t len, char out[65]);

/* A growable byte buffer (always NUL-terminated when data != NULL). */
struct srv_buf {
    char *data;
    size_t len, cap;
};
int srv_buf_add(struct srv_buf *b, const void *data, size_t len);
void srv_buf_free(struct srv_buf *b);

/* ---- db.c ---------------------------------------------------------------- */

/* Opens DIR/server.db (which must exist) with WAL, busy_timeout and foreign
 * keys; creates the schema when missing. */
sqlite3 *srv_db_open(const char *root, char *err, size_t errlen);
/* Creates the tables the web sign-in added after schema 1 (CSRF nonces,
 * failed sign-ins) when a root predates them: CREATE TABLE IF NOT EXISTS. */
int srv_db_ensure_web_schema(sqlite3 *db, char *err, size_t errlen);
/* Creates DIR/server.db with the schema (fails when it exists). */
sqlite3 *srv_db_create(const char *root, char *err, size_t errlen);
void srv_db_close(sqlite3 *db);
/* A request's connection: the one this thread kept from its last request
 * (srv_db_release), else a new one (srv_db_open). */
sqlite3 *srv_db_acquire(const char *root, char *err, size_t errlen);
/* Ends a request's use of db: kept for the thread's next request when no
 * statement or transaction is left open (one is rolled back), else closed. */
void srv_db_release(const char *root, sqlite3 *db);
/* Runs sql (no results); on failure err gets "what: sqlite message". */
int srv_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
/* Prepares sql; NULL on failure (err set). */
sqlite3_stmt *srv_db_prepare(sqlite3 *db, const char *sql, char *err, size_t errlen);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int srv_db_begin(sqlite3 *db, char *err, size_t errlen);
int srv_db_commit(sqlite3 *db, char *err, size_t errlen);
void srv_db_rollback(sqlite3 *db);
/* 1 and *is_public when scope exists, 0 when not, -1 on error. */
int srv_db_scope_get(sqlite3 *db, const char *scope, bool *is_public, char *err, size_t errlen);
/* root/scopes/<scope> into out (scope must be valid). */
int srv_scope_dir(const char *root, const char *scope, char *out, size_t outlen);

/* ---- auth.c -------------------------------------------------------------- */

struct srv_grant {
    char pattern[SRV_MAX_PATTERN + 1];
    int role;
};

/* Who is calling. Anonymous when token_id == 0. */
struct srv_auth {
    int64_t token_id;
    char user[SRV_MAX_USER + 1];
    char token_name[SRV_MAX_PATTERN + 1];
    struct srv_grant *grants;
    int ngrants;
};

enum srv_auth_result { SRV_AUTH_OK = 0, SRV_AUTH_UNAUTHORIZED = 1, SRV_AUTH_ERROR = -1 };

/* Resolves an Authorization header value (NULL: anonymous). Returns
 * SRV_AUTH_UNAUTHORIZED (reason in err) for a malformed, unknown or revoked
 * token. */
int srv_auth_lookup(sqlite3 *db, const char *authorization, struct srv_auth *auth, char *err,
                    size_t errlen);
void srv_auth_free(struct srv_auth *auth);
/* Effective role on scope: the highest matching grant; at least read on a
 * public scope. */
int srv_auth_role(const struct srv_auth *auth, const char *scope, bool is_public);
/* Loads a token's grants (its own, else its user's). */
int srv_auth_load_grants(sqlite3 *db, int64_t token_id, const char *user, struct srv_grant **grants,
                         int *n, char *err, size_t errlen);

/* "scrypt$N$r$p$salt$hash" of password. */
int srv_password_hash(const char *password, char *out, size_t outlen, char *err, size_t errlen);
/* 1 when password matches stored, 0 when not, -1 on error. */
int srv_password_verify(const char *password, const char *stored);
/* A fresh token: "bbit_" + 40 hex. */
int srv_token_generate(char out[SRV_TOKEN_LEN + 1]);
/* Parses "PATTERN=ROLE". */
int srv_grant_parse(const char *s, struct srv_grant *g, char *err, size_t errlen);
/* The stored password hash of user into out: 1 found, 0 no such user, -1 error. */
int srv_user_password_hash(sqlite3 *db, const char *user, char *out, size_t outlen, char *err,
                           size_t errlen);
/* Issues a login token for user: no grants of its own (it acts with the
 * user's grants), named name; only its SHA-256 is stored. */
int srv_login_token_issue(sqlite3 *db, const char *user, const char *name,
                          char token_out[SRV_TOKEN_LEN + 1], int64_t *id_out, char *err,
                          size_t errlen);
/* Revokes token id (no-op when already revoked). */
int srv_token_revoke_id(sqlite3 *db, int64_t id, char *err, size_t errlen);

/* ---- server.c: requests and responses ------------------------------------ */

struct MHD_Connection;
struct bbit_store;
struct bbit_store_writer;

struct srv_server {
    char root[4096];
    uint64_t max_object_size;
    const char *version;
};

/* SRV_BODY_FORM: an application/x-www-form-urlencoded body, buffered up to SRV_MAX_FORM_BODY. */
enum srv_body { SRV_BODY_NONE, SRV_BODY_JSON, SRV_BODY_OBJECT, SRV_BODY_FORM, SRV_BODY_PACK };
/* A pack body may hold many objects: its limit is the larger of this and the
 * server's max object size (plus room for the headers). */
#define SRV_MAX_PACK_BODY (64ull << 20)
#define SRV_MAX_FORM_BODY (16u << 10)
#define SRV_MAX_PAGE_URL 8192

/* One request, from its first call to its completion. */
struct srv_request {
    struct srv_server *srv;
    struct MHD_Connection *conn;
    const struct srv_route *route;
    char method[16];
    char path[512];      /* for the log (no query string) */
    char *url;           /* web pages: the whole decoded path (malloc'ed) */
    char session[SRV_TOKEN_LEN + 1]; /* web pages: the viewer's session token, or "" */
    bool session_stale;  /* web pages: a session cookie was sent but is unknown or revoked */
    char params[2][256]; /* {scope}/{id}/{txn} path parameters, in order */
    int64_t started_us;
    unsigned status; /* the status sent (for the log) */
    bool responded;
    sqlite3 *db; /* opened for every route that needs auth */
    struct srv_auth auth;
    bool scope_public;
    int role; /* the caller's role on params[0] for scope routes */
    /* the body */
    enum srv_body body_kind;
    struct srv_buf body; /* JSON bodies */
    bool body_too_large;
    uint64_t received;
    /* object uploads */
    struct srv_pack *pack; /* pack uploads (pack.c) */
    struct bbit_store *store;
    char *store_scope; /* the scope r->store belongs to, when opened by srv_request_scope_store */
    struct bbit_store_writer *writer;
    bool object_existed; /* already stored: the body is read and discarded */
    bool write_failed;
    char write_err[BBIT_STORE_ERR_SIZE];
    bool chunked; /* no Content-Length */
};

typedef int (*srv_handler)(struct srv_request *r);

/* Sends json (consumed) with status; returns 0 or -1 (MHD refused). */
int srv_send_json(struct srv_request *r, unsigned status, cJSON *json);
/* Sends {"error": {"code", "message"[, "details"]}}; details is consumed (may be NULL). */
int srv_send_error_details(struct srv_request *r, unsigned status, const char *code, cJSON *details,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define srv_send_error(r, status, code, ...)                                                       \
    srv_send_error_details((r), (status), (code), NULL, __VA_ARGS__)
/* 500 internal with a logged reason (the client gets a generic message). */
int srv_send_internal(struct srv_request *r, const char *reason);
/* Sends size bytes of file fd from offset as application/octet-stream; takes the fd. */
int srv_send_file(struct srv_request *r, int fd, uint64_t offset, uint64_t size);
/* The parsed JSON body (an object), or NULL after sending 400. The caller deletes it. */
cJSON *srv_parse_body(struct srv_request *r);
/* A query argument (decoded) or NULL. */
const char *srv_query(struct srv_request *r, const char *name);
/* The caller's effective role on scope (looks the scope up); -1 on a db
 * error. *exists tells whether the scope exists. */
int srv_scope_role(struct srv_request *r, const char *scope, bool *exists);
/* Opens scope's store (created when missing); NULL after sending 500. */
/* The store of scope kept as r->store for the rest of the request (reopened
 * when another scope is asked for); closed with the request. NULL (an error
 * sent) on failure. */
struct bbit_store *srv_request_scope_store(struct srv_request *r, const char *scope);
struct bbit_store *srv_open_scope_store(struct srv_request *r, const char *scope);

/* ---- api.c ---------------------------------------------------------------- */
int api_health(struct srv_request *r);
int api_whoami(struct srv_request *r);
int api_scopes(struct srv_request *r);
int api_scope(struct srv_request *r);
int api_components(struct srv_request *r);
int api_component(struct srv_request *r);
int api_objects_missing(struct srv_request *r);
int api_object_get(struct srv_request *r);
int api_object_put(struct srv_request *r);

/* pack.c: many objects in one upload */
int srv_pack_begin(struct srv_request *r);
void srv_pack_receive(struct srv_request *r, const char *data, size_t len);
int api_objects_pack(struct srv_request *r);
void srv_pack_free(struct srv_request *r);

int api_logout(struct srv_request *r);

/* ---- html.c: building pages ------------------------------------------------ */

/* A page under construction; oom remembers a failed allocation (then 500). */
struct html {
    struct srv_buf buf;
    bool oom;
};
/* Appends s as is (trusted markup only). */
void html_raw(struct html *h, const char *s);
/* Appends printf output as is: numbers and trusted markup only, never client text. */
void html_fmt(struct html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (n bytes) HTML-escaped: & < > " ' become entities; NUL and
 * invalid UTF-8 become U+FFFD. Safe in text and in quoted attributes. */
void html_textn(struct html *h, const char *s, size_t n);
void html_text(struct html *h, const char *s);
/* Appends s percent-encoded for a URL path: every byte but A-Z a-z 0-9 - . _ ~
 * and '/' (kept when keep_slash) is %XX, so the result is also HTML-safe. */
void html_url(struct html *h, const char *s, bool keep_slash);
/* The page frame: doctype, title (escaped), inline CSS, the header with the
 * viewer (NULL: anonymous) and its sign-out form (csrf: its token). */
void html_begin(struct html *h, const char *title, const char *viewer, const char *logout_csrf);
void html_end(struct html *h);
void html_free(struct html *h);
/* Adds the security headers every page response carries (CSP, nosniff, DENY, ...). */
struct MHD_Response;
void html_security_headers(struct MHD_Response *resp);
/* Sends h (consumed) as text/html with status; extra headers in pairs
 * {name, value, ..., NULL} (may be NULL). */
int html_send(struct srv_request *r, unsigned status, struct html *h, const char *const *headers);
/* A complete small page with a heading and a message (both escaped). */
int html_send_message(struct srv_request *r, unsigned status, const char *title,
                      const char *message, const char *const *headers);
/* 303 See Other to location (an absolute path or URL built by the caller). */
int html_redirect(struct srv_request *r, const char *location, const char *const *headers);
/* Percent-decodes s (also '+' as space) into a malloc'ed NUL-terminated
 * string; NULL when s holds %00 or a bad escape. */
char *html_form_decode(const char *s, size_t n);

/* ---- pages.c: the web pages ------------------------------------------------ */

/* Handles every request outside /api/ (GET/HEAD pages, POST /login, /logout). */
int pages_handle(struct srv_request *r);
/* Resolves the viewer from the bbit_session cookie (or a Bearer header) into
 * r->auth and r->session, opening r->db. -1 after answering 500. Sets
 * r->session_stale when a session cookie was sent but is unknown or revoked. */
int pages_viewer(struct srv_request *r);
/* The CSRF token of the sign-out form for a session token (derived from it:
 * a cross-site page cannot read the HttpOnly cookie, so cannot forge it). */
void pages_logout_csrf(const char *session, char out[33]);
/* The page frame for the current viewer. */
void pages_begin(struct srv_request *r, struct html *h, const char *title);
/* Sends a page (adds the clearing Set-Cookie when the session was stale). */
int pages_send(struct srv_request *r, unsigned status, struct html *h);
/* The 404 page (what: escaped into the message). */
int pages_not_found(struct srv_request *r, const char *what);

/* ---- login.c: the web sign-in ----------------------------------------------- */
int login_get(struct srv_request *r);
int login_post(struct srv_request *r);
int logout_post(struct srv_request *r);

/* ---- txn.c ---------------------------------------------------------------- */
int txn_prepare(struct srv_request *r);
int txn_commit(struct srv_request *r);
int txn_abort(struct srv_request *r);
int txn_get(struct srv_request *r);

#endif
