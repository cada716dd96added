/* The web sign-in (SPEC §6): the /login form, its POST, /logout, and
 * POST /api/v1/logout.
 *
 * `bbit login` opens /login?port=P&state=S&name=HOST. After the password
 * checks out, the server issues a login token (no grants of its own: it acts
 * with the user's grants; only its hash is stored) and answers 303 to
 * http://127.0.0.1:P/callback?state=S&token=T, the CLI's listener. Without
 * port/state it is a plain web sign-in: the token becomes the bbit_session
 * cookie (HttpOnly, SameSite=Strict).
 *
 * CSRF: each rendered form holds a fresh nonce that is also set as the
 * bbit_csrf cookie; only its hash is kept (web_csrf, 30 minutes, single
 * use). A POST needs the field, the cookie and the row to agree. Sign-out
 * forms carry a token derived from the session (pages_logout_csrf).
 *
 * Rate limit: at most MAX_USER_FAILURES failed sign-ins per user and
 * MAX_IP_FAILURES per client address within FAILURE_WINDOW seconds; beyond
 * that the answer is 429 without checking the password. Unknown users cost
 * the same KDF as known ones and get the same message. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>


#include "server/internal.h"

#define CSRF_TTL 1800
#define CSRF_HEX 32
#define FAILURE_WINDOW (15 * 60)
#define MAX_USER_FAILURES 5
#define MAX_IP_FAILURES 20
#define MAX_MACHINE_NAME 64
#define MAX_STATE 128

/* Verified instead of a real hash for unknown users, so that they take as long. */
static const char DUMMY_HASH[] =
    "scrypt$32768$8$1$00000000000000000000000000000000$"
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Where a sign-in goes back to: the CLI's listener, or nowhere (a web sign-in). */
struct cli {
    bool present;
    unsigned port;
    char state[MAX_STATE + 1];
    char name[MAX_MACHINE_NAME + 1];
};

/* The fields of a sign-in form (decoded, malloc'ed; NULL when absent). */
struct form {
    char *csrf, *username, *password, *port, *state, *name;
};

static void form_free(struct form *f)
{
    if (f->password)
        OPENSSL_cleanse(f->password, strlen(f->password));
    free(f->csrf);
    free(f->username);
    free(f->password);
    free(f->port);
    free(f->state);
    free(f->name);
}

/* ---- parameters ---------------------------------------------------------------- */

static bool all_alnum(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return false;
    return true;
}

/* Keeps [A-Za-z0-9._-] of a machine name (others become '-'), at most 64 characters. */
static void sanitize_name(const char *in, char out[MAX_MACHINE_NAME + 1])
{
    size_t o = 0;
    for (const char *p = in ? in : ""; *p && o < MAX_MACHINE_NAME; p++) {
        char c = *p;
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '.' || c == '_' || c == '-';
        out[o++] = ok ? c : '-';
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, MAX_MACHINE_NAME + 1, "unknown-machine");
}

/* Validates port/state/name; NULL when fine, else what is wrong. */
static const char *cli_parse(const char *port, const char *state, const char *name,
                             struct cli *c)
{
    memset(c, 0, sizeof *c);
    bool has_port = port && *port, has_state = state && *state;
    if (!has_port && !has_state)
        return NULL;
    if (!has_port || !has_state)
        return "port and state must be given together";
    size_t n = strlen(port);
    if (n > 5 || strspn(port, "0123456789") != n)
        return "port must be a number from 1024 to 65535";
    unsigned long p = strtoul(port, NULL, 10);
    if (p < 1024 || p > 65535)
        return "port must be a number from 1024 to 65535";
    if (strlen(state) > MAX_STATE || !all_alnum(state))
        return "state must be 1 to 128 letters and digits";
    c->present = true;
    c->port = (unsigned)p;
    snprintf(c->state, sizeof c->state, "%s", state);
    sanitize_name(name, c->name);
    return NULL;
}

/* Parses an application/x-www-form-urlencoded body into f; -1 on a bad encoding. */
static int form_parse(const char *body, size_t len, struct form *f)
{
    struct {
        const char *key;
        char **slot;
    } fields[] = {{"csrf", &f->csrf},   {"username", &f->username}, {"password", &f->password},
                  {"port", &f->port},   {"state", &f->state},       {"name", &f->name}};
    memset(f, 0, sizeof *f);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        const char *eq = memchr(body + i, '=', end - i);
        size_t klen = eq ? (size_t)(eq - (body + i)) : end - i;
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            if (strlen(fields[k].key) != klen || strncmp(fields[k].key, body + i, klen) != 0 ||
                *fields[k].slot)
                continue;
            const char *v = eq ? eq + 1 : body + end;
            *fields[k].slot = html_form_decode(v, (size_t)(body + end - v));
            if (!*fields[k].slot)
                return -1;
        }
        i = end + 1;
    }
    return 0;
}

/* The client's address as text ("127.0.0.1"), for the per-address limit. */
static void client_ip(struct srv_request *r, char out[64])
{
    snprintf(out, 64, "unknown");
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, 64);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, 64);
}

/* ---- CSRF nonces ------------------------------------------------------------------ */

/* A fresh nonce, stored (hashed) for CSRF_TTL seconds. */
static int csrf_issue(sqlite3 *db, char nonce[CSRF_HEX + 1], char *err, size_t errlen)
{
    char hash[65];
    if (srv_random_hex(nonce, CSRF_HEX / 2) != 0)
        return srv_fail(err, errlen, "cannot get random bytes");
    srv_sha256_hex(nonce, CSRF_HEX, hash);
    if (srv_db_ensure_web_schema(db, err, errlen) != 0)
        return -1;
    sqlite3_stmt *st = srv_db_prepare(db, "DELETE FROM web_csrf WHERE expires_at < ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, srv_now());
    sqlite3_step(st);
    sqlite3_finalize(st);
    st = srv_db_prepare(db, "INSERT INTO web_csrf(nonce_hash, expires_at) VALUES (?, ?)", err,
                        errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, srv_now() + CSRF_TTL);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    return 0;
}

/* Consumes the form's nonce: 1 valid (cookie and field agree, row unexpired), 0 not, -1 error. */
static int csrf_consume(struct srv_request *r, const char *field, char *err, size_t errlen)
{
    const char *cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "bbit_csrf");
    if (!field || !cookie || strlen(field) != CSRF_HEX || strlen(cookie) != CSRF_HEX ||
        CRYPTO_memcmp(field, cookie, CSRF_HEX) != 0)
        return 0;
    char hash[65];
    srv_sha256_hex(field, CSRF_HEX, hash);
    if (srv_db_ensure_web_schema(r->db, err, errlen) != 0)
        return -1;
    sqlite3_stmt *st = srv_db_prepare(
        r->db, "DELETE FROM web_csrf WHERE nonce_hash=? AND expires_at >= ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, srv_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(r->db));
    return sqlite3_changes(r->db) == 1;
}

/* ---- failures and the rate limit ---------------------------------------------------- */

static int count_failures(sqlite3 *db, const char *column, const char *value, char *err,
                          size_t errlen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM login_failures WHERE %s=? AND at > ?", column);
    sqlite3_stmt *st = srv_db_prepare(db, sql, err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, srv_now() - FAILURE_WINDOW);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    if (n < 0)
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return n;
}

/* 1 when user or ip reached its limit, 0 when not, -1 on error. */
static int rate_limited(sqlite3 *db, const char *user, const char *ip, char *err, size_t errlen)
{
    if (srv_db_ensure_web_schema(db, err, errlen) != 0)
        return -1;
    int by_user = *user ? count_failures(db, "user", user, err, errlen) : 0;
    if (by_user < 0)
        return -1;
    if (by_user >= MAX_USER_FAILURES)
        return 1;
    int by_ip = count_failures(db, "ip", ip, err, errlen);
    if (by_ip < 0)
        return -1;
    return by_ip >= MAX_IP_FAILURES;
}

static int record_failure(sqlite3 *db, const char *user, const char *ip, char *err, size_t errlen)
{
    sqlite3_stmt *st = srv_db_prepare(db, "DELETE FROM login_failures WHERE at < ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, srv_now() - 4 * FAILURE_WINDOW);
    sqlite3_step(st);
    sqlite3_finalize(st);
    st = srv_db_prepare(db, "INSERT INTO login_failures(user, ip, at) VALUES (?, ?, ?)", err,
                        errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ip, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, srv_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
}

/* A successful sign-in resets the user's count; the rows still count for
 * their address (signing in to one's own account does not reset that). */
static void clear_failures(sqlite3 *db, const char *user)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE login_failures SET user='' WHERE user=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
}

/* ---- the form ------------------------------------------------------------------------ */

static void add_hidden(struct html *h, const char *name, const char *value)
{
    html_raw(h, "<input type=\"hidden\" name=\"");
    html_raw(h, name);
    html_raw(h, "\" value=\"");
    html_text(h, value);
    html_raw(h, "\">");
}

/* Renders the sign-in form with a fresh CSRF nonce; error (may be NULL) is shown above it. */
static int send_form(struct srv_request *r, unsigned status, const struct cli *c,
                     const char *username, const char *error)
{
    char nonce[CSRF_HEX + 1], err[SRV_ERR_SIZE], cookie[160], port[16];
    if (csrf_issue(r->db, nonce, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    snprintf(cookie, sizeof cookie,
             "bbit_csrf=%s; Max-Age=%d; Path=/login; HttpOnly; SameSite=Strict", nonce, CSRF_TTL);
    snprintf(port, sizeof port, "%u", c->port);
    struct html h = {0};
    pages_begin(r, &h, "Sign in");
    html_raw(&h, "<h1>Sign in</h1>\n");
    if (c->present) {
        html_raw(&h, "<p class=\"notice\" id=\"cli\">Signing in the bbit command line on <b>");
        html_text(&h, c->name);
        html_fmt(&h, "</b>. Afterwards this browser hands the new token to it on "
                     "127.0.0.1:%u.</p>\n",
                 c->port);
    }
    if (error) {
        html_raw(&h, "<p class=\"error\" id=\"error\" role=\"alert\">");
        html_text(&h, error);
        html_raw(&h, "</p>\n");
    }
    html_raw(&h, "<form class=\"signin card\" method=\"post\" action=\"/login\">");
    add_hidden(&h, "csrf", nonce);
    if (c->present) {
        add_hidden(&h, "port", port);
        add_hidden(&h, "state", c->state);
        add_hidden(&h, "name", c->name);
    }
    html_raw(&h, "<label for=\"username\">Username</label><input id=\"username\" "
                 "name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" required "
                 "maxlength=\"64\" value=\"");
    html_text(&h, username ? username : "");
    html_raw(&h, "\"><label for=\"password\">Password</label><input id=\"password\" "
                 "name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
                 "<button type=\"submit\" id=\"submit\">Sign in</button></form>\n");
    if (c->present) {
        html_fmt(&h, "<p><a id=\"cancel\" href=\"http://127.0.0.1:%u/callback?state=", c->port);
        html_url(&h, c->state, false);
        html_raw(&h, "&amp;error=sign-in%20cancelled%20in%20the%20browser\">Cancel</a></p>\n");
    }
    html_end(&h);
    const char *headers[] = {"Set-Cookie", cookie, NULL, NULL, NULL};
    if (status == 429) {
        headers[2] = "Retry-After";
        headers[3] = "900";
    }
    return html_send(r, status, &h, headers);
}

static int send_bad_request(struct srv_request *r, const char *problem)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "This sign-in link is not valid (%s). Run `bbit login` again to get a new one.",
             problem);
    return html_send_message(r, 400, "Invalid sign-in request", msg, NULL);
}

// GET /login[?port=P&state=S&name=HOST] -> the form
int login_get(struct srv_request *r)
{
    struct cli c;
    const char *problem =
        cli_parse(srv_query(r, "port"), srv_query(r, "state"), srv_query(r, "name"), &c);
    if (problem)
        return send_bad_request(r, problem);
    return send_form(r, 200, &c, NULL, NULL);
}

/* ---- POST /login ---------------------------------------------------------------------- */

static bool is_form(struct srv_request *r)
{
    const char *type = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    return type && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0;
}

/* Checks the request's shape (type, size, encoding); 0 when f holds the
 * form, -1 after answering. */
static int read_form(struct srv_request *r, struct form *f)
{
    if (r->body_too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "The form is larger than %u bytes.", SRV_MAX_FORM_BODY);
        html_send_message(r, 413, "Request too large", msg, NULL);
        return -1;
    }
    if (!is_form(r)) {
        html_send_message(r, 415, "Unsupported form",
                          "The form must be sent as application/x-www-form-urlencoded.", NULL);
        return -1;
    }
    if (form_parse(r->body.data ? r->body.data : "", r->body.len, f) != 0) {
        form_free(f);
        html_send_message(r, 400, "Bad request", "The form is not correctly encoded.", NULL);
        return -1;
    }
    return 0;
}

/* 1 password right, 0 wrong or unknown user, -1 error. */
static int check_password(struct srv_request *r, const char *user, const char *password)
{
    char stored[512], err[SRV_ERR_SIZE];
    int found = srv_valid_user(user)
                    ? srv_user_password_hash(r->db, user, stored, sizeof stored, err, sizeof err)
                    : 0;
    if (found < 0)
        return -1;
    int ok = srv_password_verify(password, found ? stored : DUMMY_HASH);
    return found && ok == 1;
}

/* The signed-in user gets a token: back to the CLI, or as the session cookie. */
static int sign_in(struct srv_request *r, const struct cli *c, const char *user)
{
    char token[SRV_TOKEN_LEN + 1], name[SRV_MAX_PATTERN + 1], err[SRV_ERR_SIZE];
    int64_t id = 0;
    snprintf(name, sizeof name, c->present ? "login from %s" : "web sign-in%s",
             c->present ? c->name : "");
    clear_failures(r->db, user);
    if (srv_login_token_issue(r->db, user, name, token, &id, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    fprintf(stderr, "bbit serve: user %s signed in on the web (token %lld, %s)\n", user,
            (long long)id, name);
    if (c->present) {
        char location[300];
        snprintf(location, sizeof location, "http://127.0.0.1:%u/callback?state=%s&token=%s",
                 c->port, c->state, token);
        int rc = html_redirect(r, location, NULL);
        OPENSSL_cleanse(location, sizeof location);
        OPENSSL_cleanse(token, sizeof token);
        return rc;
    }
    char cookie[160];
    snprintf(cookie, sizeof cookie, "bbit_session=%s; Path=/; HttpOnly; SameSite=Strict", token);
    const char *headers[] = {
        "Set-Cookie", cookie, "Set-Cookie",
        "bbit_csrf=; Max-Age=0; Path=/login; HttpOnly; SameSite=Strict", NULL};
    int rc = html_redirect(r, "/", headers);
    OPENSSL_cleanse(cookie, sizeof cookie);
    OPENSSL_cleanse(token, sizeof token);
    return rc;
}

/* Checks a parsed sign-in form and answers. */
static int login_form(struct srv_request *r, const struct form *f)
{
    struct cli c;
    char err[SRV_ERR_SIZE], ip[64];
    const char *problem = cli_parse(f->port, f->state, f->name, &c);
    const char *user = f->username ? f->username : "";
    if (problem)
        return send_bad_request(r, problem);
    int csrf = csrf_consume(r, f->csrf, err, sizeof err);
    if (csrf < 0)
        return srv_send_internal(r, err);
    if (csrf == 0)
        return send_form(r, 403, &c, user,
                         "This sign-in form has expired or was not sent by this server. "
                         "Please try again.");
    client_ip(r, ip);
    const char *limited_user = srv_valid_user(user) ? user : "";
    int limited = rate_limited(r->db, limited_user, ip, err, sizeof err);
    if (limited < 0)
        return srv_send_internal(r, err);
    if (limited)
        return send_form(r, 429, &c, user,
                         "Too many failed sign-in attempts. Wait 15 minutes before trying again.");
    int ok = check_password(r, user, f->password ? f->password : "");
    if (ok < 0)
        return srv_send_internal(r, sqlite3_errmsg(r->db));
    if (ok == 1)
        return sign_in(r, &c, user);
    if (record_failure(r->db, limited_user, ip, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    return send_form(r, 401, &c, user, "Wrong username or password.");
}

// POST /login (csrf, username, password[, port, state, name]) -> 303, or the form again
int login_post(struct srv_request *r)
{
    struct form f;
    if (read_form(r, &f) != 0)
        return 0;
    int rc = login_form(r, &f);
    form_free(&f);
    return rc;
}

/* 1 when the sign-out form's token matches the session. */
static bool logout_csrf_ok(struct srv_request *r, const char *field)
{
    char want[33];
    pages_logout_csrf(r->session, want);
    return field && strlen(field) == 32 && CRYPTO_memcmp(field, want, 32) == 0;
}

// POST /logout (csrf) -> revokes the session token, clears the cookie, 303 to /
int logout_post(struct srv_request *r)
{
    struct form f;
    if (read_form(r, &f) != 0)
        return 0;
    static const char *const cleared[] = {
        "Set-Cookie", "bbit_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict", NULL};
    int rc;
    char err[SRV_ERR_SIZE];
    if (!r->session[0]) { // no live session: nothing to revoke
        rc = html_redirect(r, "/", cleared);
    } else if (!logout_csrf_ok(r, f.csrf)) {
        rc = html_send_message(r, 403, "Sign-out refused",
                               "The sign-out form was not sent by this server.", NULL);
    } else if (srv_token_revoke_id(r->db, r->auth.token_id, err, sizeof err) != 0) {
        rc = srv_send_internal(r, err);
    } else {
        fprintf(stderr, "bbit serve: user %s signed out (token %lld revoked)\n", r->auth.user,
                (long long)r->auth.token_id);
        rc = html_redirect(r, "/", cleared);
    }
    form_free(&f);
    return rc;
}

// POST /api/v1/logout (Bearer) -> {"revoked": true}: revokes the calling token
int api_logout(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    if (srv_token_revoke_id(r->db, r->auth.token_id, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "revoked", 1);
    return srv_send_json(r, 200, o);
}
