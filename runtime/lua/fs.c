/* bbit.core.fs: files and directories. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbit/luax.h"

// path = core.fs.cwd()
static int fs_cwd(lua_State *L)
{
    char *dir = getcwd(NULL, 0);
    if (!dir)
        return bbit_fail_errno(L, "fs.cwd");
    lua_pushstring(L, dir);
    free(dir);
    return 1;
}

// true = core.fs.chdir(path)
static int fs_chdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (chdir(path) != 0)
        return bbit_fail_errno(L, lua_pushfstring(L, "fs.chdir: %s", path));
    lua_pushboolean(L, 1);
    return 1;
}

static void walk_dir(lua_State *L, const char *root, const char *rel, int *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk_dir(L, root, sub, n);
        else if (S_ISREG(st.st_mode)) {
            lua_pushstring(L, sub);
            lua_rawseti(L, -2, ++*n);
        }
    }
    closedir(d);
}

// paths = core.fs.walk(root): regular files below root, relative (unsorted); nil, err if root is missing
static int fs_walk(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(root, &st) != 0)
        return bbit_fail_errno(L, lua_pushfstring(L, "fs.walk: %s", root));
    lua_newtable(L);
    int n = 0;
    walk_dir(L, root, "", &n);
    return 1;
}

int luaopen_bbit_core_fs(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"cwd", fs_cwd},
        {"chdir", fs_chdir},
        {"walk", fs_walk},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
