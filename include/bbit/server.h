/* The scope server (SPEC §7): `bbit serve` and the `bbit server ...` admin
 * operations on a server root.
 *
 * A server root DIR holds DIR/server.db (SQLite, WAL: scopes, users, hashed
 * tokens, grants, component heads, versions, export transactions) and
 * DIR/scopes/<scope>/, each scope's object store (include/bbit/store.h).
 * The admin operations work directly on the SQLite file; WAL makes that safe
 * while a server runs on the same root.
 *
 * Errors: functions returning int give 0 on success and -1 with a message in
 * err (NUL-terminated, truncated to errlen) that names the root, scope, user
 * or token, e.g. "scope my-org.ui already exists". */
#ifndef BBIT_SERVER_H
#define BBIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define BBIT_SERVER_DEFAULT_MAX_OBJECT_SIZE (2ULL << 30) /* 2 GiB */
#define BBIT_SERVER_DEFAULT_MAX_CONNECTIONS 64
#define BBIT_SERVER_MAX_JSON_BODY (8u << 20) /* 8 MiB */

struct bbit_server_options {
    const char *root;         /* server root (initialized) */
    const char *listen;       /* "HOST:PORT"; port 0 = chosen by the kernel */
    bool public_listen;       /* allow a non-loopback address */
    uint64_t max_object_size; /* 0 = default; compressed and uncompressed bound */
    unsigned max_connections; /* 0 = default */
    const char *version;      /* reported by /api/v1/health */
};

/* Runs the server until SIGINT or SIGTERM, then stops it cleanly and returns
 * 0. Prints "bbit serve: listening on http://HOST:PORT (root DIR)" to stderr
 * once listening, and one line per request. -1 when it cannot start. */
int bbit_server_serve(const struct bbit_server_options *opts, char *err, size_t errlen);

/* Creates a server root at root (the directory may exist but must then be
 * empty). *already is set (and 0 returned) when root is a server root. */
int bbit_server_init(const char *root, bool *already, char *err, size_t errlen);

/* Hosts a new scope (owner.scope or a bare name). */
int bbit_server_scope_create(const char *root, const char *name, bool is_public, char *err,
                             size_t errlen);

/* [{"name", "public", "components", "created_at"}] sorted by name; NULL on
 * failure. The caller frees it with cJSON_Delete. */
struct cJSON *bbit_server_scope_list(const char *root, char *err, size_t errlen);

/* Adds a user with a password (>= 8 characters) and grants ("PATTERN=ROLE"). */
int bbit_server_user_add(const char *root, const char *name, const char *password,
                         const char *const *grants, size_t ngrants, char *err, size_t errlen);

/* Issues a token for user with one grant (pattern, role) and an optional
 * name (NULL: "token-<id>"). token_out gets the token (shown once: only its
 * SHA-256 is stored), *id_out its id, name_out its name. */
int bbit_server_token_create(const char *root, const char *user, const char *pattern,
                             const char *role, const char *name, char token_out[64],
                             int64_t *id_out, char name_out[128], char *err, size_t errlen);

/* Revokes token id. *already is set when it was revoked before. */
int bbit_server_token_revoke(const char *root, int64_t id, bool *already, char *err, size_t errlen);

/* [{"id", "user", "name", "grants": [{"scope", "role"}], "created_at",
 * "last_used_at", "revoked_at"}] by id; NULL on failure (cJSON_Delete it). */
struct cJSON *bbit_server_token_list(const char *root, char *err, size_t errlen);

#endif
