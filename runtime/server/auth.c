/* Authentication and authorization: password hashes (scrypt), tokens (only
 * their SHA-256 is stored), grants (scope glob -> role) and effective roles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include "server/internal.h"

/* scrypt parameters: N=2^15, r=8, p=1 (32 MiB, ~0.1 s). */
#define SCRYPT_N 32768ULL
#define SCRYPT_R 8ULL
#define SCRYPT_P 1ULL
#define SCRYPT_MAXMEM (64ULL << 20)
#define SALT_LEN 16
#define KEY_LEN 32

static int hex_decode(const char *hex, unsigned char *out, size_t outlen)
{
    if (strlen(hex) != 2 * outlen)
        return -1;
    for (size_t i = 0; i < outlen; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
    out[2 * n] = '\0';
}

static int scrypt(const char *password, const unsigned char *salt, size_t saltlen, uint64_t n,
                  uint64_t r, uint64_t p, unsigned char *key, size_t keylen)
{
    return EVP_PBE_scrypt(password, strlen(password), salt, saltlen, n, r, p, SCRYPT_MAXMEM, key,
                          keylen) == 1
               ? 0
               : -1;
}

int srv_password_hash(const char *password, char *out, size_t outlen, char *err, size_t errlen)
{
    char salt_hex[2 * SALT_LEN + 1], key_hex[2 * KEY_LEN + 1];
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    if (srv_random_hex(salt_hex, SALT_LEN) != 0 || hex_decode(salt_hex, salt, SALT_LEN) != 0)
        return srv_fail(err, errlen, "cannot get random bytes for the salt");
    if (scrypt(password, salt, SALT_LEN, SCRYPT_N, SCRYPT_R, SCRYPT_P, key, KEY_LEN) != 0)
        return srv_fail(err, errlen, "scrypt failed (out of memory?)");
    hex_encode(key, KEY_LEN, key_hex);
    OPENSSL_cleanse(key, sizeof key);
    int n = snprintf(out, outlen, "scrypt$%llu$%llu$%llu$%s$%s", SCRYPT_N, SCRYPT_R, SCRYPT_P,
                     salt_hex, key_hex);
    if (n < 0 || (size_t)n >= outlen)
        return srv_fail(err, errlen, "password hash buffer too small");
    return 0;
}

int srv_password_verify(const char *password, const char *stored)
{
    unsigned long long n, r, p;
    char salt_hex[2 * SALT_LEN + 1], key_hex[2 * KEY_LEN + 1];
    if (sscanf(stored, "scrypt$%llu$%llu$%llu$%32[0-9a-f]$%64[0-9a-f]", &n, &r, &p, salt_hex,
               key_hex) != 5)
        return -1;
    unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
    if (hex_decode(salt_hex, salt, SALT_LEN) != 0 || hex_decode(key_hex, want, KEY_LEN) != 0)
        return -1;
    if (scrypt(password, salt, SALT_LEN, n, r, p, got, KEY_LEN) != 0)
        return -1;
    int same = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return same;
}

int srv_token_generate(char out[SRV_TOKEN_LEN + 1])
{
    memcpy(out, SRV_TOKEN_PREFIX, 5);
    return srv_random_hex(out + 5, 20);
}

static bool valid_token_syntax(const char *t)
{
    if (strlen(t) != SRV_TOKEN_LEN || strncmp(t, SRV_TOKEN_PREFIX, 5) != 0)
        return false;
    for (const char *p = t + 5; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int srv_grant_parse(const char *s, struct srv_grant *g, char *err, size_t errlen)
{
    const char *eq = strrchr(s, '=');
    size_t plen = eq ? (size_t)(eq - s) : 0;
    if (!eq || plen == 0 || plen > SRV_MAX_PATTERN)
        return srv_fail(err, errlen,
                        "invalid grant '%s' (expected PATTERN=ROLE, e.g. my-org.*=write)", s);
    memcpy(g->pattern, s, plen);
    g->pattern[plen] = '\0';
    if (!srv_valid_pattern(g->pattern))
        return srv_fail(err, errlen,
                        "invalid scope pattern '%s' (lowercase letters, digits, '.', '_', '-' "
                        "and '*')",
                        g->pattern);
    g->role = srv_role_parse(eq + 1);
    if (g->role < 0)
        return srv_fail(err, errlen, "invalid role '%s' in grant '%s' (read, write or admin)",
                        eq + 1, s);
    return 0;
}

/* Appends the grants returned by st (pattern, role) to *grants. */
static int collect_grants(sqlite3 *db, sqlite3_stmt *st, struct srv_grant **grants, int *n,
                          char *err, size_t errlen)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct srv_grant *g = realloc(*grants, sizeof **grants * (size_t)(*n + 1));
        if (!g)
            return srv_fail(err, errlen, "out of memory");
        *grants = g;
        snprintf(g[*n].pattern, sizeof g[*n].pattern, "%s",
                 (const char *)sqlite3_column_text(st, 0));
        g[*n].role = srv_role_parse((const char *)sqlite3_column_text(st, 1));
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    return 0;
}

int srv_auth_load_grants(sqlite3 *db, int64_t token_id, const char *user, struct srv_grant **grants,
                         int *n, char *err, size_t errlen)
{
    *grants = NULL;
    *n = 0;
    sqlite3_stmt *st = srv_db_prepare(
        db, "SELECT scope_pattern, role FROM token_grants WHERE token_id=? ORDER BY scope_pattern",
        err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, token_id);
    int rc = collect_grants(db, st, grants, n, err, errlen);
    sqlite3_finalize(st);
    if (rc != 0 || *n > 0)
        return rc;
    // A token without grants of its own (a login token) acts with its user's.
    st = srv_db_prepare(
        db, "SELECT scope_pattern, role FROM user_grants WHERE user=? ORDER BY scope_pattern", err,
        errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    rc = collect_grants(db, st, grants, n, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

/* Records the use of a token, at most once a minute (a write per request
 * would serialize every reader on the database lock). Best effort. */
static void touch_token(sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    sqlite3_busy_timeout(db, 0); // never wait for a writer just for this
    if (sqlite3_prepare_v2(db,
                           "UPDATE tokens SET last_used_at=?1 WHERE id=?2 AND "
                           "(last_used_at IS NULL OR last_used_at < ?1 - 60)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, srv_now());
        sqlite3_bind_int64(st, 2, id);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    sqlite3_busy_timeout(db, 5000);
}

int srv_auth_lookup(sqlite3 *db, const char *authorization, struct srv_auth *auth, char *err,
                    size_t errlen)
{
    memset(auth, 0, sizeof *auth);
    if (!authorization)
        return SRV_AUTH_OK;
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        srv_fail(err, errlen, "the Authorization header must be 'Bearer <token>'");
        return SRV_AUTH_UNAUTHORIZED;
    }
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    if (!valid_token_syntax(token)) {
        srv_fail(err, errlen, "malformed token (expected bbit_ and 40 hex digits)");
        return SRV_AUTH_UNAUTHORIZED;
    }
    char hash[65];
    srv_sha256_hex(token, strlen(token), hash);
    sqlite3_stmt *st = srv_db_prepare(
        db, "SELECT id, user, name, revoked_at FROM tokens WHERE token_hash=?", err, errlen);
    if (!st)
        return SRV_AUTH_ERROR;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int result = SRV_AUTH_OK;
    if (rc == SQLITE_DONE) {
        srv_fail(err, errlen, "unknown token (sign in again with 'bbit login')");
        result = SRV_AUTH_UNAUTHORIZED;
    } else if (rc != SQLITE_ROW) {
        srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
        result = SRV_AUTH_ERROR;
    } else if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
        srv_fail(err, errlen, "token %lld has been revoked (sign in again with 'bbit login')",
                 (long long)sqlite3_column_int64(st, 0));
        result = SRV_AUTH_UNAUTHORIZED;
    } else {
        auth->token_id = sqlite3_column_int64(st, 0);
        snprintf(auth->user, sizeof auth->user, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(auth->token_name, sizeof auth->token_name, "%s",
                 (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    if (result != SRV_AUTH_OK)
        return result;
    if (srv_auth_load_grants(db, auth->token_id, auth->user, &auth->grants, &auth->ngrants, err,
                             errlen) != 0) {
        srv_auth_free(auth);
        return SRV_AUTH_ERROR;
    }
    touch_token(db, auth->token_id);
    return SRV_AUTH_OK;
}

void srv_auth_free(struct srv_auth *auth)
{
    free(auth->grants);
    auth->grants = NULL;
    auth->ngrants = 0;
}

int srv_auth_role(const struct srv_auth *auth, const char *scope, bool is_public)
{
    int role = is_public ? SRV_ROLE_READ : SRV_ROLE_NONE;
    for (int i = 0; i < auth->ngrants; i++)
        if (auth->grants[i].role > role && srv_glob_match(auth->grants[i].pattern, scope))
            role = auth->grants[i].role;
    return role;
}

int srv_user_password_hash(sqlite3 *db, const char *user, char *out, size_t outlen, char *err,
                           size_t errlen)
{
    sqlite3_stmt *st =
        srv_db_prepare(db, "SELECT password_hash FROM users WHERE name=?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return found;
}

int srv_login_token_issue(sqlite3 *db, const char *user, const char *name,
                          char token_out[SRV_TOKEN_LEN + 1], int64_t *id_out, char *err,
                          size_t errlen)
{
    char hash[65];
    if (srv_token_generate(token_out) != 0)
        return srv_fail(err, errlen, "cannot get random bytes for a token");
    srv_sha256_hex(token_out, strlen(token_out), hash);
    sqlite3_stmt *st = srv_db_prepare(
        db, "INSERT INTO tokens(user, name, token_hash, created_at) VALUES (?, ?, ?, ?)", err,
        errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, srv_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    *id_out = sqlite3_last_insert_rowid(db);
    return 0;
}

int srv_token_revoke_id(sqlite3 *db, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st = srv_db_prepare(
        db, "UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, srv_now());
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return srv_fail(err, errlen, "database: %s", sqlite3_errmsg(db));
    return 0;
}
