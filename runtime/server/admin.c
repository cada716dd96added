/* The `bbit server ...` admin operations: they work directly on a root's
 * SQLite file, no running server needed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "bbit/store.h"
#include "server/internal.h"

#define MIN_PASSWORD 8

/* mkdir -p path (mode 0755). */
static int mkdir_p(const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return srv_fail(err, errlen, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return srv_fail(err, errlen, "%s: cannot create directory: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return srv_fail(err, errlen, "%s: cannot create directory: %s", tmp, strerror(errno));
    return 0;
}

/* 1 when dir has no entries, 0 when it has, -1 on error. */
static int dir_is_empty(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return srv_fail(err, errlen, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

int bbit_server_init(const char *root, bool *already, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    *already = false;
    snprintf(path, sizeof path, "%s/server.db", root);
    if (stat(root, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return srv_fail(err, errlen, "%s exists and is not a directory", root);
        if (stat(path, &st) == 0) {
            sqlite3 *db = srv_db_open(root, err, errlen);
            if (!db)
                return -1;
            srv_db_close(db);
            *already = true;
            return 0;
        }
        int empty = dir_is_empty(root, err, errlen);
        if (empty < 0)
            return -1;
        if (!empty)
            return srv_fail(err, errlen,
                            "%s is not empty and not a bbit server root; choose an empty or "
                            "new directory",
                            root);
    } else if (mkdir_p(root, err, errlen) != 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/scopes", root);
    if (mkdir_p(path, err, errlen) != 0)
        return -1;
    sqlite3 *db = srv_db_create(root, err, errlen);
    if (!db)
        return -1;
    srv_db_close(db);
    return 0;
}

int bbit_server_scope_create(const char *root, const char *name, bool is_public, char *err,
                             size_t errlen)
{
    if (!srv_valid_scope(name))
        return srv_fail(err, errlen,
                        "invalid scope name '%s' (expected owner.scope or a bare name: lowercase "
                        "letters, digits, '_' and '-', at most %d characters)",
                        name, SRV_MAX_SCOPE);
    sqlite3 *db = srv_db_open(root, err, errlen);
    if (!db)
        return -1;
    int rc = -1;
    int exists = srv_db_scope_get(db, name, NULL, err, errlen);
    if (exists > 0)
        srv_fail(err, errlen, "scope %s already exists on %s", name, root);
    if (exists != 0)
        goto out;
    // The store first: a scope row always has its directory.
    char dir[4096], serr[BBIT_STORE_ERR_SIZE];
    if (srv_scope_dir(root, name, dir, sizeof dir) != 0) {
        srv_fail(err, errlen, "%s: path too long", root);
        goto out;
    }
    bbit_store *store = bbit_store_open(dir, BBIT_STORE_CREATE, serr, sizeof serr);
    if (!store) {
        srv_fail(err, errlen, "%s", serr);
        goto out;
    }
    bbit_store_close(store);
    sqlite3_stmt *st = srv_db_prepare(
        db, "INSERT INTO scopes(name, public, created_at) VALUES (?, ?, ?)", err, errlen);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, is_public ? 1 : 0);
    sqlite3_bind_int64(st, 3, srv_now());
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT)
        srv_fail(err, errlen, "scope %s already exists on %s", name, root);
    else if (step != SQLITE_DONE)
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    else
        rc = 0;
    sqlite3_finalize(st);
out:
    srv_db_close(db);
    return rc;
}

static void add_time(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    char iso[32];
    srv_iso8601(sqlite3_column_int64(st, col), iso);
    cJSON_AddStringToObject(obj, key, iso);
}

struct cJSON *bbit_server_scope_list(const char *root, char *err, size_t errlen)
{
    sqlite3 *db = srv_db_open(root, err, errlen);
    if (!db)
        return NULL;
    cJSON *list = NULL;
    sqlite3_stmt *st = srv_db_prepare(db,
                                      "SELECT s.name, s.public, s.created_at,"
                                      " (SELECT count(*) FROM components c WHERE c.scope = s.name)"
                                      " FROM scopes s ORDER BY s.name",
                                      err, errlen);
    if (!st)
        goto out;
    list = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddBoolToObject(s, "public", sqlite3_column_int(st, 1));
        cJSON_AddNumberToObject(s, "components", (double)sqlite3_column_int64(st, 3));
        add_time(s, "created_at", st, 2);
        cJSON_AddItemToArray(list, s);
    }
    if (rc != SQLITE_DONE) {
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
        cJSON_Delete(list);
        list = NULL;
    }
    sqlite3_finalize(st);
out:
    srv_db_close(db);
    return list;
}

/* Inserts the rows of one prepared INSERT (user/token, pattern, role). */
static int insert_grants(sqlite3 *db, sqlite3_stmt *st, const struct srv_grant *g, size_t n,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 2, g[i].pattern, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, srv_role_name(g[i].role), -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    }
    return 0;
}

/* Validates user name, password and grants; *out gets the parsed grants. */
static int user_add_check(const char *name, const char *password, const char *const *grants,
                          size_t ngrants, struct srv_grant **out, char *err, size_t errlen)
{
    if (!srv_valid_user(name))
        return srv_fail(err, errlen,
                        "invalid user name '%s' (lowercase letters, digits, '.', '_' and '-', "
                        "at most %d characters)",
                        name, SRV_MAX_USER);
    if (strlen(password) < MIN_PASSWORD)
        return srv_fail(err, errlen, "the password must have at least %d characters", MIN_PASSWORD);
    *out = calloc(ngrants ? ngrants : 1, sizeof **out);
    if (!*out)
        return srv_fail(err, errlen, "out of memory");
    for (size_t i = 0; i < ngrants; i++)
        if (srv_grant_parse(grants[i], &(*out)[i], err, errlen) != 0)
            return -1;
    return 0;
}

int bbit_server_user_add(const char *root, const char *name, const char *password,
                         const char *const *grants, size_t ngrants, char *err, size_t errlen)
{
    struct srv_grant *parsed = NULL;
    char hash[256];
    if (user_add_check(name, password, grants, ngrants, &parsed, err, errlen) != 0) {
        free(parsed);
        return -1;
    }
    sqlite3 *db = srv_db_open(root, err, errlen);
    if (!db) {
        free(parsed);
        return -1;
    }
    int rc = -1;
    sqlite3_stmt *user = NULL, *grant = NULL;
    if (srv_password_hash(password, hash, sizeof hash, err, errlen) != 0 ||
        srv_db_begin(db, err, errlen) != 0)
        goto out;
    user = srv_db_prepare(db, "INSERT INTO users(name, password_hash, created_at) VALUES (?, ?, ?)",
                          err, errlen);
    grant = srv_db_prepare(
        db, "INSERT OR REPLACE INTO user_grants(user, scope_pattern, role) VALUES (?, ?, ?)", err,
        errlen);
    if (!user || !grant)
        goto out;
    sqlite3_bind_text(user, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(user, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(user, 3, srv_now());
    int step = sqlite3_step(user);
    if (step == SQLITE_CONSTRAINT) {
        srv_fail(err, errlen, "user %s already exists on %s", name, root);
        goto out;
    }
    if (step != SQLITE_DONE) {
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(grant, 1, name, -1, SQLITE_STATIC);
    if (insert_grants(db, grant, parsed, ngrants, err, errlen) != 0)
        goto out;
    rc = srv_db_commit(db, err, errlen);
out:
    OPENSSL_cleanse(hash, sizeof hash);
    sqlite3_finalize(user);
    sqlite3_finalize(grant);
    if (rc != 0)
        srv_db_rollback(db);
    srv_db_close(db);
    free(parsed);
    return rc;
}

/* 1 when user exists, 0 when not, -1 on error. */
static int user_exists(sqlite3 *db, const char *user, char *err, size_t errlen)
{
    sqlite3_stmt *st = srv_db_prepare(db, "SELECT 1 FROM users WHERE name=?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW ? 1 : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        found = srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return found;
}

/* Inserts the token row and its grant; *id_out gets the id. */
static int token_insert(sqlite3 *db, const char *user, const char *hash, const char *name,
                        const struct srv_grant *g, int64_t *id_out, char *err, size_t errlen)
{
    sqlite3_stmt *tok = srv_db_prepare(
        db, "INSERT INTO tokens(user, name, token_hash, created_at) VALUES (?, ?, ?, ?)", err,
        errlen);
    if (!tok)
        return -1;
    sqlite3_bind_text(tok, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(tok, 2, name ? name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(tok, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(tok, 4, srv_now());
    int step = sqlite3_step(tok);
    sqlite3_finalize(tok);
    if (step != SQLITE_DONE)
        return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    *id_out = sqlite3_last_insert_rowid(db);
    if (!name) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE tokens SET name='token-%lld' WHERE id=%lld",
                 (long long)*id_out, (long long)*id_out);
        if (srv_db_exec(db, sql, err, errlen) != 0)
            return -1;
    }
    sqlite3_stmt *gr = srv_db_prepare(
        db, "INSERT INTO token_grants(token_id, scope_pattern, role) VALUES (?, ?, ?)", err,
        errlen);
    if (!gr)
        return -1;
    sqlite3_bind_int64(gr, 1, *id_out);
    int rc = insert_grants(db, gr, g, 1, err, errlen);
    sqlite3_finalize(gr);
    return rc;
}

int bbit_server_token_create(const char *root, const char *user, const char *pattern,
                             const char *role, const char *name, char token_out[64],
                             int64_t *id_out, char name_out[128], char *err, size_t errlen)
{
    struct srv_grant g;
    if (!srv_valid_pattern(pattern))
        return srv_fail(err, errlen,
                        "invalid scope pattern '%s' (lowercase letters, digits, '.', '_', '-' "
                        "and '*', e.g. my-org.*)",
                        pattern);
    snprintf(g.pattern, sizeof g.pattern, "%s", pattern);
    if ((g.role = srv_role_parse(role)) < 0)
        return srv_fail(err, errlen, "invalid role '%s' (read, write or admin)", role);
    if (name && !srv_valid_token_name(name))
        return srv_fail(err, errlen, "invalid token name (1 to %d printable characters)",
                        SRV_MAX_PATTERN);
    char token[SRV_TOKEN_LEN + 1], hash[65];
    if (srv_token_generate(token) != 0)
        return srv_fail(err, errlen, "cannot get random bytes for the token");
    srv_sha256_hex(token, strlen(token), hash);
    sqlite3 *db = srv_db_open(root, err, errlen);
    if (!db)
        return -1;
    int rc = -1;
    if (srv_db_begin(db, err, errlen) != 0)
        goto out;
    int exists = user_exists(db, user, err, errlen);
    if (exists == 0)
        srv_fail(err, errlen, "no user %s on %s (add one with 'bbit server user add %s')", user,
                 root, user);
    if (exists <= 0 || token_insert(db, user, hash, name, &g, id_out, err, errlen) != 0 ||
        srv_db_commit(db, err, errlen) != 0)
        goto out;
    memcpy(token_out, token, sizeof token);
    if (name)
        snprintf(name_out, 128, "%s", name);
    else
        snprintf(name_out, 128, "token-%lld", (long long)*id_out);
    rc = 0;
out:
    OPENSSL_cleanse(token, sizeof token);
    srv_db_rollback(db);
    srv_db_close(db);
    return rc;
}

int bbit_server_token_revoke(const char *root, int64_t id, bool *already, char *err, size_t errlen)
{
    *already = false;
    sqlite3 *db = srv_db_open(root, err, errlen);
    if (!db)
        return -1;
    int rc = -1;
    sqlite3_stmt *st = srv_db_prepare(db, "SELECT revoked_at FROM tokens WHERE id=?", err, errlen);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        srv_fail(err, errlen, "no token %lld on %s (see 'bbit server token list')", (long long)id,
                 root);
    } else if (step != SQLITE_ROW) {
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    } else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *already = true;
        rc = 0;
    } else {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "UPDATE tokens SET revoked_at=%lld WHERE id=%lld AND revoked_at IS NULL",
                 (long long)srv_now(), (long long)id);
        rc = srv_db_exec(db, sql, err, errlen);
    }
    sqlite3_finalize(st);
out:
    srv_db_close(db);
    return rc;
}

/* The grants of token id as [{"scope", "role"}]. */
static cJSON *token_grants_json(sqlite3 *db, int64_t id, const char *user)
{
    struct srv_grant *g = NULL;
    int n = 0;
    cJSON *arr = cJSON_CreateArray();
    char err[SRV_ERR_SIZE];
    if (srv_auth_load_grants(db, id, user, &g, &n, err, sizeof err) == 0)
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "scope", g[i].pattern);
            cJSON_AddStringToObject(o, "role", srv_role_name(g[i].role));
            cJSON_AddItemToArray(arr, o);
        }
    free(g);
    return arr;
}

struct cJSON *bbit_server_token_list(const char *root, char *err, size_t errlen)
{
    sqlite3 *db = srv_db_open(root, err, errlen);
    if (!db)
        return NULL;
    cJSON *list = NULL;
    sqlite3_stmt *st = srv_db_prepare(
        db, "SELECT id, user, name, created_at, last_used_at, revoked_at FROM tokens ORDER BY id",
        err, errlen);
    if (!st)
        goto out;
    list = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *t = cJSON_CreateObject();
        int64_t id = sqlite3_column_int64(st, 0);
        const char *user = (const char *)sqlite3_column_text(st, 1);
        cJSON_AddNumberToObject(t, "id", (double)id);
        cJSON_AddStringToObject(t, "user", user);
        cJSON_AddStringToObject(t, "name", (const char *)sqlite3_column_text(st, 2));
        cJSON_AddItemToObject(t, "grants", token_grants_json(db, id, user));
        add_time(t, "created_at", st, 3);
        add_time(t, "last_used_at", st, 4);
        add_time(t, "revoked_at", st, 5);
        cJSON_AddItemToArray(list, t);
    }
    if (rc != SQLITE_DONE) {
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
        cJSON_Delete(list);
        list = NULL;
    }
    sqlite3_finalize(st);
out:
    srv_db_close(db);
    return list;
}
