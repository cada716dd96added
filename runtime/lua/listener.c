/* bbit.core.listener: a tiny blocking HTTP listener on 127.0.0.1, for the
 * browser sign-in callback of `bbit login` (SPEC §6). It accepts one
 * connection at a time, reads one bounded request, hands the method, path and
 * query to Lua, and writes the response Lua gives. Not a general server. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bbit/luax.h"

#define LISTENER "bbit.listener"
#define MAX_REQUEST 8192

typedef struct {
    int fd;      /* listening socket; -1 when closed */
    int client;  /* the connection awaiting a response, or -1 */
} listener;

static int listener_close(lua_State *L)
{
    listener *l = luaL_checkudata(L, 1, LISTENER);
    if (l->client >= 0) {
        close(l->client);
        l->client = -1;
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    return 0;
}

static listener *check_open(lua_State *L)
{
    listener *l = luaL_checkudata(L, 1, LISTENER);
    if (l->fd < 0)
        luaL_error(L, "attempt to use a closed listener");
    return l;
}

// l = core.listener.open(port): listens on 127.0.0.1:port (0 = any free port)
static int listener_open(lua_State *L)
{
    lua_Integer port = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
    listener *l = lua_newuserdatauv(L, sizeof *l, 0);
    l->fd = -1;
    l->client = -1;
    luaL_setmetatable(L, LISTENER);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bbit_fail_errno(L, "listener.open: socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 8) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return bbit_fail_errno(L, lua_pushfstring(L, "listener.open: 127.0.0.1:%d", (int)port));
    }
    l->fd = fd;
    return 1;
}

// port = l:port()
static int listener_port(lua_State *L)
{
    listener *l = check_open(L);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(l->fd, (struct sockaddr *)&addr, &len) != 0)
        return bbit_fail_errno(L, "listener.port");
    lua_pushinteger(L, ntohs(addr.sin_port));
    return 1;
}

/* Reads until the end of the request head, within the deadline. */
static int read_head(int fd, char *buf, size_t cap, double deadline)
{
    size_t n = 0;
    while (n < cap - 1) {
        int left = (int)((deadline - bbit_monotonic()) * 1000);
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            return -1;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (int)n;
    }
    return -1;
}

// method, target = l:accept(timeout_s): the next request's method and target
// ("/callback?state=..."), or nil, "timeout" when none came in time
static int listener_accept(lua_State *L)
{
    listener *l = check_open(L);
    double timeout = luaL_checknumber(L, 2);
    double deadline = bbit_monotonic() + timeout;
    if (l->client >= 0) {
        close(l->client);
        l->client = -1;
    }
    char buf[MAX_REQUEST];
    for (;;) {
        int left = (int)((deadline - bbit_monotonic()) * 1000);
        if (left <= 0)
            return bbit_fail(L, "timeout");
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno != EINTR)
            return bbit_fail_errno(L, "listener.accept: poll");
        if (r <= 0)
            continue;
        int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        /* a slow or silent client must not hold the listener: 5 s per request */
        double soon = bbit_monotonic() + 5.0;
        double request_deadline = soon < deadline ? soon : deadline;
        if (read_head(c, buf, sizeof buf, request_deadline) < 0) {
            close(c);
            continue;
        }
        char method[16], target[4096];
        if (sscanf(buf, "%15s %4095s", method, target) != 2) {
            close(c);
            continue;
        }
        l->client = c;
        lua_pushstring(L, method);
        lua_pushstring(L, target);
        return 2;
    }
}

// l:respond(status, content_type, body): answers the accepted request
static int listener_respond(lua_State *L)
{
    listener *l = check_open(L);
    int status = (int)luaL_checkinteger(L, 2);
    const char *type = luaL_checkstring(L, 3);
    size_t len;
    const char *body = luaL_checklstring(L, 4, &len);
    if (l->client < 0)
        return luaL_error(L, "listener.respond: no request to answer");
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Error", type, len);
    ssize_t w = write(l->client, head, (size_t)n);
    size_t off = 0;
    while (w >= 0 && off < len) {
        w = write(l->client, body + off, len - off);
        if (w > 0)
            off += (size_t)w;
    }
    close(l->client);
    l->client = -1;
    lua_pushboolean(L, w >= 0);
    return 1;
}

int luaopen_bbit_core_listener(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"port", listener_port},
        {"accept", listener_accept},
        {"respond", listener_respond},
        {"close", listener_close},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"open", listener_open},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, LISTENER, methods, listener_close);
    luaL_newlib(L, fns);
    return 1;
}
