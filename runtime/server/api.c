/* The read side of the JSON API and object transfer: health, whoami,
 * scopes, components, versions, missing-object negotiation, object upload
 * and download. Routing, authentication and the scope role checks happened
 * in server.c before any handler runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbit/store.h"
#include "server/internal.h"

#define MAX_MISSING_IDS 10000

static int db_error(struct srv_request *r)
{
    return srv_send_internal(r, sqlite3_errmsg(r->db));
}

static void add_iso(cJSON *o, const char *key, int64_t t)
{
    char iso[32];
    srv_iso8601(t, iso);
    cJSON_AddStringToObject(o, key, iso);
}

// GET /api/v1/health -> {"ok": true, "version"}
int api_health(struct srv_request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddStringToObject(o, "version", r->srv->version);
    return srv_send_json(r, 200, o);
}

static cJSON *grants_json(const struct srv_auth *a)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < a->ngrants; i++) {
        cJSON *g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "scope", a->grants[i].pattern);
        cJSON_AddStringToObject(g, "role", srv_role_name(a->grants[i].role));
        cJSON_AddItemToArray(arr, g);
    }
    return arr;
}

// GET /api/v1/whoami -> {"user", "token": {"id", "name"}, "grants": [{"scope", "role"}]}
int api_whoami(struct srv_request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", r->auth.user);
    cJSON *t = cJSON_AddObjectToObject(o, "token");
    cJSON_AddNumberToObject(t, "id", (double)r->auth.token_id);
    cJSON_AddStringToObject(t, "name", r->auth.token_name);
    cJSON_AddItemToObject(o, "grants", grants_json(&r->auth));
    return srv_send_json(r, 200, o);
}

// GET /api/v1/scopes -> {"scopes": [{"name", "public", "role"}]} (readable ones)
int api_scopes(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st =
        srv_db_prepare(r->db, "SELECT name, public FROM scopes ORDER BY name", err, sizeof err);
    if (!st)
        return srv_send_internal(r, err);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "scopes");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        bool is_public = sqlite3_column_int(st, 1) != 0;
        int role = srv_auth_role(&r->auth, name, is_public);
        if (role < SRV_ROLE_READ)
            continue;
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", name);
        cJSON_AddBoolToObject(s, "public", is_public);
        cJSON_AddStringToObject(s, "role", srv_role_name(role));
        cJSON_AddItemToArray(arr, s);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(o);
        return db_error(r);
    }
    return srv_send_json(r, 200, o);
}

// GET /api/v1/scopes/{scope} -> {"name", "public", "components": count}
int api_scope(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(
        r->db,
        "SELECT public, (SELECT count(*) FROM components WHERE scope=?1) FROM scopes WHERE name=?1",
        err, sizeof err);
    if (!st)
        return srv_send_internal(r, err);
    sqlite3_bind_text(st, 1, r->params[0], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_error(r);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->params[0]);
    cJSON_AddBoolToObject(o, "public", sqlite3_column_int(st, 0));
    cJSON_AddNumberToObject(o, "components", (double)sqlite3_column_int64(st, 1));
    cJSON_AddStringToObject(o, "role", srv_role_name(r->role));
    sqlite3_finalize(st);
    return srv_send_json(r, 200, o);
}

// GET /api/v1/scopes/{scope}/components -> {"components": [{"name", "head", "head_id",
// "updated_at"}]}
int api_components(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(r->db,
                                      "SELECT name, head_version, head_id, updated_at FROM "
                                      "components WHERE scope=? ORDER BY name",
                                      err, sizeof err);
    if (!st)
        return srv_send_internal(r, err);
    sqlite3_bind_text(st, 1, r->params[0], -1, SQLITE_STATIC);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "components");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(c, "head", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddStringToObject(c, "head_id", (const char *)sqlite3_column_text(st, 2));
        add_iso(c, "updated_at", sqlite3_column_int64(st, 3));
        cJSON_AddItemToArray(arr, c);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(o);
        return db_error(r);
    }
    return srv_send_json(r, 200, o);
}

static int cmp_version_items(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    const char *vx = cJSON_GetObjectItemCaseSensitive(x, "version")->valuestring;
    const char *vy = cJSON_GetObjectItemCaseSensitive(y, "version")->valuestring;
    return srv_semver_cmp(vx, vy);
}

/* The versions of scope/name as a JSON array sorted by semver; NULL on a db error. */
static cJSON *versions_json(struct srv_request *r, const char *name)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(
        r->db, "SELECT version, id, created_at FROM versions WHERE scope=? AND name=?", err,
        sizeof err);
    if (!st)
        return NULL;
    sqlite3_bind_text(st, 1, r->params[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    cJSON **items = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON **more = realloc(items, sizeof *items * (n + 1));
        if (!more)
            break;
        items = more;
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "version", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(v, "id", (const char *)sqlite3_column_text(st, 1));
        add_iso(v, "created_at", sqlite3_column_int64(st, 2));
        items[n++] = v;
    }
    sqlite3_finalize(st);
    if (n > 1)
        qsort(items, n, sizeof *items, cmp_version_items);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, items[i]);
    free(items);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

// GET /api/v1/scopes/{scope}/component?name=N -> {"name", "head", "head_id", "versions": [...]}
int api_component(struct srv_request *r)
{
    const char *name = srv_query(r, "name");
    if (!name || !srv_valid_component(name))
        return srv_send_error(
            r, 400, "bad_request",
            "the query needs name=<component>, e.g. ?name=ui/button (got '%.200s')",
            name ? name : "");
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(
        r->db, "SELECT head_version, head_id, updated_at FROM components WHERE scope=? AND name=?",
        err, sizeof err);
    if (!st)
        return srv_send_internal(r, err);
    sqlite3_bind_text(st, 1, r->params[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return db_error(r);
        return srv_send_error(r, 404, "component_not_found",
                              "component %s does not exist on scope %s", name, r->params[0]);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", r->params[0]);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "head", (const char *)sqlite3_column_text(st, 0));
    cJSON_AddStringToObject(o, "head_id", (const char *)sqlite3_column_text(st, 1));
    add_iso(o, "updated_at", sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    cJSON *versions = versions_json(r, name);
    if (!versions) {
        cJSON_Delete(o);
        return db_error(r);
    }
    cJSON_AddItemToObject(o, "versions", versions);
    return srv_send_json(r, 200, o);
}

/* Checks body {"ids": [...]}: an array of at most MAX_MISSING_IDS object ids. */
static cJSON *missing_ids(struct srv_request *r, cJSON *body)
{
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "ids");
    if (!cJSON_IsArray(ids)) {
        srv_send_error(r, 400, "bad_request", "the body needs \"ids\": an array of object ids");
        return NULL;
    }
    if (cJSON_GetArraySize(ids) > MAX_MISSING_IDS) {
        srv_send_error(r, 400, "bad_request", "at most %d ids per request (got %d)",
                       MAX_MISSING_IDS, cJSON_GetArraySize(ids));
        return NULL;
    }
    cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        if (!cJSON_IsString(id) || !bbit_store_is_id(id->valuestring)) {
            srv_send_error(r, 400, "bad_request",
                           "invalid object id %.80s in \"ids\" (expected 64 lowercase hex digits)",
                           cJSON_IsString(id) ? id->valuestring : "(not a string)");
            return NULL;
        }
    }
    return ids;
}

// POST /api/v1/scopes/{scope}/objects/missing {"ids": [...]} -> {"missing": [...]}
int api_objects_missing(struct srv_request *r)
{
    cJSON *body = srv_parse_body(r);
    if (!body)
        return 0;
    cJSON *ids = missing_ids(r, body);
    bbit_store *store = ids ? srv_open_scope_store(r, r->params[0]) : NULL;
    if (!store) {
        cJSON_Delete(body);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *missing = cJSON_AddArrayToObject(o, "missing");
    char err[BBIT_STORE_ERR_SIZE];
    cJSON *id;
    int failed = 0;
    cJSON_ArrayForEach(id, ids)
    {
        int has = bbit_store_has(store, id->valuestring, err, sizeof err);
        if (has < 0) {
            failed = 1;
            break;
        }
        if (has == 0)
            cJSON_AddItemToArray(missing, cJSON_CreateString(id->valuestring));
    }
    bbit_store_close(store);
    cJSON_Delete(body);
    if (failed) {
        cJSON_Delete(o);
        return srv_send_internal(r, err);
    }
    return srv_send_json(r, 200, o);
}

// GET /api/v1/scopes/{scope}/objects/{id} -> the compressed bytes
int api_object_get(struct srv_request *r)
{
    const char *id = r->params[1];
    if (!bbit_store_is_id(id))
        return srv_send_error(r, 400, "bad_request",
                              "invalid object id '%.80s' (expected 64 lowercase hex digits)", id);
    bbit_store *store = srv_open_scope_store(r, r->params[0]);
    if (!store)
        return 0;
    char err[BBIT_STORE_ERR_SIZE];
    uint64_t offset = 0, size = 0;
    int has = bbit_store_has(store, id, err, sizeof err);
    int fd = has == 1 ? bbit_store_open_raw(store, id, &offset, &size, err, sizeof err) : -1;
    bbit_store_close(store);
    if (has == 0)
        return srv_send_error(r, 404, "object_not_found", "object %s does not exist on scope %s",
                              id, r->params[0]);
    if (fd < 0)
        return srv_send_internal(r, err);
    return srv_send_file(r, fd, offset, size);
}

// PUT /api/v1/scopes/{scope}/objects/{id} (body: one zstd frame) -> {"id", "stored"}
int api_object_put(struct srv_request *r)
{
    const char *id = r->params[1];
    if (r->write_failed) {
        const char *e = r->write_err;
        if (strstr(e, "exceeds the size limit"))
            return srv_send_error(r, 413, "too_large", "object %s on scope %s: %s", id,
                                  r->params[0], e);
        if (strstr(e, "zstd") || strstr(e, "frame"))
            return srv_send_error(r, 400, "corrupt_object",
                                  "object %s on scope %s is not one valid zstd frame: %s", id,
                                  r->params[0], e);
        return srv_send_internal(r, e);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    if (r->object_existed) {
        cJSON_AddBoolToObject(o, "stored", 0);
        return srv_send_json(r, 200, o);
    }
    char got[BBIT_STORE_ID_LEN + 1], err[BBIT_STORE_ERR_SIZE];
    bbit_store_writer *w = r->writer;
    r->writer = NULL;
    if (bbit_store_writer_commit(w, got, err, sizeof err) != 0) {
        cJSON_Delete(o);
        if (strstr(err, "hash mismatch"))
            return srv_send_error(r, 400, "hash_mismatch", "object %s on scope %s: %s", id,
                                  r->params[0], err);
        if (strstr(err, "zstd") || strstr(err, "frame"))
            return srv_send_error(r, 400, "corrupt_object",
                                  "object %s on scope %s is not one valid zstd frame: %s", id,
                                  r->params[0], err);
        if (strstr(err, "exceeds the size limit"))
            return srv_send_error(r, 413, "too_large", "object %s on scope %s: %s", id,
                                  r->params[0], err);
        return srv_send_internal(r, err);
    }
    cJSON_AddBoolToObject(o, "stored", 1);
    return srv_send_json(r, 201, o);
}
