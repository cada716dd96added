/* The SQLite side of a server root: schema, connections, small queries.
 * One connection per request (or admin command): SQLite connections are not
 * shared between threads. A server thread keeps its last request's one for
 * the next (srv_db_acquire/release). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/internal.h"

#define SCHEMA_VERSION "1"

/* Tables of the web sign-in (login.c), added after schema 1 without a
 * version bump: every statement is additive, so older roots get them on
 * first use (srv_db_ensure_web_schema). */
#define WEB_SCHEMA                                                                                 \
    "CREATE TABLE IF NOT EXISTS web_csrf("                                                         \
    "  nonce_hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);"                                 \
    "CREATE TABLE IF NOT EXISTS login_failures("                                                   \
    "  id INTEGER PRIMARY KEY, user TEXT NOT NULL, ip TEXT NOT NULL, at INTEGER NOT NULL);"        \
    "CREATE INDEX IF NOT EXISTS login_failures_user ON login_failures(user, at);"                  \
    "CREATE INDEX IF NOT EXISTS login_failures_ip ON login_failures(ip, at);"

static const char *const SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS scopes("
    "  name TEXT PRIMARY KEY, public INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users("
    "  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS user_grants("
    "  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  scope_pattern TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK(role IN ('read','write','admin')),"
    "  PRIMARY KEY(user, scope_pattern));"
    "CREATE TABLE IF NOT EXISTS tokens("
    "  id INTEGER PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name),"
    "  name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL, revoked_at INTEGER, last_used_at INTEGER);"
    "CREATE TABLE IF NOT EXISTS token_grants("
    "  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    "  scope_pattern TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK(role IN ('read','write','admin')),"
    "  PRIMARY KEY(token_id, scope_pattern));"
    "CREATE TABLE IF NOT EXISTS components("
    "  scope TEXT NOT NULL REFERENCES scopes(name), name TEXT NOT NULL,"
    "  head_version TEXT NOT NULL, head_id TEXT NOT NULL, updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY(scope, name));"
    "CREATE TABLE IF NOT EXISTS versions("
    "  scope TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, txn_id TEXT,"
    "  PRIMARY KEY(scope, name, version),"
    "  FOREIGN KEY(scope, name) REFERENCES components(scope, name));"
    "CREATE TABLE IF NOT EXISTS transactions("
    "  id TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL CHECK(state IN ('prepared','committed','aborted')),"
    "  token_id INTEGER NOT NULL REFERENCES tokens(id),"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL, body TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS component_locks("
    "  scope TEXT NOT NULL, name TEXT NOT NULL,"
    "  txn_id TEXT NOT NULL REFERENCES transactions(id),"
    "  PRIMARY KEY(scope, name));"
    "CREATE INDEX IF NOT EXISTS component_locks_txn ON component_locks(txn_id);" WEB_SCHEMA
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('format', 'bbit-server'),"
    "  ('schema_version', '" SCHEMA_VERSION "');";

static int db_path(const char *root, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/server.db", root);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

int srv_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        srv_fail(err, errlen, "database: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *srv_db_prepare(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Opens path with flags and sets the per-connection pragmas. */
static sqlite3 *db_connect(const char *path, int flags, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        srv_fail(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (srv_db_exec(db, "PRAGMA foreign_keys=ON;", err, errlen) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Checks that db is a bbit server database. */
static int db_check_format(sqlite3 *db, const char *root, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='format'", -1, &st, NULL) ==
                 SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "bbit-server") == 0;
    sqlite3_finalize(st);
    if (!ok)
        return srv_fail(err, errlen, "%s/server.db is not a bbit server database", root);
    return 0;
}

sqlite3 *srv_db_open(const char *root, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    if (db_path(root, path, sizeof path) != 0) {
        srv_fail(err, errlen, "%s: path too long", root);
        return NULL;
    }
    if (stat(path, &st) != 0) {
        srv_fail(err, errlen,
                 "%s is not a bbit server root (no server.db); create one with "
                 "'bbit server init --root %s'",
                 root, root);
        return NULL;
    }
    sqlite3 *db = db_connect(path, SQLITE_OPEN_READWRITE, err, errlen);
    if (db && db_check_format(db, root, err, errlen) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

sqlite3 *srv_db_create(const char *root, char *err, size_t errlen)
{
    char path[4096];
    if (db_path(root, path, sizeof path) != 0) {
        srv_fail(err, errlen, "%s: path too long", root);
        return NULL;
    }
    sqlite3 *db = db_connect(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errlen);
    if (!db)
        return NULL;
    if (srv_db_exec(db, "PRAGMA journal_mode=WAL;", err, errlen) != 0 ||
        srv_db_exec(db, "BEGIN IMMEDIATE;", err, errlen) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    if (srv_db_exec(db, SCHEMA, err, errlen) != 0 || srv_db_exec(db, "COMMIT;", err, errlen) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int srv_db_ensure_web_schema(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    bool present = sqlite3_prepare_v2(db,
                                      "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                                      "name IN ('web_csrf','login_failures')",
                                      -1, &st, NULL) == SQLITE_OK &&
                   sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 2;
    sqlite3_finalize(st);
    if (present)
        return 0;
    return srv_db_exec(db, WEB_SCHEMA, err, errlen);
}

void srv_db_close(sqlite3 *db)
{
    sqlite3_close(db); // every statement is finalized by its user
}

/* The connection a thread keeps between requests: opening one reads the
 * schema and checks the format, about a millisecond of every request. */
struct kept_db {
    sqlite3 *db;
    char root[];
};
static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;

static void kept_free(void *p)
{
    struct kept_db *k = p;
    sqlite3_close(k->db);
    free(k);
}

static void kept_init(void)
{
    pthread_key_create(&kept_key, kept_free); /* closed when the thread ends */
}

sqlite3 *srv_db_acquire(const char *root, char *err, size_t errlen)
{
    pthread_once(&kept_once, kept_init);
    struct kept_db *k = pthread_getspecific(kept_key);
    if (k) {
        pthread_setspecific(kept_key, NULL);
        if (strcmp(k->root, root) == 0) {
            sqlite3 *db = k->db;
            free(k);
            return db;
        }
        kept_free(k);
    }
    return srv_db_open(root, err, errlen);
}

void srv_db_release(const char *root, sqlite3 *db)
{
    if (!db)
        return;
    pthread_once(&kept_once, kept_init);
    if (!sqlite3_get_autocommit(db)) /* a transaction an error path left open */
        sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
    struct kept_db *k = NULL;
    if (sqlite3_get_autocommit(db) && sqlite3_next_stmt(db, NULL) == NULL &&
        !pthread_getspecific(kept_key) && (k = malloc(sizeof *k + strlen(root) + 1))) {
        k->db = db;
        strcpy(k->root, root);
        if (pthread_setspecific(kept_key, k) == 0)
            return;
        free(k);
    }
    srv_db_close(db);
}

int srv_db_begin(sqlite3 *db, char *err, size_t errlen)
{
    return srv_db_exec(db, "BEGIN IMMEDIATE;", err, errlen);
}

int srv_db_commit(sqlite3 *db, char *err, size_t errlen)
{
    if (srv_db_exec(db, "COMMIT;", err, errlen) != 0) {
        srv_db_rollback(db);
        return -1;
    }
    return 0;
}

void srv_db_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
}

int srv_db_scope_get(sqlite3 *db, const char *scope, bool *is_public, char *err, size_t errlen)
{
    sqlite3_stmt *st = srv_db_prepare(db, "SELECT public FROM scopes WHERE name=?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        if (is_public)
            *is_public = sqlite3_column_int(st, 0) != 0;
    } else if (rc != SQLITE_DONE) {
        found = srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return found;
}

int srv_scope_dir(const char *root, const char *scope, char *out, size_t outlen)
{
    if (!srv_valid_scope(scope))
        return -1;
    int n = snprintf(out, outlen, "%s/scopes/%s", root, scope);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}
