/* The web pages (SPEC §7): server-rendered HTML for every path outside /api/.
 *
 *   /                                   the scopes this viewer may read
 *   /SCOPE                              its components (latest version, date)
 *   /SCOPE/NAME[?v=V]                   versions with log, dependencies, files, artifacts
 *   /SCOPE/NAME/-/file/PATH?v=V         a file shown as text (first 1 MiB)
 *   /SCOPE/NAME/-/raw/PATH?v=V          the file's bytes ([&download=1]: as attachment)
 *   /SCOPE/NAME/-/artifact/ART?v=V      an artifact, as attachment
 *   /login, /logout                     the web sign-in (login.c)
 *
 * The viewer is the bbit_session cookie's token (a login token), else a
 * Bearer header, else anonymous; roles come from srv_auth_role as for the
 * API. An unknown or unreadable scope is the same 404 (nothing leaks).
 * Files and artifacts are looked up in the version object by exact path or
 * name: no filesystem path is ever built from the URL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "bbit/store.h"
#include "server/internal.h"

#define MAX_VERSION_OBJECT (16u << 20)
#define MAX_SHOWN_FILE (1u << 20)
#define MAX_LISTED_VERSIONS 100
#define SNIFF_BYTES 8192

/* ---- the viewer --------------------------------------------------------------- */

void pages_logout_csrf(const char *session, char out[33])
{
    char buf[128], hex[65];
    int n = snprintf(buf, sizeof buf, "bbit-logout:%s", session);
    srv_sha256_hex(buf, n > 0 ? (size_t)n : 0, hex);
    memcpy(out, hex, 32);
    out[32] = '\0';
}

int pages_viewer(struct srv_request *r)
{
    char err[SRV_ERR_SIZE], header[128];
    r->db = srv_db_acquire(r->srv->root, err, sizeof err);
    if (!r->db)
        return srv_send_internal(r, err);
    const char *cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "bbit_session");
    const char *bearer = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (cookie && *cookie) {
        snprintf(header, sizeof header, "Bearer %.100s", cookie);
        bearer = header;
    }
    if (!bearer)
        return 0;
    int rc = srv_auth_lookup(r->db, bearer, &r->auth, err, sizeof err);
    if (rc == SRV_AUTH_ERROR)
        return srv_send_internal(r, err);
    if (rc == SRV_AUTH_UNAUTHORIZED) {
        memset(&r->auth, 0, sizeof r->auth); // anonymous
        r->session_stale = cookie && *cookie;
        return 0;
    }
    if (cookie && *cookie)
        snprintf(r->session, sizeof r->session, "%s", cookie);
    return 0;
}

void pages_begin(struct srv_request *r, struct html *h, const char *title)
{
    char csrf[33] = "";
    if (r->session[0])
        pages_logout_csrf(r->session, csrf);
    // a Bearer viewer (curl) has no session to sign out of: no form
    html_begin(h, title, r->auth.token_id ? r->auth.user : NULL, r->session[0] ? csrf : NULL);
}

static const char *const CLEAR_SESSION[] = {
    "Set-Cookie", "bbit_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict", NULL};

int pages_send(struct srv_request *r, unsigned status, struct html *h)
{
    return html_send(r, status, h, r->session_stale ? CLEAR_SESSION : NULL);
}

int pages_not_found(struct srv_request *r, const char *what)
{
    struct html h = {0};
    pages_begin(r, &h, "Not found");
    html_raw(&h, "<h1>Not found</h1><p class=\"message\" id=\"message\">");
    html_text(&h, what);
    html_raw(&h, "</p>");
    if (r->auth.token_id == 0)
        html_raw(&h, "<p class=\"muted\">Private scopes are only shown to signed-in users who may "
                     "read them. <a href=\"/login\">Sign in</a></p>");
    html_raw(&h, "<p><a href=\"/\">All scopes</a></p>");
    html_end(&h);
    return pages_send(r, 404, &h);
}

/* ---- small helpers ------------------------------------------------------------ */

static int db_error(struct srv_request *r)
{
    return srv_send_internal(r, sqlite3_errmsg(r->db));
}

/* The viewer may read scope (which exists): 1, 0 (not found / not readable), -1 db error. */
static int scope_readable(struct srv_request *r, const char *scope)
{
    if (!srv_valid_scope(scope))
        return 0;
    bool exists = false;
    int role = srv_scope_role(r, scope, &exists);
    if (role < 0)
        return -1;
    return exists && role >= SRV_ROLE_READ;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "1.5 KiB" style size of n bytes. */
static void add_size(struct html *h, double n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double v = n;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    if (u == 0)
        html_fmt(h, "%.0f B", n);
    else
        html_fmt(h, "%.1f %s", v, units[u]);
}

static void add_size_item(struct html *h, const cJSON *o)
{
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
    if (cJSON_IsNumber(size) && size->valuedouble >= 0)
        add_size(h, size->valuedouble);
    else
        html_raw(h, "?");
}

/* "2024-05-01 12:00 UTC" from a unix time. */
static void add_time(struct html *h, int64_t t)
{
    char iso[32];
    srv_iso8601(t, iso);
    iso[10] = ' ';
    iso[16] = '\0';
    html_text(h, iso);
    html_raw(h, " UTC");
}

/* The URL of a component page: /SCOPE/NAME (both url-encoded, '/' kept in NAME). */
static void add_component_url(struct html *h, const char *scope, const char *name)
{
    html_raw(h, "/");
    html_url(h, scope, false);
    html_raw(h, "/");
    html_url(h, name, true);
}

/* ?v=VERSION (encoded). */
static void add_version_query(struct html *h, const char *version)
{
    html_raw(h, "?v=");
    html_url(h, version, false);
}

/* Reads and parses version object id; NULL with err on failure. */
static cJSON *load_version(bbit_store *store, const char *id, char *err, size_t errlen)
{
    void *data = NULL;
    size_t len = 0;
    if (!bbit_store_is_id(id)) {
        srv_fail(err, errlen, "invalid version object id");
        return NULL;
    }
    if (bbit_store_get(store, id, MAX_VERSION_OBJECT, &data, &len, err, errlen) != 0)
        return NULL;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(data, &end, 1);
    free(data);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        srv_fail(err, errlen, "version object %s is not a JSON object", id);
        return NULL;
    }
    return o;
}

/* The log of a version object (message, author, date) as table cells. */
static void add_log_cells(struct html *h, const cJSON *obj)
{
    const cJSON *log = obj ? cJSON_GetObjectItemCaseSensitive(obj, "log") : NULL;
    const char *message = jstr(log, "message"), *author = jstr(log, "author"),
               *date = jstr(log, "date");
    html_raw(h, "<td class=\"message\">");
    if (message && *message)
        html_textn(h, message, strcspn(message, "\n")); // the first line
    else
        html_raw(h, "<span class=\"muted\">(no message)</span>");
    html_raw(h, "</td><td>");
    html_text(h, author ? author : "");
    html_raw(h, "</td><td>");
    html_text(h, date ? date : "");
    html_raw(h, "</td>");
}

/* ---- / ------------------------------------------------------------------------------ */

static int page_home(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(r->db,
                                      "SELECT s.name, s.public, (SELECT count(*) FROM components "
                                      "c WHERE c.scope=s.name) FROM scopes s ORDER BY s.name",
                                      err, sizeof err);
    if (!st)
        return srv_send_internal(r, err);
    struct html h = {0};
    pages_begin(r, &h, "Scopes");
    html_raw(&h, "<h1>Scopes</h1>\n<table id=\"scopes\"><thead><tr><th>Scope</th><th>Visibility"
                 "</th><th class=\"num\">Components</th></tr></thead><tbody>\n");
    int rc, shown = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        bool is_public = sqlite3_column_int(st, 1) != 0;
        if (srv_auth_role(&r->auth, name, is_public) < SRV_ROLE_READ)
            continue;
        html_raw(&h, "<tr><td><a class=\"scope\" href=\"/");
        html_url(&h, name, false);
        html_raw(&h, "\">");
        html_text(&h, name);
        html_fmt(&h, "</a></td><td><span class=\"badge%s\">%s</span></td><td class=\"num\">%lld"
                     "</td></tr>\n",
                 is_public ? " public" : "", is_public ? "public" : "private",
                 (long long)sqlite3_column_int64(st, 2));
        shown++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        html_free(&h);
        return db_error(r);
    }
    html_raw(&h, "</tbody></table>\n");
    if (shown == 0)
        html_raw(&h, "<p class=\"muted\" id=\"empty\">No scopes to show.</p>");
    if (r->auth.token_id == 0)
        html_raw(&h, "<p class=\"muted\">Showing public scopes. <a href=\"/login\">Sign in</a> "
                     "to see the private scopes you may read.</p>");
    html_end(&h);
    return pages_send(r, 200, &h);
}

/* ---- /SCOPE ------------------------------------------------------------------------ */

static void add_crumbs(struct html *h, const char *scope, const char *name)
{
    html_raw(h, "<div class=\"crumbs\"><a href=\"/\">scopes</a> / <a href=\"/");
    html_url(h, scope, false);
    html_raw(h, "\">");
    html_text(h, scope);
    html_raw(h, "</a>");
    if (name) {
        html_raw(h, " / <a href=\"");
        add_component_url(h, scope, name);
        html_raw(h, "\">");
        html_text(h, name);
        html_raw(h, "</a>");
    }
    html_raw(h, "</div>\n");
}

static int page_scope(struct srv_request *r, const char *scope)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(r->db,
                                      "SELECT name, head_version, updated_at FROM components "
                                      "WHERE scope=? ORDER BY name",
                                      err, sizeof err);
    if (!st)
        return srv_send_internal(r, err);
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    struct html h = {0};
    pages_begin(r, &h, scope);
    html_raw(&h, "<div class=\"crumbs\"><a href=\"/\">scopes</a></div><h1>");
    html_text(&h, scope);
    html_raw(&h, "</h1>\n<table id=\"components\"><thead><tr><th>Component</th><th>Latest</th>"
                 "<th>Updated</th></tr></thead><tbody>\n");
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *head = (const char *)sqlite3_column_text(st, 1);
        html_raw(&h, "<tr><td><a class=\"component\" href=\"");
        add_component_url(&h, scope, name);
        html_raw(&h, "\">");
        html_text(&h, name);
        html_raw(&h, "</a></td><td><code>");
        html_text(&h, head);
        html_raw(&h, "</code></td><td>");
        add_time(&h, sqlite3_column_int64(st, 2));
        html_raw(&h, "</td></tr>\n");
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        html_free(&h);
        return db_error(r);
    }
    html_raw(&h, "</tbody></table>\n");
    if (n == 0)
        html_raw(&h, "<p class=\"muted\" id=\"empty\">No components yet: publish some with "
                     "<code>bbit export</code>.</p>");
    html_end(&h);
    return pages_send(r, 200, &h);
}

/* ---- a component: its versions ----------------------------------------------------- */

struct version_row {
    char version[SRV_MAX_VERSION + 1];
    char id[BBIT_STORE_ID_LEN + 1];
    int64_t created_at;
};

struct component {
    const char *scope;
    const char *name;
    char head[SRV_MAX_VERSION + 1];
    struct version_row *versions; /* newest first */
    size_t nversions;
    const struct version_row *selected;
    bbit_store *store;
    cJSON *obj; /* the selected version object */
};

static void component_free(struct component *c)
{
    free(c->versions);
    bbit_store_close(c->store);
    cJSON_Delete(c->obj);
}

static int cmp_rows_newest_first(const void *a, const void *b)
{
    const struct version_row *x = a, *y = b;
    if (!srv_valid_semver(x->version) || !srv_valid_semver(y->version))
        return strcmp(y->version, x->version);
    return srv_semver_cmp(y->version, x->version);
}

/* Loads the component's head and versions: 1 found, 0 not found, -1 db error. */
static int component_load_rows(struct srv_request *r, struct component *c)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(
        r->db, "SELECT head_version FROM components WHERE scope=? AND name=?", err, sizeof err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, c->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(c->head, sizeof c->head, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : -1;
    st = srv_db_prepare(r->db,
                        "SELECT version, id, created_at FROM versions WHERE scope=? AND name=?",
                        err, sizeof err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, c->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct version_row *more = realloc(c->versions, sizeof *more * (c->nversions + 1));
        if (!more)
            break;
        c->versions = more;
        struct version_row *v = &c->versions[c->nversions++];
        snprintf(v->version, sizeof v->version, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(v->id, sizeof v->id, "%s", (const char *)sqlite3_column_text(st, 1));
        v->created_at = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (c->nversions > 1)
        qsort(c->versions, c->nversions, sizeof *c->versions, cmp_rows_newest_first);
    return 1;
}

/* Resolves scope/name and the version of ?v= (default: the head), opens the
 * store and loads the selected version object. 0 when the caller may go on;
 * -1 after a response was sent (404 or 500). */
static int component_open(struct srv_request *r, struct component *c)
{
    char what[600];
    snprintf(what, sizeof what, "component %s/%s does not exist on this server", c->scope,
             c->name);
    if (!srv_valid_component(c->name))
        return pages_not_found(r, what), -1;
    int found = component_load_rows(r, c);
    if (found < 0)
        return db_error(r), -1;
    if (found == 0)
        return pages_not_found(r, what), -1;
    const char *want = srv_query(r, "v");
    if (!want || !*want)
        want = c->head;
    for (size_t i = 0; i < c->nversions && !c->selected; i++)
        if (strcmp(c->versions[i].version, want) == 0)
            c->selected = &c->versions[i];
    if (!c->selected) {
        snprintf(what, sizeof what, "component %s/%s has no version %.128s", c->scope, c->name,
                 want);
        return pages_not_found(r, what), -1;
    }
    c->store = srv_open_scope_store(r, c->scope);
    if (!c->store)
        return -1;
    char err[BBIT_STORE_ERR_SIZE];
    c->obj = load_version(c->store, c->selected->id, err, sizeof err);
    if (!c->obj)
        return srv_send_internal(r, err), -1;
    return 0;
}

static void add_versions(struct html *h, const struct component *c)
{
    html_fmt(h, "<h2>Versions (%zu)</h2>\n", c->nversions);
    html_raw(h, "<table id=\"versions\"><thead><tr><th>Version</th><th>Message</th><th>Author"
                "</th><th>Date</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < c->nversions && i < MAX_LISTED_VERSIONS; i++) {
        const struct version_row *v = &c->versions[i];
        char err[BBIT_STORE_ERR_SIZE];
        cJSON *obj = v == c->selected ? NULL : load_version(c->store, v->id, err, sizeof err);
        html_raw(h, v == c->selected ? "<tr class=\"selected\"><td>" : "<tr><td>");
        html_raw(h, "<a class=\"version\" href=\"");
        add_component_url(h, c->scope, c->name);
        add_version_query(h, v->version);
        html_raw(h, "\">");
        html_text(h, v->version);
        html_raw(h, "</a>");
        if (strcmp(v->version, c->head) == 0)
            html_raw(h, " <span class=\"badge\">latest</span>");
        html_raw(h, "</td>");
        add_log_cells(h, v == c->selected ? c->obj : obj);
        html_raw(h, "</tr>\n");
        cJSON_Delete(obj);
    }
    html_raw(h, "</tbody></table>\n");
    if (c->nversions > MAX_LISTED_VERSIONS)
        html_fmt(h, "<p class=\"muted\">The %d newest versions are shown.</p>",
                 MAX_LISTED_VERSIONS);
}

/* The selected version: its id, main file and full log message. */
static void add_selected(struct html *h, const struct component *c)
{
    const cJSON *log = cJSON_GetObjectItemCaseSensitive(c->obj, "log");
    const char *message = jstr(log, "message"), *author = jstr(log, "author"),
               *date = jstr(log, "date"), *main_file = jstr(c->obj, "mainFile");
    html_raw(h, "<div class=\"card\" id=\"selected\"><div><b>");
    html_text(h, c->selected->version);
    html_raw(h, "</b> <span class=\"muted\">");
    html_text(h, author ? author : "");
    if (date) {
        html_raw(h, " · ");
        html_text(h, date);
    }
    html_raw(h, " · exported ");
    add_time(h, c->selected->created_at);
    html_raw(h, "</span></div><p class=\"message\" id=\"log-message\">");
    html_text(h, message ? message : "");
    html_raw(h, "</p><div class=\"muted\">main file <code>");
    html_text(h, main_file ? main_file : "");
    html_raw(h, "</code> · object <code>");
    html_text(h, c->selected->id);
    html_raw(h, "</code></div></div>\n");
}

/* Which scope on this server holds component dep (readable by the viewer):
 * the component's own scope first, else the first readable scope by name.
 * 1 found (scope into out), 0 not here, -1 db error. */
static int dependency_scope(struct srv_request *r, const char *own, const char *dep, char *out,
                            size_t outlen)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(r->db,
                                      "SELECT c.scope, s.public FROM components c JOIN scopes s "
                                      "ON s.name=c.scope WHERE c.name=? ORDER BY c.scope<>?, "
                                      "c.scope",
                                      err, sizeof err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, dep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, own, -1, SQLITE_STATIC);
    int rc = SQLITE_DONE, found = 0;
    while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *scope = (const char *)sqlite3_column_text(st, 0);
        if (srv_auth_role(&r->auth, scope, sqlite3_column_int(st, 1) != 0) >= SRV_ROLE_READ) {
            snprintf(out, outlen, "%s", scope);
            found = 1;
        }
    }
    if (!found && rc != SQLITE_DONE)
        found = -1;
    sqlite3_finalize(st);
    return found;
}

/* 1 when scope/name has version v, 0 when not, -1 on a db error. */
static int has_version(struct srv_request *r, const char *scope, const char *name, const char *v)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(
        r->db, "SELECT 1 FROM versions WHERE scope=? AND name=? AND version=?", err, sizeof err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int add_dependencies(struct srv_request *r, struct html *h, const struct component *c)
{
    const cJSON *deps = cJSON_GetObjectItemCaseSensitive(c->obj, "dependencies");
    int n = cJSON_IsArray(deps) ? cJSON_GetArraySize(deps) : 0;
    html_fmt(h, "<h2>Dependencies (%d)</h2>\n", n);
    if (n == 0) {
        html_raw(h, "<p class=\"muted\">None.</p>\n");
        return 0;
    }
    html_raw(h, "<table id=\"dependencies\"><thead><tr><th>Component</th><th>Version</th>"
                "<th>Scope</th></tr></thead><tbody>\n");
    const cJSON *d;
    cJSON_ArrayForEach(d, deps)
    {
        const char *id = jstr(d, "id"), *version = jstr(d, "version");
        char scope[SRV_MAX_SCOPE + 1] = "";
        int where = 0;
        if (id && srv_valid_component(id)) {
            where = dependency_scope(r, c->scope, id, scope, sizeof scope);
            if (where < 0)
                return -1;
        }
        html_raw(h, "<tr><td>");
        if (where == 1) {
            int hv = version ? has_version(r, scope, id, version) : 0;
            if (hv < 0)
                return -1;
            html_raw(h, "<a class=\"dependency\" href=\"");
            add_component_url(h, scope, id);
            if (hv == 1)
                add_version_query(h, version);
            html_raw(h, "\">");
            html_text(h, id);
            html_raw(h, "</a>");
        } else {
            html_raw(h, "<span class=\"dependency\">");
            html_text(h, id ? id : "?");
            html_raw(h, "</span>");
        }
        html_raw(h, "</td><td><code>");
        html_text(h, version ? version : "");
        html_raw(h, "</code></td><td>");
        if (where == 1)
            html_text(h, scope);
        else
            html_raw(h, "<span class=\"muted\">not on this server</span>");
        html_raw(h, "</td></tr>\n");
    }
    html_raw(h, "</tbody></table>\n");
    return 0;
}

/* A file mode: octal for a number (420 -> 644), as is for a string. */
static void add_mode(struct html *h, const cJSON *f)
{
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(f, "mode");
    if (cJSON_IsNumber(mode) && mode->valuedouble >= 0 && mode->valuedouble < 0777777)
        html_fmt(h, "%o", (unsigned)mode->valuedouble);
    else if (cJSON_IsString(mode))
        html_text(h, mode->valuestring);
}

/* /SCOPE/NAME/-/KIND/ITEM?v=VERSION */
static void add_item_url(struct html *h, const struct component *c, const char *kind,
                         const char *item)
{
    add_component_url(h, c->scope, c->name);
    html_raw(h, "/-/");
    html_raw(h, kind);
    html_raw(h, "/");
    html_url(h, item, true);
    add_version_query(h, c->selected->version);
}

static void add_files(struct html *h, const struct component *c)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(c->obj, "files");
    int n = cJSON_IsArray(files) ? cJSON_GetArraySize(files) : 0;
    html_fmt(h, "<h2>Files (%d)</h2>\n", n);
    html_raw(h, "<table id=\"files\"><thead><tr><th>Path</th><th class=\"num\">Size</th>"
                "<th>Mode</th></tr></thead><tbody>\n");
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *path = jstr(f, "path");
        if (!path)
            continue;
        html_raw(h, "<tr><td><a class=\"file\" href=\"");
        add_item_url(h, c, "file", path);
        html_raw(h, "\">");
        html_text(h, path);
        html_raw(h, "</a></td><td class=\"num\">");
        add_size_item(h, f);
        html_raw(h, "</td><td><code>");
        add_mode(h, f);
        html_raw(h, "</code></td></tr>\n");
    }
    html_raw(h, "</tbody></table>\n");
}

static void add_artifacts(struct html *h, const struct component *c)
{
    const cJSON *arts = cJSON_GetObjectItemCaseSensitive(c->obj, "artifacts");
    int n = cJSON_IsArray(arts) ? cJSON_GetArraySize(arts) : 0;
    html_fmt(h, "<h2>Artifacts (%d)</h2>\n", n);
    if (n == 0) {
        html_raw(h, "<p class=\"muted\">None.</p>\n");
        return;
    }
    html_raw(h, "<table id=\"artifacts\"><thead><tr><th>Artifact</th><th class=\"num\">Size"
                "</th></tr></thead><tbody>\n");
    const cJSON *a;
    cJSON_ArrayForEach(a, arts)
    {
        const char *name = jstr(a, "name");
        if (!name)
            continue;
        html_raw(h, "<tr><td><a class=\"artifact\" download href=\"");
        add_item_url(h, c, "artifact", name);
        html_raw(h, "\">");
        html_text(h, name);
        html_raw(h, "</a></td><td class=\"num\">");
        add_size_item(h, a);
        html_raw(h, "</td></tr>\n");
    }
    html_raw(h, "</tbody></table>\n");
}

static int page_component(struct srv_request *r, struct component *c)
{
    if (component_open(r, c) != 0)
        return 0;
    char title[400];
    snprintf(title, sizeof title, "%s/%s", c->scope, c->name);
    struct html h = {0};
    pages_begin(r, &h, title);
    add_crumbs(&h, c->scope, NULL);
    html_raw(&h, "<h1 id=\"component\">");
    html_text(&h, c->name);
    html_raw(&h, " <span class=\"muted\">@");
    html_text(&h, c->selected->version);
    html_raw(&h, "</span></h1>\n");
    add_selected(&h, c);
    add_versions(&h, c);
    if (add_dependencies(r, &h, c) != 0) {
        html_free(&h);
        return db_error(r);
    }
    add_files(&h, c);
    add_artifacts(&h, c);
    html_end(&h);
    return pages_send(r, 200, &h);
}

/* ---- files and artifacts ------------------------------------------------------------ */

/* The entry of array key in the version object whose field equals value. */
static const cJSON *find_entry(const cJSON *obj, const char *key, const char *field,
                               const char *value)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key), *e;
    cJSON_ArrayForEach(e, arr)
    {
        const char *v = jstr(e, field);
        if (v && strcmp(v, value) == 0)
            return e;
    }
    return NULL;
}

/* Whether data looks like text: no NUL and valid UTF-8 (a sequence cut at
 * the end is allowed when truncated). */
static bool looks_like_text(const unsigned char *s, size_t n, bool truncated)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || (c == 0xc0 || c == 0xc1) || c > 0xf4)
            return false;
        if (i + len > n)
            return truncated;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Content-Disposition: TYPE; filename="ascii"; filename*=UTF-8''encoded */
static int disposition(const char *type, const char *name, char *out, size_t outlen)
{
    struct html enc = {0};
    html_url(&enc, name, false);
    char ascii[128];
    size_t i = 0;
    for (const char *p = name; *p && i < sizeof ascii - 1; p++) {
        char ch = *p;
        bool safe = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
        ascii[i++] = safe ? ch : '_';
    }
    ascii[i] = '\0';
    int n = enc.oom ? -1
                    : snprintf(out, outlen, "%s; filename=\"%s\"; filename*=UTF-8''%s", type,
                               ascii[0] ? ascii : "download", enc.buf.data ? enc.buf.data : "");
    html_free(&enc);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* Sends blob from the store: verified into a temp file (unlinked at once),
 * then streamed from its fd. content_type NULL: sniffed (text/plain or
 * application/octet-stream). */
static int send_blob(struct srv_request *r, bbit_store *store, const char *blob,
                     const char *content_type, const char *disp_type, const char *filename)
{
    char tmp[4400], err[BBIT_STORE_ERR_SIZE];
    int n = snprintf(tmp, sizeof tmp, "%s/objects/tmp/obj-web-XXXXXX", bbit_store_dir(store));
    if (n < 0 || (size_t)n >= sizeof tmp)
        return srv_send_internal(r, "temp path too long");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return srv_send_internal(r, strerror(errno));
    close(fd);
    if (bbit_store_get_file(store, blob, tmp, 0600, err, sizeof err) != 0) {
        unlink(tmp);
        return srv_send_internal(r, err);
    }
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
    unlink(tmp);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return srv_send_internal(r, strerror(errno));
    }
    bool text = false;
    if (!content_type) {
        unsigned char head[SNIFF_BYTES];
        ssize_t got = pread(fd, head, sizeof head, 0);
        text = got >= 0 && looks_like_text(head, (size_t)got, (uint64_t)st.st_size > (size_t)got);
        content_type = text ? "text/plain; charset=utf-8" : "application/octet-stream";
        if (!text)
            disp_type = "attachment";
    }
    char disp[600];
    if (disposition(disp_type, filename, disp, sizeof disp) != 0)
        snprintf(disp, sizeof disp, "%s", disp_type);
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64((uint64_t)st.st_size, fd, 0);
    if (!resp) {
        close(fd);
        return -1;
    }
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    html_security_headers(resp);
    if (r->session_stale)
        MHD_add_response_header(resp, CLEAR_SESSION[0], CLEAR_SESSION[1]);
    enum MHD_Result ok = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        return -1;
    r->status = 200;
    r->responded = true;
    return 0;
}

/* A blob (file or artifact) of the version object; NULL after a 404. */
static const char *entry_blob(struct srv_request *r, const struct component *c,
                              const cJSON *entry, const char *kind, const char *item)
{
    const char *blob = entry ? jstr(entry, "blob") : NULL;
    char err[BBIT_STORE_ERR_SIZE], what[900];
    if (blob && bbit_store_is_id(blob) && bbit_store_has(c->store, blob, err, sizeof err) == 1)
        return blob;
    snprintf(what, sizeof what, "%s/%s@%s has no %s %.400s%s", c->scope, c->name,
             c->selected->version, kind, item,
             entry ? " stored on this server" : "");
    pages_not_found(r, what);
    return NULL;
}

static int page_file(struct srv_request *r, struct component *c, const char *path)
{
    const cJSON *f = find_entry(c->obj, "files", "path", path);
    const char *blob = entry_blob(r, c, f, "file", path);
    if (!blob)
        return 0;
    char title[700];
    snprintf(title, sizeof title, "%s · %s/%s", path, c->scope, c->name);
    struct html h = {0};
    pages_begin(r, &h, title);
    add_crumbs(&h, c->scope, c->name);
    html_raw(&h, "<h1 id=\"path\">");
    html_text(&h, path);
    html_raw(&h, "</h1><p class=\"muted\">");
    html_text(&h, c->selected->version);
    html_raw(&h, " · ");
    add_size_item(&h, f);
    html_raw(&h, " · <a id=\"raw\" href=\"");
    add_item_url(&h, c, "raw", path);
    html_raw(&h, "\">raw</a> · <a id=\"download\" href=\"");
    add_item_url(&h, c, "raw", path);
    html_raw(&h, "&amp;download=1\">download</a></p>\n");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");
    void *data = NULL;
    size_t len = 0;
    char err[BBIT_STORE_ERR_SIZE];
    bool small = cJSON_IsNumber(size) && size->valuedouble <= MAX_SHOWN_FILE;
    if (!small || bbit_store_get(c->store, blob, MAX_SHOWN_FILE, &data, &len, err, sizeof err)) {
        html_fmt(&h, "<p class=\"notice\" id=\"notice\">This file is larger than %u MiB: use the "
                     "raw link to see it.</p>",
                 MAX_SHOWN_FILE >> 20);
    } else if (!looks_like_text(data, len, false)) {
        html_raw(&h, "<p class=\"notice\" id=\"notice\">This is a binary file: use the download "
                     "link to get it.</p>");
    } else {
        html_raw(&h, "<pre id=\"content\">");
        html_textn(&h, data, len);
        html_raw(&h, "</pre>");
    }
    free(data);
    html_end(&h);
    return pages_send(r, 200, &h);
}

static int page_raw(struct srv_request *r, struct component *c, const char *path)
{
    const cJSON *f = find_entry(c->obj, "files", "path", path);
    const char *blob = entry_blob(r, c, f, "file", path);
    if (!blob)
        return 0;
    const char *download = srv_query(r, "download");
    bool attach = download && strcmp(download, "0") != 0;
    return send_blob(r, c->store, blob, NULL, attach ? "attachment" : "inline", base_name(path));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int page_artifact(struct srv_request *r, struct component *c, const char *name)
{
    const cJSON *a = find_entry(c->obj, "artifacts", "name", name);
    const char *blob = entry_blob(r, c, a, "artifact", name);
    if (!blob)
        return 0;
    const char *type = ends_with(name, ".tgz") || ends_with(name, ".gz")
                           ? "application/gzip"
                           : "application/octet-stream";
    return send_blob(r, c->store, blob, type, "attachment", base_name(name));
}

/* ---- routing -------------------------------------------------------------------------- */

static int method_not_allowed(struct srv_request *r, const char *allow)
{
    const char *headers[] = {"Allow", allow, NULL};
    char msg[128];
    snprintf(msg, sizeof msg, "%s is not allowed here (allowed: %s).", r->method, allow);
    return html_send_message(r, 405, "Method not allowed", msg, headers);
}

/* /SCOPE/NAME[/-/KIND/ITEM] after the scope's own check. */
static int route_component(struct srv_request *r, const char *scope, char *rest)
{
    struct component c = {.scope = scope, .name = rest};
    char *sep = strstr(rest, "/-/");
    const char *kind = NULL;
    char *item = NULL;
    if (sep) {
        *sep = '\0';
        kind = sep + 3;
        item = strchr(sep + 3, '/');
        if (!item || item[1] == '\0') {
            pages_not_found(r, "no such page");
            return 0;
        }
        *item++ = '\0';
        if (strcmp(kind, "file") != 0 && strcmp(kind, "raw") != 0 &&
            strcmp(kind, "artifact") != 0) {
            pages_not_found(r, "no such page");
            return 0;
        }
    }
    int rc;
    if (!kind)
        rc = page_component(r, &c);
    else if (component_open(r, &c) != 0)
        rc = 0;
    else if (strcmp(kind, "file") == 0)
        rc = page_file(r, &c, item);
    else if (strcmp(kind, "raw") == 0)
        rc = page_raw(r, &c, item);
    else
        rc = page_artifact(r, &c, item);
    component_free(&c);
    return rc;
}

/* GET /SCOPE... */
static int route_scope(struct srv_request *r, char *path)
{
    char *rest = strchr(path, '/');
    if (rest)
        *rest++ = '\0';
    const char *scope = path;
    int readable = scope_readable(r, scope);
    if (readable < 0)
        return db_error(r);
    if (readable == 0) {
        char what[200];
        snprintf(what, sizeof what, "scope %.100s does not exist on this server or you may not "
                                    "read it",
                 scope);
        return pages_not_found(r, what);
    }
    if (!rest || !*rest)
        return page_scope(r, scope);
    return route_component(r, scope, rest);
}

int pages_handle(struct srv_request *r)
{
    const char *url = r->url ? r->url : "/";
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    bool post = strcmp(r->method, "POST") == 0;
    if (strcmp(url, "/login") == 0) {
        if (!get && !post)
            return method_not_allowed(r, "GET, HEAD, POST");
        if (pages_viewer(r) != 0)
            return 0;
        return get ? login_get(r) : login_post(r);
    }
    if (strcmp(url, "/logout") == 0) {
        if (!post)
            return method_not_allowed(r, "POST");
        if (pages_viewer(r) != 0)
            return 0;
        return logout_post(r);
    }
    if (!get)
        return method_not_allowed(r, "GET, HEAD");
    if (pages_viewer(r) != 0)
        return 0;
    if (strcmp(url, "/") == 0)
        return page_home(r);
    char *path = strdup(url + 1);
    if (!path)
        return srv_send_internal(r, "out of memory");
    if (!strstr(path, "/-/")) { // "/my-org.ui/" is "/my-org.ui"
        size_t n = strlen(path);
        while (n > 0 && path[n - 1] == '/')
            path[--n] = '\0';
    }
    int rc = route_scope(r, path);
    free(path);
    return rc;
}
