/* bbit.core.server: the scope server (runtime/server/) for the `bbit serve`
 * and `bbit server ...` commands. Every function takes the server root first
 * (serve takes an options table); failures return nil, "<message naming the
 * root/scope/user/token>". Wrong argument types raise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bbit/luax.h"
#include "bbit/server.h"

#define ERR_SIZE 1024

/* Pushes a cJSON value as a Lua value (null -> nil). */
static void push_json(lua_State *L, const cJSON *j)
{
    if (cJSON_IsObject(j)) {
        lua_newtable(L);
        const cJSON *c;
        cJSON_ArrayForEach(c, j)
        {
            push_json(L, c);
            lua_setfield(L, -2, c->string);
        }
    } else if (cJSON_IsArray(j)) {
        lua_newtable(L);
        lua_Integer i = 1;
        const cJSON *c;
        cJSON_ArrayForEach(c, j)
        {
            push_json(L, c);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == (double)(lua_Integer)d)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else {
        lua_pushnil(L);
    }
}

/* Pushes list (consumed) as a Lua table, or nil, err. */
static int push_list(lua_State *L, cJSON *list, const char *err)
{
    if (!list)
        return bbit_fail(L, "%s", err);
    luaL_checkstack(L, 40, "JSON nesting");
    push_json(L, list);
    cJSON_Delete(list);
    return 1;
}

// state = core.server.init(root): "created" or "exists"
static int server_init(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    char err[ERR_SIZE];
    bool already = false;
    if (bbit_server_init(root, &already, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushstring(L, already ? "exists" : "created");
    return 1;
}

// true = core.server.scope_create(root, name, public)
static int server_scope_create(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    bool is_public = lua_toboolean(L, 3);
    char err[ERR_SIZE];
    if (bbit_server_scope_create(root, name, is_public, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

// scopes = core.server.scope_list(root): {{name, public, components, created_at}}
static int server_scope_list(lua_State *L)
{
    char err[ERR_SIZE];
    cJSON *list = bbit_server_scope_list(luaL_checkstring(L, 1), err, sizeof err);
    return push_list(L, list, err);
}

// true = core.server.user_add(root, name, password, {"PATTERN=ROLE", ...})
static int server_user_add(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *password = luaL_checkstring(L, 3);
    size_t n = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        n = lua_rawlen(L, 4);
    }
    const char **grants = lua_newuserdatauv(L, sizeof *grants * (n ? n : 1), 0);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 4, (lua_Integer)i + 1);
        grants[i] = lua_tostring(L, -1); // kept alive by the grants table
        luaL_argcheck(L, grants[i] != NULL, 4, "grants must be strings");
        lua_pop(L, 1);
    }
    char err[ERR_SIZE];
    if (bbit_server_user_add(root, name, password, grants, n, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

// token, id, name = core.server.token_create(root, user, pattern, role, name?)
static int server_token_create(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    const char *user = luaL_checkstring(L, 2);
    const char *pattern = luaL_checkstring(L, 3);
    const char *role = luaL_checkstring(L, 4);
    const char *name = luaL_optstring(L, 5, NULL);
    char token[64], name_out[128], err[ERR_SIZE];
    int64_t id = 0;
    if (bbit_server_token_create(root, user, pattern, role, name, token, &id, name_out, err,
                                 sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushstring(L, token);
    lua_pushinteger(L, (lua_Integer)id);
    lua_pushstring(L, name_out);
    return 3;
}

// true, already_revoked = core.server.token_revoke(root, id)
static int server_token_revoke(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    char err[ERR_SIZE];
    bool already = false;
    if (bbit_server_token_revoke(root, (int64_t)id, &already, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    lua_pushboolean(L, already);
    return 2;
}

// tokens = core.server.token_list(root): {{id, user, name, grants, created_at, ...}}
static int server_token_list(lua_State *L)
{
    char err[ERR_SIZE];
    cJSON *list = bbit_server_token_list(luaL_checkstring(L, 1), err, sizeof err);
    return push_list(L, list, err);
}

static const char *opt_field_string(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1); // the options table keeps the string alive
    return s;
}

static lua_Integer opt_field_integer(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    lua_Integer n = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, n >= 0, 1, "sizes and counts must not be negative");
    return n;
}

// true = core.server.serve{root=, listen=, public_listen=, max_object_size=, max_connections=,
// version=} (blocks until SIGINT/SIGTERM)
static int server_serve(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct bbit_server_options o = {0};
    o.root = opt_field_string(L, "root");
    luaL_argcheck(L, o.root != NULL, 1, "root is required");
    o.listen = opt_field_string(L, "listen");
    o.version = opt_field_string(L, "version");
    lua_getfield(L, 1, "public_listen");
    o.public_listen = lua_toboolean(L, -1);
    lua_pop(L, 1);
    o.max_object_size = (uint64_t)opt_field_integer(L, "max_object_size");
    o.max_connections = (unsigned)opt_field_integer(L, "max_connections");
    char err[ERR_SIZE];
    if (bbit_server_serve(&o, err, sizeof err) != 0)
        return bbit_fail(L, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

// password = core.server.read_password(prompt): read from the terminal without echo
static int server_read_password(lua_State *L)
{
    const char *prompt = luaL_checkstring(L, 1);
    if (!isatty(STDIN_FILENO))
        return bbit_fail(L, "server.read_password: stdin is not a terminal");
    struct termios old, quiet;
    if (tcgetattr(STDIN_FILENO, &old) != 0)
        return bbit_fail_errno(L, "server.read_password: tcgetattr");
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
        return bbit_fail_errno(L, "server.read_password: tcsetattr");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (n < 0) {
        free(line);
        return bbit_fail(L, "server.read_password: no password entered");
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    lua_pushlstring(L, line, (size_t)n);
    memset(line, 0, cap);
    free(line);
    return 1;
}

int luaopen_bbit_core_server(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"init", server_init},
        {"scope_create", server_scope_create},
        {"scope_list", server_scope_list},
        {"user_add", server_user_add},
        {"token_create", server_token_create},
        {"token_revoke", server_token_revoke},
        {"token_list", server_token_list},
        {"serve", server_serve},
        {"read_password", server_read_password},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
