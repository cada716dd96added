/* Export transactions (SPEC §5): prepare checks and locks, commit publishes
 * in one SQLite transaction, abort releases.
 *
 * prepare: every scope named needs write; then, in one BEGIN IMMEDIATE, for
 * each component: (1) each new version object is in the scope store, is a
 * bbit.version/1 object whose name and version match, and every object it
 * references (files, artifacts, parents not already committed) is stored;
 * (2) a version already published with another id is refused, with the same
 * id it is skipped; (3) the server head must be an ancestor of the new head
 * (the last new version); (4) the component must not be locked by another
 * prepared transaction. Expired transactions (24 h) are aborted lazily.
 * Nothing is visible before commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbit/store.h"
#include "bbit/tarball.h"
#include "server/internal.h"

#define MAX_COMPONENTS 10000
#define MAX_VERSION_OBJECT (16u << 20)
#define MAX_ANCESTRY_WALK 100000

/* One component of a request, as checked. */
struct tcomp {
    const char *scope, *name;
    cJSON *versions; /* the request's [{"version", "id"}] */
    cJSON *fresh;    /* the versions to publish (not yet on the server) */
    char head_version[SRV_MAX_VERSION + 1];
    char head_id[BBIT_STORE_ID_LEN + 1];
    bool has_head;
};

static int db_error(struct srv_request *r)
{
    return srv_send_internal(r, sqlite3_errmsg(r->db));
}

static const char *str_field(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- request validation ------------------------------------------------------ */

/* Checks one {"version", "id"} list: valid, strictly ascending. */
static int check_version_list(struct srv_request *r, const char *scope, const char *name,
                              const cJSON *versions)
{
    if (!cJSON_IsArray(versions) || cJSON_GetArraySize(versions) == 0)
        return srv_send_error(r, 400, "bad_request",
                              "component %s (%s) needs \"versions\": a non-empty array", name,
                              scope),
               -1;
    const char *prev = NULL;
    const cJSON *v;
    cJSON_ArrayForEach(v, versions)
    {
        const char *ver = str_field(v, "version"), *id = str_field(v, "id");
        if (!ver || !srv_valid_semver(ver))
            return srv_send_error(r, 400, "bad_request",
                                  "component %s (%s): invalid version '%.100s' (expected semver "
                                  "MAJOR.MINOR.PATCH)",
                                  name, scope, ver ? ver : "(missing)"),
                   -1;
        if (!id || !bbit_store_is_id(id))
            return srv_send_error(r, 400, "bad_request",
                                  "%s@%s (%s): invalid version object id '%.80s'", name, ver, scope,
                                  id ? id : "(missing)"),
                   -1;
        if (prev && srv_semver_cmp(prev, ver) >= 0)
            return srv_send_error(r, 400, "bad_request",
                                  "component %s (%s): versions must be in ascending order (%s "
                                  "comes after %s)",
                                  name, scope, ver, prev),
                   -1;
        prev = ver;
    }
    return 0;
}

/* Parses the components of a prepare body into comps (*n of them). */
static int parse_components(struct srv_request *r, cJSON *body, struct tcomp **comps, int *n)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "components");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return srv_send_error(r, 400, "bad_request",
                              "the body needs \"components\": a non-empty array"),
               -1;
    int count = cJSON_GetArraySize(list);
    if (count > MAX_COMPONENTS)
        return srv_send_error(r, 400, "bad_request", "at most %d components per transaction",
                              MAX_COMPONENTS),
               -1;
    *comps = calloc((size_t)count, sizeof **comps);
    if (!*comps)
        return srv_send_internal(r, "out of memory"), -1;
    const cJSON *c;
    cJSON_ArrayForEach(c, list)
    {
        struct tcomp *t = &(*comps)[*n];
        t->scope = str_field(c, "scope");
        t->name = str_field(c, "name");
        t->versions = cJSON_GetObjectItemCaseSensitive(c, "versions");
        if (!t->scope || !srv_valid_scope(t->scope))
            return srv_send_error(r, 400, "bad_request", "invalid scope name '%.100s'",
                                  t->scope ? t->scope : "(missing)"),
                   -1;
        if (!t->name || !srv_valid_component(t->name))
            return srv_send_error(r, 400, "bad_request", "invalid component name '%.200s'",
                                  t->name ? t->name : "(missing)"),
                   -1;
        for (int i = 0; i < *n; i++)
            if (strcmp((*comps)[i].scope, t->scope) == 0 && strcmp((*comps)[i].name, t->name) == 0)
                return srv_send_error(r, 400, "bad_request",
                                      "component %s (%s) appears more than once", t->name,
                                      t->scope),
                       -1;
        if (check_version_list(r, t->scope, t->name, t->versions) != 0)
            return -1;
        (*n)++;
    }
    return 0;
}

/* Every scope named needs write (and must exist). */
static int check_write(struct srv_request *r, struct tcomp *comps, int n)
{
    for (int i = 0; i < n; i++) {
        bool exists = false;
        int role = srv_scope_role(r, comps[i].scope, &exists);
        if (role < 0)
            return db_error(r), -1;
        if (role < SRV_ROLE_WRITE)
            return srv_send_error(r, 403, "forbidden",
                                  "your token (user %s) lacks write permission on scope %s",
                                  r->auth.user, comps[i].scope),
                   -1;
        if (!exists)
            return srv_send_error(r, 404, "scope_not_found",
                                  "scope %s does not exist on this server", comps[i].scope),
                   -1;
    }
    return 0;
}

/* ---- checks against the server ------------------------------------------------ */

/* Loads the component's head; 0 (t->has_head set or not) or -1 after a response. */
static int load_head(struct srv_request *r, struct tcomp *t)
{
    char err[SRV_ERR_SIZE];
    sqlite3_stmt *st = srv_db_prepare(
        r->db, "SELECT head_version, head_id FROM components WHERE scope=? AND name=?", err,
        sizeof err);
    if (!st)
        return srv_send_internal(r, err), -1;
    sqlite3_bind_text(st, 1, t->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        t->has_head = true;
        snprintf(t->head_version, sizeof t->head_version, "%s", sqlite3_column_text(st, 0));
        snprintf(t->head_id, sizeof t->head_id, "%s", sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(r), -1;
    return 0;
}

/* The committed id of version ver (into id), 1 if found, 0 if not, -1 on error. */
static int committed_id(struct srv_request *r, const struct tcomp *t, const char *ver,
                        char id[BBIT_STORE_ID_LEN + 1])
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT id FROM versions WHERE scope=? AND name=? AND version=?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, t->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ver, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW ? 1 : (rc == SQLITE_DONE ? 0 : -1);
    if (found == 1)
        snprintf(id, BBIT_STORE_ID_LEN + 1, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return found;
}

/* Is id a committed version of the component? 1/0/-1. */
static int is_committed_id(struct srv_request *r, const struct tcomp *t, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM versions WHERE scope=? AND name=? AND id=?", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, t->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : (rc == SQLITE_DONE ? 0 : -1);
}

/* (2) immutability: splits the request into skipped and fresh versions. */
static int check_immutable(struct srv_request *r, struct tcomp *t)
{
    t->fresh = cJSON_CreateArray();
    const cJSON *v;
    cJSON_ArrayForEach(v, t->versions)
    {
        const char *ver = str_field(v, "version"), *id = str_field(v, "id");
        char have[BBIT_STORE_ID_LEN + 1];
        int found = committed_id(r, t, ver, have);
        if (found < 0)
            return db_error(r), -1;
        if (found && strcmp(have, id) != 0) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "scope", t->scope);
            cJSON_AddStringToObject(d, "name", t->name);
            cJSON_AddStringToObject(d, "version", ver);
            cJSON_AddStringToObject(d, "server_id", have);
            return srv_send_error_details(r, 409, "version_exists", d,
                                          "%s@%s already exists on %s with other content (a "
                                          "published version is immutable: tag a new version)",
                                          t->name, ver, t->scope),
                   -1;
        }
        if (!found)
            cJSON_AddItemToArray(t->fresh, cJSON_Duplicate(v, 1));
    }
    return 0;
}

static int send_missing(struct srv_request *r, const struct tcomp *t, const char *ver,
                        const char *id, const char *what)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "scope", t->scope);
    cJSON_AddStringToObject(d, "name", t->name);
    cJSON_AddStringToObject(d, "version", ver);
    cJSON_AddStringToObject(d, "id", id);
    return srv_send_error_details(r, 409, "missing_object", d,
                                  "%s@%s on %s: %s %s is missing on the server (upload it first)",
                                  t->name, ver, t->scope, what, id);
}

static int send_invalid(struct srv_request *r, const struct tcomp *t, const char *ver,
                        const char *why)
{
    return srv_send_error(r, 400, "invalid_object", "%s@%s on %s: invalid version object: %s",
                          t->name, ver, t->scope, why);
}

/* Reads and parses version object id from store: 1 ok, 0 missing, -1 error (err set). */
static int read_version(bbit_store *store, const char *id, cJSON **out, char *err, size_t errlen)
{
    int has = bbit_store_has(store, id, err, errlen);
    if (has <= 0)
        return has;
    void *data = NULL;
    size_t len = 0;
    if (bbit_store_get(store, id, MAX_VERSION_OBJECT, &data, &len, err, errlen) != 0)
        return -1;
    *out = cJSON_ParseWithOpts(data, NULL, 1);
    free(data);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        snprintf(err, errlen, "object %s is not JSON", id);
        return -2;
    }
    return 1;
}

/* One referenced object (a blob or a parent) must exist. */
static int check_ref(struct srv_request *r, bbit_store *store, const struct tcomp *t,
                     const char *ver, const char *id, const char *what)
{
    char err[BBIT_STORE_ERR_SIZE], why[256];
    if (!id || !bbit_store_is_id(id)) {
        snprintf(why, sizeof why, "%s has an invalid object id", what);
        return send_invalid(r, t, ver, why), -1;
    }
    int has = bbit_store_has(store, id, err, sizeof err);
    if (has < 0)
        return srv_send_internal(r, err), -1;
    if (has == 0)
        return send_missing(r, t, ver, id, what), -1;
    return 0;
}

/* An artifact may come with its recipe instead of its bytes:
 *   "recipe": {"format": "tar.gz", "entries": [{"name", "mode": "644"|"755", "blob", "size"}]}
 * (the deterministic archive of those blobs, in that order). When the
 * artifact is missing, it is rebuilt from the blobs here and stored only if
 * it hashes to its id; otherwise it stays missing and the client, told so,
 * uploads it. Bounded: MAX_RECIPE_ENTRIES members, max_object_size bytes. */
#define MAX_RECIPE_ENTRIES 100000

static int rebuild_artifact(struct srv_request *r, bbit_store *store, const cJSON *artifact,
                            const char *id, char *err, size_t errlen)
{
    const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(artifact, "recipe");
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(recipe, "entries"), *e;
    const char *format = str_field(recipe, "format");
    int n = cJSON_GetArraySize(entries);
    if (!format || !cJSON_IsArray(entries) || n > MAX_RECIPE_ENTRIES) {
        snprintf(err, errlen, "the recipe needs \"format\" and at most %d \"entries\"",
                 MAX_RECIPE_ENTRIES);
        return -1;
    }
    struct bbit_tar_member *members = calloc((size_t)n + 1, sizeof *members);
    if (!members) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int i = 0, rc = 0;
    cJSON_ArrayForEach(e, entries)
    {
        const char *name = str_field(e, "name"), *mode = str_field(e, "mode");
        const char *blob = str_field(e, "blob");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(e, "size");
        if (!name || !mode || !blob || !bbit_store_is_id(blob) || !cJSON_IsNumber(size) ||
            size->valuedouble < 0 || size->valuedouble > (double)r->srv->max_object_size ||
            (strcmp(mode, "644") != 0 && strcmp(mode, "755") != 0)) {
            snprintf(err, errlen, "recipe entry #%d needs name, mode (644|755), blob, size", i + 1);
            rc = -1;
            break;
        }
        members[i++] = (struct bbit_tar_member){name, mode[0] == '7' ? 0755 : 0644, blob,
                                                (uint64_t)size->valuedouble};
    }
    if (rc == 0)
        rc = bbit_tar_build(store, format, members, (size_t)n, id, r->srv->max_object_size, NULL,
                            err, errlen);
    free(members);
    return rc;
}

/* The references of a parsed version object: files, artifacts, parents. */
static int check_references(struct srv_request *r, bbit_store *store, const struct tcomp *t,
                            const char *ver, const cJSON *obj)
{
    const char *lists[] = {"files", "artifacts"};
    char what[512];
    for (int l = 0; l < 2; l++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, lists[l]), *e;
        if (arr && !cJSON_IsArray(arr))
            return send_invalid(r, t, ver,
                                l == 0 ? "files is not an array" : "artifacts is not an array"),
                   -1;
        cJSON_ArrayForEach(e, arr)
        {
            const char *label = str_field(e, l == 0 ? "path" : "name");
            const char *blob = str_field(e, "blob");
            if (l == 1 && blob && bbit_store_is_id(blob) &&
                cJSON_GetObjectItemCaseSensitive(e, "recipe") &&
                bbit_store_has(store, blob, what, sizeof what) == 0) {
                char why[BBIT_STORE_ERR_SIZE];
                if (rebuild_artifact(r, store, e, blob, why, sizeof why) != 0)
                    fprintf(stderr, "bbit serve: %s@%s on %s: artifact %s not rebuilt from its "
                            "recipe (%s): the client is asked to upload it\n",
                            t->name, ver, t->scope, label ? label : "?", why);
            }
            snprintf(what, sizeof what, "%s %.300s (blob)", l == 0 ? "file" : "artifact",
                     label ? label : "?");
            if (check_ref(r, store, t, ver, blob, what) != 0)
                return -1;
        }
    }
    const cJSON *parents = cJSON_GetObjectItemCaseSensitive(obj, "parents"), *p;
    if (parents && !cJSON_IsArray(parents))
        return send_invalid(r, t, ver, "parents is not an array"), -1;
    cJSON_ArrayForEach(p, parents)
    {
        const char *id = cJSON_IsString(p) ? p->valuestring : NULL;
        int committed = id && bbit_store_is_id(id) ? is_committed_id(r, t, id) : 0;
        if (committed < 0)
            return db_error(r), -1;
        if (!committed && check_ref(r, store, t, ver, id, "parent version") != 0)
            return -1;
    }
    return 0;
}

/* (1) each fresh version object exists, is valid, and its references exist. */
static int check_objects(struct srv_request *r, bbit_store *store, struct tcomp *t)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, t->fresh)
    {
        const char *ver = str_field(v, "version"), *id = str_field(v, "id");
        char err[BBIT_STORE_ERR_SIZE];
        cJSON *obj = NULL;
        int rc = read_version(store, id, &obj, err, sizeof err);
        if (rc == 0)
            return send_missing(r, t, ver, id, "version object"), -1;
        if (rc == -2)
            return send_invalid(r, t, ver, err), -1;
        if (rc < 0)
            return srv_send_internal(r, err), -1;
        const char *kind = str_field(obj, "kind"), *oname = str_field(obj, "name"),
                   *over = str_field(obj, "version");
        char why[512];
        int bad = 1;
        if (!kind || strcmp(kind, "bbit.version/1") != 0)
            snprintf(why, sizeof why, "kind is not bbit.version/1");
        else if (!oname || strcmp(oname, t->name) != 0)
            snprintf(why, sizeof why, "it names component '%.200s'", oname ? oname : "");
        else if (!over || strcmp(over, ver) != 0)
            snprintf(why, sizeof why, "it is version '%.100s'", over ? over : "");
        else
            bad = 0;
        rc = bad ? (send_invalid(r, t, ver, why), -1) : check_references(r, store, t, ver, obj);
        cJSON_Delete(obj);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* 1 when ancestor is reachable from start through parents, 0 if not, -1 on error. */
static int descends_from(bbit_store *store, const char *start, const char *ancestor)
{
    size_t cap = 64, head = 0, tail = 0;
    char(*queue)[BBIT_STORE_ID_LEN + 1] = malloc(cap * sizeof *queue);
    if (!queue)
        return -1;
    snprintf(queue[tail++], BBIT_STORE_ID_LEN + 1, "%s", start);
    int found = 0;
    while (head < tail && tail < MAX_ANCESTRY_WALK && !found) {
        char err[BBIT_STORE_ERR_SIZE];
        cJSON *obj = NULL;
        if (read_version(store, queue[head++], &obj, err, sizeof err) != 1)
            continue;
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(obj, "parents"))
        {
            if (!cJSON_IsString(p) || !bbit_store_is_id(p->valuestring))
                continue;
            if (strcmp(p->valuestring, ancestor) == 0) {
                found = 1;
                break;
            }
            bool seen = false;
            for (size_t i = 0; i < tail && !seen; i++)
                seen = strcmp(queue[i], p->valuestring) == 0;
            if (seen)
                continue;
            if (tail == cap) {
                void *more = realloc(queue, 2 * cap * sizeof *queue);
                if (!more)
                    break;
                queue = more;
                cap *= 2;
            }
            snprintf(queue[tail++], BBIT_STORE_ID_LEN + 1, "%s", p->valuestring);
        }
        cJSON_Delete(obj);
    }
    free(queue);
    return found;
}

/* (3) the server head must be an ancestor of the new head. */
static int check_ancestry(struct srv_request *r, bbit_store *store, struct tcomp *t)
{
    int n = cJSON_GetArraySize(t->fresh);
    if (!t->has_head || n == 0)
        return 0;
    const cJSON *last = cJSON_GetArrayItem(t->fresh, n - 1);
    const char *id = str_field(last, "id"), *ver = str_field(last, "version");
    int ok = descends_from(store, id, t->head_id);
    if (ok < 0)
        return srv_send_internal(r, "out of memory"), -1;
    if (ok)
        return 0;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "scope", t->scope);
    cJSON_AddStringToObject(d, "name", t->name);
    cJSON_AddStringToObject(d, "server_head", t->head_version);
    cJSON_AddStringToObject(d, "server_head_id", t->head_id);
    return srv_send_error_details(
               r, 409, "not_ancestor", d,
               "%s on %s has version %s on the server, which is not an ancestor of your %s@%s; "
               "run 'bbit import %s/%s' to merge the remote version, or 'bbit reset %s' to drop "
               "your local versions",
               t->name, t->scope, t->head_version, t->name, ver, t->scope, t->name, t->name),
           -1;
}

/* (4) no other prepared transaction holds the component. */
static int check_lock(struct srv_request *r, struct tcomp *t)
{
    if (cJSON_GetArraySize(t->fresh) == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT txn_id FROM component_locks WHERE scope=? AND name=?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_error(r), -1;
    sqlite3_bind_text(st, 1, t->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "scope", t->scope);
        cJSON_AddStringToObject(d, "name", t->name);
        return srv_send_error_details(r, 409, "locked", d,
                                      "%s on %s is being exported by another transaction; retry",
                                      t->name, t->scope),
               -1;
    }
    if (rc != SQLITE_DONE)
        return db_error(r), -1;
    return 0;
}

static int check_component(struct srv_request *r, struct tcomp *t)
{
    if (load_head(r, t) != 0 || check_immutable(r, t) != 0)
        return -1;
    /* one store per scope for the whole request: opening one reads its pack indexes */
    bbit_store *store = srv_request_scope_store(r, t->scope);
    if (!store)
        return -1;
    int rc = check_objects(r, store, t);
    if (rc == 0)
        rc = check_ancestry(r, store, t);
    if (rc == 0)
        rc = check_lock(r, t);
    return rc;
}

/* Aborts expired prepared transactions and drops the locks of finished ones. */
static int expire_transactions(struct srv_request *r)
{
    char sql[256], err[SRV_ERR_SIZE];
    int64_t now = srv_now();
    snprintf(sql, sizeof sql,
             "UPDATE transactions SET state='aborted', updated_at=%lld WHERE state='prepared' "
             "AND expires_at <= %lld;",
             (long long)now, (long long)now);
    if (srv_db_exec(r->db, sql, err, sizeof err) != 0 ||
        srv_db_exec(r->db,
                    "DELETE FROM component_locks WHERE txn_id IN (SELECT id FROM transactions "
                    "WHERE state <> 'prepared');",
                    err, sizeof err) != 0)
        return srv_send_internal(r, err), -1;
    return 0;
}

/* The stored body: {"components": [{"scope", "name", "versions": fresh}]}. */
static cJSON *txn_body(struct tcomp *comps, int n)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(body, "components");
    for (int i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "scope", comps[i].scope);
        cJSON_AddStringToObject(c, "name", comps[i].name);
        cJSON_AddItemToObject(c, "versions", cJSON_Duplicate(comps[i].fresh, 1));
        cJSON_AddItemToArray(arr, c);
    }
    return body;
}

/* Inserts the transaction row and its locks. */
static int store_txn(struct srv_request *r, const char *id, struct tcomp *comps, int n, int64_t now,
                     cJSON *body)
{
    char *text = cJSON_PrintUnformatted(body);
    sqlite3_stmt *st = NULL, *lock = NULL;
    int rc = -1;
    if (!text ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO transactions(id, state, token_id, created_at, "
                           "updated_at, expires_at, body) VALUES (?, 'prepared', ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO component_locks(scope, name, txn_id) VALUES (?, ?, ?)", -1,
                           &lock, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->auth.token_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now + SRV_TXN_TTL_SECONDS);
    sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    for (int i = 0; i < n; i++) {
        if (cJSON_GetArraySize(comps[i].fresh) == 0)
            continue;
        sqlite3_reset(lock);
        sqlite3_bind_text(lock, 1, comps[i].scope, -1, SQLITE_STATIC);
        sqlite3_bind_text(lock, 2, comps[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(lock, 3, id, -1, SQLITE_STATIC);
        if (sqlite3_step(lock) != SQLITE_DONE)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        db_error(r);
    sqlite3_finalize(st);
    sqlite3_finalize(lock);
    free(text);
    return rc;
}

static cJSON *txn_json(const char *id, const char *state, int64_t created, int64_t expires,
                       cJSON *components)
{
    char iso[32];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "state", state);
    srv_iso8601(created, iso);
    cJSON_AddStringToObject(o, "created_at", iso);
    srv_iso8601(expires, iso);
    cJSON_AddStringToObject(o, "expires_at", iso);
    if (components)
        cJSON_AddItemToObject(o, "components", components);
    return o;
}

static void free_comps(struct tcomp *comps, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(comps[i].fresh);
    free(comps);
}

/* The transaction id: the client's proposal (it journals the id before
 * asking, so an interrupted export can always commit or abort it), else a
 * random one. 0, or -1 after a response. */
static int choose_id(struct srv_request *r, const cJSON *body, char id[SRV_TXN_ID_LEN + 1])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "id");
    if (!v || cJSON_IsNull(v)) {
        if (srv_random_hex(id, SRV_TXN_ID_LEN / 2) != 0)
            return srv_send_internal(r, "no random bytes"), -1;
        return 0;
    }
    if (!cJSON_IsString(v) || !srv_valid_txn_id(v->valuestring))
        return srv_send_error(r, 400, "bad_request",
                              "invalid transaction id (expected 32 lowercase hex digits)"),
               -1;
    snprintf(id, SRV_TXN_ID_LEN + 1, "%s", v->valuestring);
    return 0;
}

/* A prepare retried with the same id: answers with the transaction as it is.
 * 1 after a response, 0 when no transaction has this id. */
static int existing_prepare(struct srv_request *r, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT state, token_id, created_at, expires_at, body FROM "
                           "transactions WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(r), 1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return db_error(r), 1;
        return 0;
    }
    char state[16];
    snprintf(state, sizeof state, "%s", sqlite3_column_text(st, 0));
    int64_t token = sqlite3_column_int64(st, 1), created = sqlite3_column_int64(st, 2),
            expires = sqlite3_column_int64(st, 3);
    cJSON *stored = cJSON_Parse((const char *)sqlite3_column_text(st, 4));
    sqlite3_finalize(st);
    cJSON *comps = stored ? cJSON_DetachItemFromObjectCaseSensitive(stored, "components") : NULL;
    cJSON_Delete(stored);
    if (token != r->auth.token_id) {
        cJSON_Delete(comps);
        srv_send_error(r, 409, "transaction_exists",
                       "transaction id %s is already used by another export", id);
    } else if (strcmp(state, "prepared") == 0) {
        srv_send_json(r, 201, txn_json(id, state, created, expires, comps));
    } else if (strcmp(state, "committed") == 0) {
        srv_send_json(r, 200, txn_json(id, state, created, expires, comps));
    } else {
        cJSON_Delete(comps);
        srv_send_error(r, 409, "transaction_aborted",
                       "transaction %s was aborted; run the export again", id);
    }
    return 1;
}

struct txn_row {
    char state[16];
    int64_t token_id, created_at, expires_at;
    cJSON *body;
};

static int publish(struct srv_request *r, const char *id, const struct txn_row *t);

// POST /api/v1/transactions {["id": "<32 hex>",] "components": [...], ["commit": true]}
//   -> 201 {"id", "state": "prepared", "created_at", "expires_at", "components"}
// With "commit": true (an export to this server alone: nothing to coordinate)
// a successful prepare is committed in the same SQLite transaction: state
// "committed". Retrying with the same id answers with the transaction as it is.
int txn_prepare(struct srv_request *r)
{
    cJSON *body = srv_parse_body(r);
    if (!body)
        return 0;
    bool commit = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "commit"));
    struct tcomp *comps = NULL;
    int n = 0;
    char err[SRV_ERR_SIZE], id[SRV_TXN_ID_LEN + 1];
    if (choose_id(r, body, id) != 0 || parse_components(r, body, &comps, &n) != 0 ||
        check_write(r, comps, n) != 0)
        goto out;
    if (srv_db_begin(r->db, err, sizeof err) != 0) {
        srv_send_internal(r, err);
        goto out;
    }
    if (expire_transactions(r) != 0 || existing_prepare(r, id) != 0)
        goto rollback;
    for (int i = 0; i < n; i++)
        if (check_component(r, &comps[i]) != 0)
            goto rollback;
    int64_t now = srv_now();
    cJSON *stored = txn_body(comps, n);
    int rc = store_txn(r, id, comps, n, now, stored);
    if (rc == 0 && commit) {
        struct txn_row row = {.body = stored};
        if ((rc = publish(r, id, &row)) != 0)
            db_error(r);
    }
    if (rc == 0 && srv_db_commit(r->db, err, sizeof err) != 0) {
        srv_send_internal(r, err);
        rc = -1;
    }
    if (rc == 0)
        srv_fault_point("server:after-prepare");
    if (rc != 0) {
        cJSON_Delete(stored);
        goto rollback;
    }
    cJSON *comps_json = cJSON_DetachItemFromObjectCaseSensitive(stored, "components");
    cJSON_Delete(stored);
    if (srv_fault_wanted("server:prepare-lost")) { /* done, but the client cannot know it */
        cJSON_Delete(comps_json);
        srv_send_internal(r, "fault injected after the commit (BBIT_FAULT)");
        goto out;
    }
    srv_send_json(r, 201, txn_json(id, commit ? "committed" : "prepared", now,
                                   now + SRV_TXN_TTL_SECONDS, comps_json));
    goto out;
rollback:
    srv_db_rollback(r->db);
out:
    free_comps(comps, n);
    cJSON_Delete(body);
    return 0;
}

/* ---- commit, abort, get ---------------------------------------------------------- */


/* Loads transaction r->params[0]; 1 found, 0 after a response (404, 400, 403, 500). */
static int load_txn(struct srv_request *r, struct txn_row *t)
{
    const char *id = r->params[0];
    memset(t, 0, sizeof *t);
    if (!srv_valid_txn_id(id))
        return srv_send_error(r, 404, "transaction_not_found", "no transaction %.64s", id), 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT state, token_id, created_at, expires_at, body FROM "
                           "transactions WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(r), 0;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(t->state, sizeof t->state, "%s", sqlite3_column_text(st, 0));
        t->token_id = sqlite3_column_int64(st, 1);
        t->created_at = sqlite3_column_int64(st, 2);
        t->expires_at = sqlite3_column_int64(st, 3);
        t->body = cJSON_Parse((const char *)sqlite3_column_text(st, 4));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return srv_send_error(r, 404, "transaction_not_found", "no transaction %s", id), 0;
    if (rc != SQLITE_ROW || !t->body)
        return db_error(r), 0;
    // Only the token that prepared it, or an admin of every scope in it.
    if (t->token_id == r->auth.token_id)
        return 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(t->body, "components"))
    {
        const char *scope = str_field(c, "scope");
        if (!scope || srv_auth_role(&r->auth, scope, false) < SRV_ROLE_ADMIN) {
            srv_send_error(r, 403, "forbidden",
                           "transaction %s belongs to another token (only it or an admin of %s "
                           "may use it)",
                           id, scope ? scope : "its scopes");
            cJSON_Delete(t->body);
            t->body = NULL;
            return 0;
        }
    }
    return 1;
}

/* Marks the transaction aborted and drops its locks (inside a transaction). */
static int mark_aborted(struct srv_request *r, const char *id)
{
    sqlite3_stmt *st = NULL, *del = NULL;
    int ok = sqlite3_prepare_v2(r->db,
                                "UPDATE transactions SET state='aborted', updated_at=? WHERE id=?",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(r->db, "DELETE FROM component_locks WHERE txn_id=?", -1, &del,
                                NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, srv_now());
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_step(del) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(del);
    return ok ? 0 : -1;
}

/* Publishes one component's versions and moves its head. */
static int publish_component(struct srv_request *r, const char *txn, const cJSON *c, int64_t now)
{
    const char *scope = str_field(c, "scope"), *name = str_field(c, "name");
    const cJSON *versions = cJSON_GetObjectItemCaseSensitive(c, "versions");
    int n = cJSON_GetArraySize(versions);
    if (!scope || !name || n == 0)
        return 0;
    const cJSON *last = cJSON_GetArrayItem(versions, n - 1);
    sqlite3_stmt *head = NULL, *ins = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO components(scope, name, head_version, head_id, updated_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(scope, name) DO UPDATE SET "
                           "head_version=?3, head_id=?4, updated_at=?5",
                           -1, &head, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO versions(scope, name, version, id, created_at, txn_id) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &ins, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(head, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(head, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(head, 3, str_field(last, "version"), -1, SQLITE_STATIC);
    sqlite3_bind_text(head, 4, str_field(last, "id"), -1, SQLITE_STATIC);
    sqlite3_bind_int64(head, 5, now);
    if (sqlite3_step(head) != SQLITE_DONE)
        goto out;
    const cJSON *v;
    cJSON_ArrayForEach(v, versions)
    {
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, scope, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, str_field(v, "version"), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, str_field(v, "id"), -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, now);
        sqlite3_bind_text(ins, 6, txn, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(head);
    sqlite3_finalize(ins);
    return rc;
}

static int publish(struct srv_request *r, const char *id, const struct txn_row *t)
{
    int64_t now = srv_now();
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(t->body, "components"))
    {
        if (publish_component(r, id, c, now) != 0)
            return -1;
    }
    sqlite3_stmt *st = NULL, *del = NULL;
    int ok =
        sqlite3_prepare_v2(r->db,
                           "UPDATE transactions SET state='committed', updated_at=? WHERE id=?", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(r->db, "DELETE FROM component_locks WHERE txn_id=?", -1, &del, NULL) ==
            SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_step(del) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(del);
    return ok ? 0 : -1;
}

static int send_state(struct srv_request *r, const char *state)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->params[0]);
    cJSON_AddStringToObject(o, "state", state);
    return srv_send_json(r, 200, o);
}

/* Decides a commit. Success is answered only after the SQLite commit; a
 * refusal is answered here and rolled back. */
static int do_commit(struct srv_request *r, struct txn_row *t)
{
    const char *id = r->params[0];
    if (strcmp(t->state, "committed") == 0)
        return 0;
    if (strcmp(t->state, "aborted") == 0)
        return srv_send_error(r, 409, "transaction_aborted",
                              "transaction %s was aborted; run the export again", id),
               -1;
    if (t->expires_at <= srv_now()) {
        if (mark_aborted(r, id) != 0)
            return db_error(r), -1;
        strcpy(t->state, "expired");
        return 0;
    }
    if (publish(r, id, t) != 0)
        return db_error(r), -1;
    srv_fault_point("server:during-commit");
    return 0;
}

// POST /api/v1/transactions/{id}/commit -> 200 {"id", "state": "committed"}
int txn_commit(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    if (srv_db_begin(r->db, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    struct txn_row t;
    int rc = load_txn(r, &t) ? do_commit(r, &t) : -1;
    if (rc == 0 && srv_db_commit(r->db, err, sizeof err) != 0) {
        srv_send_internal(r, err);
        rc = -1;
    }
    if (rc == 0)
        srv_fault_point("server:after-commit");
    if (rc != 0)
        srv_db_rollback(r->db);
    else if (strcmp(t.state, "expired") == 0)
        srv_send_error(r, 409, "transaction_aborted",
                       "transaction %s expired (prepared more than 24 hours ago); run the "
                       "export again",
                       r->params[0]);
    else
        send_state(r, "committed");
    cJSON_Delete(t.body);
    return 0;
}

static int do_abort(struct srv_request *r, struct txn_row *t)
{
    if (strcmp(t->state, "committed") == 0)
        return srv_send_error(r, 409, "transaction_committed",
                              "transaction %s is already committed and cannot be aborted",
                              r->params[0]),
               -1;
    if (strcmp(t->state, "prepared") == 0 && mark_aborted(r, r->params[0]) != 0)
        return db_error(r), -1;
    return 0;
}

/* Aborting an id the server never prepared (the client's prepare failed or
 * never arrived) records it as aborted, so a late prepare with that id is
 * refused. 1 when recorded, 0 when the id exists, -1 on error. */
static int abort_unknown(struct srv_request *r, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (!srv_valid_txn_id(id) ||
        sqlite3_prepare_v2(r->db,
                           "INSERT OR IGNORE INTO transactions(id, state, token_id, created_at, "
                           "updated_at, expires_at, body) VALUES (?1, 'aborted', ?2, ?3, ?3, ?3, "
                           "'{\"components\":[]}')",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return srv_valid_txn_id(id) ? -1 : 0;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->auth.token_id);
    sqlite3_bind_int64(st, 3, srv_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    return sqlite3_changes(r->db) == 1 ? 1 : 0;
}

// POST /api/v1/transactions/{id}/abort -> 200 {"id", "state": "aborted"} (idempotent)
int txn_abort(struct srv_request *r)
{
    char err[SRV_ERR_SIZE];
    if (srv_db_begin(r->db, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    struct txn_row t = {0};
    int unknown = abort_unknown(r, r->params[0]);
    int rc;
    if (unknown < 0) {
        db_error(r);
        rc = -1;
    } else if (unknown == 1) {
        rc = 0;
    } else {
        rc = load_txn(r, &t) ? do_abort(r, &t) : -1;
    }
    if (rc == 0 && srv_db_commit(r->db, err, sizeof err) != 0) {
        srv_send_internal(r, err);
        rc = -1;
    }
    if (rc != 0)
        srv_db_rollback(r->db);
    else
        send_state(r, "aborted");
    cJSON_Delete(t.body);
    return 0;
}

// GET /api/v1/transactions/{id} -> {"id", "state", "created_at", "expires_at", "components"}
int txn_get(struct srv_request *r)
{
    struct txn_row t;
    if (!load_txn(r, &t))
        return 0;
    const char *state = t.state;
    if (strcmp(state, "prepared") == 0 && t.expires_at <= srv_now())
        state = "aborted";
    cJSON *comps = cJSON_DetachItemFromObjectCaseSensitive(t.body, "components");
    cJSON_Delete(t.body);
    return srv_send_json(r, 200, txn_json(r->params[0], state, t.created_at, t.expires_at, comps));
}
