/* bbit.core.proc: child processes, and the poll() the job scheduler waits in.
 *
 *   h = core.proc.spawn{argv = {...} | shell = "cmd", cwd =, env = {K = V | false},
 *                       env_clear =, stdin =, max_output =, timeout =, kill_grace =}
 *
 * A process handle implements the waitable protocol of stdlib/bbit/jobs.lua
 * (poll_fds, step, cancel, kind = "proc"). Children are started with
 * posix_spawn (glibc: clone(CLONE_VFORK), so exec and chdir errors come back
 * as its return value, and nothing async-signal-unsafe runs in the child),
 * each in a new process group with the default signal mask and dispositions,
 * every other descriptor closed. stdout and stderr are read non-blockingly
 * into ring buffers that keep the last max_output bytes; stdin is written
 * non-blockingly from step() (an epoll fd watching the pipe for space is one
 * of the poll fds, so a slow reader wakes the scheduler); a pidfd makes the
 * exit wake it too, and a timerfd the deadlines. A timeout sends SIGTERM to
 * the group, then SIGKILL after kill_grace seconds. __gc/__close kill the
 * group and reap a running child.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bbit/luax.h"

extern char **environ;

#define PROC_MT "bbit.proc"
#define DEFAULT_MAX_OUTPUT (16u * 1024 * 1024)
#define DEFAULT_KILL_GRACE 2.0
#define READ_CHUNK 65536
#define READS_PER_STEP 16 /* at most 1 MiB per stream per step: no starving */

/* The last `max` bytes written (a linear buffer growing to max, then a ring). */
struct ring {
    char *data;
    size_t cap, start, len, max;
    int truncated;
};

struct proc {
    pid_t pid;
    int status, reaped, finished, lost;
    int out_fd, err_fd, in_fd, pidfd, epfd, timer_fd;
    const char *in_data; /* the stdin string, anchored in the userdata's user value */
    size_t in_len, in_off;
    struct ring out, err;
    double started, ended, deadline, grace, kill_at;
    int timed_out, kill_sent;
};

struct proc_handle {
    struct proc *p; /* NULL when closed */
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ---- ring buffer -------------------------------------------------------- */

static int ring_reserve(struct ring *r, size_t want)
{
    if (r->cap >= r->max || r->cap >= want)
        return 0;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < want)
        cap *= 2;
    if (cap > r->max)
        cap = r->max;
    char *d = realloc(r->data, cap); /* linear while cap < max: start == 0 */
    if (!d)
        return -1;
    r->data = d;
    r->cap = cap;
    return 0;
}

static int ring_append(struct ring *r, const char *s, size_t n)
{
    if (r->max == 0) {
        r->truncated |= n > 0;
        return 0;
    }
    if (ring_reserve(r, r->len + n) != 0)
        return -1;
    if (n >= r->cap) { /* only the tail of s survives */
        r->truncated |= r->len > 0 || n > r->cap;
        memcpy(r->data, s + (n - r->cap), r->cap);
        r->start = 0;
        r->len = r->cap;
        return 0;
    }
    while (n > 0) {
        size_t pos = (r->start + r->len) % r->cap;
        size_t chunk = r->cap - pos < n ? r->cap - pos : n;
        memcpy(r->data + pos, s, chunk);
        if (r->len + chunk > r->cap) {
            r->start = (r->start + (r->len + chunk - r->cap)) % r->cap;
            r->len = r->cap;
            r->truncated = 1;
        } else {
            r->len += chunk;
        }
        s += chunk;
        n -= chunk;
    }
    return 0;
}

static void ring_push(lua_State *L, const struct ring *r)
{
    if (r->len == 0) {
        lua_pushliteral(L, "");
    } else if (r->start + r->len <= r->cap) {
        lua_pushlstring(L, r->data + r->start, r->len);
    } else {
        size_t first = r->cap - r->start;
        lua_pushlstring(L, r->data + r->start, first);
        lua_pushlstring(L, r->data, r->len - first);
        lua_concat(L, 2);
    }
}

/* ---- process state ------------------------------------------------------ */

static void drain(int *fd, struct ring *r, int max_reads)
{
    char buf[READ_CHUNK];
    for (int i = 0; *fd >= 0 && i < max_reads; i++) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (ring_append(r, buf, (size_t)n) != 0)
                r->truncated = 1; /* out of memory: drop, keep draining */
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else {
            close_fd(fd); /* EOF or a read error */
        }
    }
}

static void close_stdin(struct proc *p)
{
    close_fd(&p->in_fd);
    close_fd(&p->epfd);
}

static void feed_stdin(struct proc *p)
{
    while (p->in_fd >= 0 && p->in_off < p->in_len) {
        size_t left = p->in_len - p->in_off;
        ssize_t n = write(p->in_fd, p->in_data + p->in_off, left < READ_CHUNK ? left : READ_CHUNK);
        if (n > 0)
            p->in_off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN)
            return;
        else
            break; /* EPIPE: the child does not read its stdin */
    }
    close_stdin(p);
}

/* The process groups of running children, so a SIGINT/SIGTERM handler can stop
 * them (they are in their own groups: a terminal's Ctrl-C reaches only bbit).
 * Written outside signal handlers only; the handler only reads. */
#define MAX_LIVE 1024
static volatile pid_t live_groups[MAX_LIVE];

static void live_add(pid_t pid)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live_groups[i] == 0) {
            live_groups[i] = pid;
            return;
        }
}

static void live_remove(pid_t pid)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live_groups[i] == pid)
            live_groups[i] = 0;
}

/* Async-signal-safe: sends `sig` to every running child's process group. */
void bbit_proc_signal_all(int sig)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        pid_t pid = live_groups[i];
        if (pid > 0)
            kill(-pid, sig);
    }
}

static void mark_reaped(struct proc *p, int status)
{
    live_remove(p->pid);
    p->reaped = 1;
    p->status = status;
    p->ended = bbit_monotonic();
    close_fd(&p->pidfd);
    close_stdin(p);
}

static void try_reap(struct proc *p)
{
    if (p->reaped)
        return;
    int status = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == p->pid) {
        mark_reaped(p, status);
    } else if (r < 0) { /* ECHILD: someone else reaped it (SIGCHLD ignored) */
        p->lost = 1;
        mark_reaped(p, 0);
    }
}

static void reap_blocking(struct proc *p)
{
    if (p->reaped)
        return;
    int status = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    p->lost = r != p->pid;
    mark_reaped(p, status);
}

/* Arms the timerfd (a poll fd) to expire at monotonic time `at`. */
static void arm_timer(struct proc *p, double at)
{
    if (p->timer_fd < 0)
        return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)at;
    its.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(p->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void check_deadline(struct proc *p)
{
    if (p->deadline <= 0)
        return;
    uint64_t expirations;
    if (p->timer_fd >= 0 && read(p->timer_fd, &expirations, sizeof expirations) < 0) {
        /* EAGAIN: not expired; the times below decide anyway */
    }
    double now = bbit_monotonic();
    if (!p->timed_out && now >= p->deadline - 1e-6) { /* 1e-6: rounding of the timer */
        p->timed_out = 1;
        killpg(p->pid, SIGTERM);
        killpg(p->pid, SIGCONT); /* a stopped process must see the TERM */
        p->kill_at = now + p->grace;
        arm_timer(p, p->kill_at);
    }
    if (p->timed_out && !p->kill_sent && now >= p->kill_at - 1e-6) {
        killpg(p->pid, SIGKILL);
        p->kill_sent = 1;
        close_fd(&p->timer_fd);
    }
}

static void finish(struct proc *p)
{
    if (p->timed_out && !p->kill_sent) { /* members that ignored TERM: no orphans */
        killpg(p->pid, SIGKILL);
        p->kill_sent = 1;
    }
    drain(&p->out_fd, &p->out, READS_PER_STEP);
    drain(&p->err_fd, &p->err, READS_PER_STEP);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_stdin(p);
    close_fd(&p->timer_fd);
    if (p->ended == 0)
        p->ended = bbit_monotonic();
    p->finished = 1;
}

/* Kills the group and reaps: used by cancel and by __gc/__close. */
static void terminate(struct proc *p)
{
    if (p->finished)
        return;
    if (p->pid > 0) {
        killpg(p->pid, SIGKILL);
        reap_blocking(p);
        p->kill_sent = 1;
    }
    finish(p);
}

static void proc_free(struct proc *p)
{
    terminate(p);
    free(p->out.data);
    free(p->err.data);
    free(p);
}

/* ---- spawning ----------------------------------------------------------- */

/* The string array of `n` entries at the top of the stack (Lua-owned memory). */
static const char **new_string_array(lua_State *L, size_t n)
{
    const char **a = lua_newuserdatauv(L, (n + 1) * sizeof *a, 0);
    a[n] = NULL;
    return a;
}

/* Pushes argv (a userdata array) built from opts.argv or opts.shell. */
static const char **build_argv(lua_State *L, int opts)
{
    int t = lua_getfield(L, opts, "argv");
    int s = lua_getfield(L, opts, "shell"); // [argv?, shell?]
    if ((t == LUA_TNIL) == (s == LUA_TNIL))
        luaL_error(L, "proc.spawn: give exactly one of argv (a table) or shell (a string)");
    if (s != LUA_TNIL) {
        size_t len;
        const char *cmd = s == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!cmd || strlen(cmd) != len)
            luaL_error(L, "proc.spawn: shell must be a string without NUL bytes");
        const char **a = new_string_array(L, 3); // [nil, shell, argv]
        a[0] = "/bin/sh";
        a[1] = "-c";
        a[2] = lua_tostring(L, -2);
        lua_replace(L, -3); // [argv, shell]  (the shell string stays anchored)
        return a;
    }
    lua_pop(L, 1); // [argvtable]
    luaL_argcheck(L, t == LUA_TTABLE, 1, "argv must be a table of strings");
    size_t n = lua_rawlen(L, -1);
    luaL_argcheck(L, n > 0, 1, "argv is empty");
    lua_createtable(L, (int)n, 0);           // [argvtable, anchor]
    const char **a = new_string_array(L, n); // [argvtable, anchor, argv]
    for (size_t i = 0; i < n; i++) {
        int type = lua_rawgeti(L, -3, (lua_Integer)(i + 1));
        size_t len = 0;
        const char *arg = type == LUA_TSTRING || type == LUA_TNUMBER ? lua_tolstring(L, -1, &len)
                                                                    : NULL;
        if (!arg || strlen(arg) != len)
            luaL_error(L, "proc.spawn: argv[%d] must be a string without NUL bytes", (int)(i + 1));
        a[i] = arg;
        lua_rawseti(L, -3, (lua_Integer)(i + 1)); /* anchored (numbers as their string) */
    }
    lua_replace(L, -3); // [argv, anchor]
    return a;
}

/* Is `key=...` an entry of the env table at `env`? */
static int env_overridden(lua_State *L, int env, const char *entry)
{
    const char *eq = strchr(entry, '=');
    if (!eq)
        return 0;
    lua_pushlstring(L, entry, (size_t)(eq - entry));
    int t = lua_rawget(L, env);
    lua_pop(L, 1);
    return t != LUA_TNIL;
}

/* Pushes envp (a userdata array, or nil for "inherit as is") and an anchor table. */
static const char **build_envp(lua_State *L, int opts)
{
    int clear = (lua_getfield(L, opts, "env_clear"), lua_toboolean(L, -1));
    lua_pop(L, 1);
    int t = lua_getfield(L, opts, "env"); // [env]
    if (t != LUA_TNIL && t != LUA_TTABLE)
        luaL_error(L, "proc.spawn: env must be a table");
    if (t == LUA_TNIL && !clear) {
        lua_pushnil(L); // [env, nil]
        return NULL;
    }
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    int env = lua_gettop(L);
    lua_newtable(L); // [env, strings]
    int strings = env + 1, n = 0;
    for (char **e = environ; !clear && *e; e++) {
        if (!env_overridden(L, env, *e)) {
            lua_pushstring(L, *e);
            lua_rawseti(L, strings, ++n);
        }
    }
    lua_pushnil(L);
    while (lua_next(L, env)) { // [env, strings, key, value]
        size_t klen, vlen;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        if (!k || klen == 0 || strlen(k) != klen || strchr(k, '='))
            luaL_error(L, "proc.spawn: env keys must be non-empty strings without '=' or NUL");
        if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            lua_pop(L, 1); /* false: unset */
            continue;
        }
        const char *v = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                            ? lua_tolstring(L, -1, &vlen)
                            : NULL;
        if (!v || strlen(v) != vlen)
            luaL_error(L, "proc.spawn: env.%s must be a string without NUL (or false to unset)", k);
        lua_pushfstring(L, "%s=%s", k, v);
        lua_rawseti(L, strings, ++n);
        lua_pop(L, 1);
    }
    const char **a = new_string_array(L, (size_t)n); // [env, strings, envp]
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, strings, i + 1);
        a[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    lua_remove(L, env); // [strings, envp]
    lua_insert(L, -2);  // [envp, strings]
    return a;
}

/* The PATH the child would search: its own env's, else ours, else the default. */
static const char *search_path(const char *const *envp)
{
    if (envp) {
        for (const char *const *e = envp; *e; e++)
            if (strncmp(*e, "PATH=", 5) == 0)
                return *e + 5;
        return "/usr/local/bin:/usr/bin:/bin";
    }
    const char *path = getenv("PATH");
    return path ? path : "/usr/local/bin:/usr/bin:/bin";
}

/* Pushes the file to execute for argv0 (PATH search when it has no '/'), or
 * returns NULL with errno set. */
static const char *resolve_program(lua_State *L, const char *argv0, const char *const *envp)
{
    if (strchr(argv0, '/')) {
        lua_pushstring(L, argv0);
        return lua_tostring(L, -1);
    }
    int err = ENOENT;
    for (const char *dir = search_path(envp); dir;) {
        const char *colon = strchr(dir, ':');
        size_t len = colon ? (size_t)(colon - dir) : strlen(dir);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        if (len)
            luaL_addlstring(&b, dir, len);
        else
            luaL_addchar(&b, '.');
        luaL_addchar(&b, '/');
        luaL_addstring(&b, argv0);
        luaL_pushresult(&b);
        const char *file = lua_tostring(L, -1);
        struct stat st;
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(file, X_OK) == 0)
                return file;
            err = EACCES;
        }
        lua_pop(L, 1);
        dir = colon ? colon + 1 : NULL;
    }
    errno = err;
    return NULL;
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct spawn_request {
    const char *file, *cwd;
    const char *const *argv, *const *envp;
    int want_stdin;
};

static int setup_spawn(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at,
                       const struct spawn_request *rq, const int in[2], const int out[2],
                       const int err[2])
{
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    int rc = 0;
    rc = rc ? rc : posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                    POSIX_SPAWN_SETSIGDEF);
    rc = rc ? rc : posix_spawnattr_setpgroup(at, 0);
    rc = rc ? rc : posix_spawnattr_setsigmask(at, &none);
    rc = rc ? rc : posix_spawnattr_setsigdefault(at, &all);
    if (rq->want_stdin)
        rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, in[0], 0);
    else
        rc = rc ? rc : posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, out[1], 1);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, err[1], 2);
    if (rq->cwd)
        rc = rc ? rc : posix_spawn_file_actions_addchdir_np(fa, rq->cwd);
    rc = rc ? rc : posix_spawn_file_actions_addclosefrom_np(fa, 3);
    return rc;
}

/* Starts the child; returns 0 or an errno. All pipe ends are O_CLOEXEC. */
static int start_child(struct proc *p, const struct spawn_request *rq)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if ((rq->want_stdin && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 ||
        pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&in[i]);
            close_fd(&out[i]);
            close_fd(&err[i]);
        }
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    int rc = setup_spawn(&fa, &at, rq, in, out, err);
    if (rc == 0)
        rc = posix_spawn(&p->pid, rq->file, &fa, &at, (char *const *)rq->argv,
                         (char *const *)(rq->envp ? rq->envp : (const char *const *)environ));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = err[0];
    if (rc != 0) {
        p->pid = 0;
        return rc;
    }
    p->started = bbit_monotonic();
    live_add(p->pid);
    set_nonblocking(p->out_fd);
    set_nonblocking(p->err_fd);
#ifdef SYS_pidfd_open
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0); /* -1 on old kernels: poll times out */
#endif
    return 0;
}

/* Makes the stdin pipe non-blocking and watched (an epoll fd readable when it has room). */
static void setup_stdin(struct proc *p)
{
    if (p->in_fd < 0)
        return;
    if (p->in_len == 0) {
        close_stdin(p);
        return;
    }
    set_nonblocking(p->in_fd);
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd >= 0) {
        struct epoll_event ev = {.events = EPOLLOUT};
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->in_fd, &ev) != 0)
            close_fd(&p->epfd);
    }
    feed_stdin(p);
}

static double opt_number(lua_State *L, int opts, const char *name, double dflt, double min)
{
    lua_getfield(L, opts, name);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "proc.spawn: %s must be a number", name);
        v = lua_tonumber(L, -1);
        if (!(v >= min))
            luaL_error(L, "proc.spawn: %s must be >= %f", name, min);
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, int opts, const char *name, size_t *len)
{
    int t = lua_getfield(L, opts, name); /* left on the stack: anchors the string */
    if (t == LUA_TNIL)
        return NULL;
    if (t != LUA_TSTRING)
        luaL_error(L, "proc.spawn: %s must be a string", name);
    return lua_tolstring(L, -1, len);
}

static struct proc *new_proc(void)
{
    struct proc *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out_fd = p->err_fd = p->in_fd = p->pidfd = p->epfd = p->timer_fd = -1;
    return p;
}

// h = core.proc.spawn{argv = {...} | shell = "...", cwd =, env =, env_clear =, stdin =,
//                     max_output =, timeout =, kill_grace =}
static int proc_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct spawn_request rq = {0};
    rq.argv = build_argv(L, 1);                         // [opts, argv, anchor]
    rq.envp = build_envp(L, 1);                         // [..., envp|nil, anchor]
    size_t in_len = 0, cwd_len = 0;
    const char *in_data = opt_string(L, 1, "stdin", &in_len); // [..., stdin]
    int stdin_index = lua_gettop(L);
    rq.cwd = opt_string(L, 1, "cwd", &cwd_len);
    if (rq.cwd && strlen(rq.cwd) != cwd_len)
        luaL_error(L, "proc.spawn: cwd contains a NUL byte");
    double max_output = opt_number(L, 1, "max_output", DEFAULT_MAX_OUTPUT, 0);
    double timeout = opt_number(L, 1, "timeout", 0, 0);
    double grace = opt_number(L, 1, "kill_grace", DEFAULT_KILL_GRACE, 0);
    rq.want_stdin = in_data != NULL;
    const char *argv0 = rq.argv[0];

    struct stat st;
    if (rq.cwd && stat(rq.cwd, &st) != 0)
        return bbit_fail(L, "proc.spawn: cwd %s: %s", rq.cwd, strerror(errno));
    if (rq.cwd && !S_ISDIR(st.st_mode))
        return bbit_fail(L, "proc.spawn: cwd %s: %s", rq.cwd, strerror(ENOTDIR));
    rq.file = resolve_program(L, argv0, rq.envp);
    if (!rq.file)
        return bbit_fail(L, "proc.spawn: %s: %s", argv0, strerror(errno));

    struct proc_handle *h = lua_newuserdatauv(L, sizeof *h, 1); // [..., file, h]
    h->p = NULL;
    luaL_setmetatable(L, PROC_MT);
    lua_pushvalue(L, stdin_index);
    lua_setiuservalue(L, -2, 1); /* anchors the stdin string while h lives */
    struct proc *p = new_proc();
    if (!p)
        return luaL_error(L, "proc.spawn: out of memory");
    h->p = p;
    p->in_data = in_data;
    p->in_len = in_len;
    p->out.max = p->err.max = (size_t)max_output;
    p->grace = grace;
    int rc = start_child(p, &rq);
    if (rc != 0) {
        h->p = NULL;
        proc_free(p);
        return bbit_fail(L, "proc.spawn: %s: %s", argv0, strerror(rc));
    }
    if (timeout > 0) {
        p->deadline = p->started + timeout;
        p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        arm_timer(p, p->deadline); /* without it (-1), the poll timeout bounds the delay */
    }
    setup_stdin(p);
    return 1;
}

/* ---- handle methods ----------------------------------------------------- */

static struct proc *check_proc(lua_State *L)
{
    return ((struct proc_handle *)bbit_check_open(L, 1, PROC_MT, "process"))->p;
}

// fds = h:poll_fds(): the descriptors whose readability means progress
static int proc_poll_fds(lua_State *L)
{
    struct proc *p = check_proc(L);
    int fds[] = {p->out_fd, p->err_fd, p->pidfd, p->epfd, p->timer_fd};
    lua_createtable(L, 5, 0);
    int n = 0;
    for (size_t i = 0; !p->finished && i < sizeof fds / sizeof *fds; i++) {
        if (fds[i] >= 0) {
            lua_pushinteger(L, fds[i]);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

// done = h:step(): progress without blocking; true once exited and drained
static int proc_step(lua_State *L)
{
    struct proc *p = check_proc(L);
    if (!p->finished) {
        feed_stdin(p);
        drain(&p->out_fd, &p->out, READS_PER_STEP);
        drain(&p->err_fd, &p->err, READS_PER_STEP);
        try_reap(p);
        if (!(p->reaped && p->out_fd < 0 && p->err_fd < 0))
            check_deadline(p);
        if (p->reaped && ((p->out_fd < 0 && p->err_fd < 0) || p->kill_sent))
            finish(p);
    }
    lua_pushboolean(L, p->finished);
    return 1;
}

// h:cancel(): kills the process group and reaps the child
static int proc_cancel(lua_State *L)
{
    terminate(check_proc(L));
    return 0;
}

// ok = h:signal(sig): sends a signal (number or name, "TERM" / "SIGTERM") to the group
static int proc_signal(lua_State *L)
{
    struct proc *p = check_proc(L);
    int sig = 0;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *name = lua_tostring(L, 2);
        if (strncmp(name, "SIG", 3) == 0)
            name += 3;
        for (int s = 1; s < NSIG && !sig; s++) {
            const char *abbrev = sigabbrev_np(s);
            if (abbrev && strcmp(abbrev, name) == 0)
                sig = s;
        }
        luaL_argcheck(L, sig != 0, 2, "unknown signal name");
    } else {
        sig = (int)luaL_checkinteger(L, 2);
        luaL_argcheck(L, sig > 0 && sig < NSIG, 2, "invalid signal number");
    }
    if (p->finished || (p->reaped && p->out_fd < 0 && p->err_fd < 0))
        return bbit_fail(L, "proc.signal: %d: process already exited", (int)p->pid);
    if (killpg(p->pid, sig) != 0)
        return bbit_fail_errno(L, "proc.signal");
    lua_pushboolean(L, 1);
    return 1;
}

// pid = h:pid()
static int proc_pid(lua_State *L)
{
    lua_pushinteger(L, check_proc(L)->pid);
    return 1;
}

// bool = h:finished()
static int proc_finished(lua_State *L)
{
    lua_pushboolean(L, check_proc(L)->finished);
    return 1;
}

// r = h:result(): {code=, signal=, signal_name=, stdout=, stderr=, timed_out=, duration=, truncated=}
static int proc_result(lua_State *L)
{
    struct proc *p = check_proc(L);
    if (!p->finished)
        return luaL_error(L, "proc.result: process %d is still running (step until done)",
                          (int)p->pid);
    lua_createtable(L, 0, 8);
    if (!p->lost && WIFEXITED(p->status)) {
        lua_pushinteger(L, WEXITSTATUS(p->status));
        lua_setfield(L, -2, "code");
    } else if (!p->lost && WIFSIGNALED(p->status)) {
        int sig = WTERMSIG(p->status);
        lua_pushinteger(L, sig);
        lua_setfield(L, -2, "signal");
        const char *abbrev = sigabbrev_np(sig);
        lua_pushfstring(L, "SIG%s", abbrev ? abbrev : "?");
        lua_setfield(L, -2, "signal_name");
    }
    ring_push(L, &p->out);
    lua_setfield(L, -2, "stdout");
    ring_push(L, &p->err);
    lua_setfield(L, -2, "stderr");
    lua_pushboolean(L, p->timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushboolean(L, p->out.truncated || p->err.truncated);
    lua_setfield(L, -2, "truncated");
    lua_pushnumber(L, p->ended - p->started);
    lua_setfield(L, -2, "duration");
    lua_pushinteger(L, p->pid);
    lua_setfield(L, -2, "pid");
    return 1;
}

// h:close() / __gc / __close: kills and reaps a running child, frees the buffers
static int proc_close(lua_State *L)
{
    struct proc_handle *h = luaL_checkudata(L, 1, PROC_MT);
    struct proc *p = h->p;
    h->p = NULL;
    if (p)
        proc_free(p);
    return 0;
}

// s = tostring(h): "process (PID)" or "process (closed)"
static int proc_tostring(lua_State *L)
{
    struct proc_handle *h = luaL_checkudata(L, 1, PROC_MT);
    if (h->p)
        lua_pushfstring(L, "process (%d)", (int)h->p->pid);
    else
        lua_pushliteral(L, "process (closed)");
    return 1;
}

/* ---- module functions --------------------------------------------------- */

// n = core.proc.wait(fds, timeout_ms): waits until one fd is readable or the timeout
static int proc_wait(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int timeout = (int)luaL_checkinteger(L, 2);
    size_t n = lua_rawlen(L, 1);
    struct pollfd *fds = lua_newuserdatauv(L, (n ? n : 1) * sizeof *fds, 0);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)(i + 1));
        fds[i].fd = (int)luaL_checkinteger(L, -1);
        fds[i].events = POLLIN;
        fds[i].revents = 0;
        lua_pop(L, 1);
    }
    int r = poll(fds, (nfds_t)n, timeout);
    lua_pushinteger(L, r < 0 && errno == EINTR ? 0 : r);
    return 1;
}

// n = core.proc.cpu_count()
static int proc_cpu_count(lua_State *L)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

int luaopen_bbit_core_proc(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"poll_fds", proc_poll_fds}, {"step", proc_step},     {"cancel", proc_cancel},
        {"signal", proc_signal},     {"pid", proc_pid},       {"finished", proc_finished},
        {"result", proc_result},     {"close", proc_close},   {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"spawn", proc_spawn},
        {"wait", proc_wait},
        {"cpu_count", proc_cpu_count},
        {NULL, NULL},
    };
    bbit_new_handle_type(L, PROC_MT, methods, proc_close);
    luaL_getmetatable(L, PROC_MT); // [mt]
    lua_pushcfunction(L, proc_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_getfield(L, -1, "__index"); // [mt, methods]
    lua_pushliteral(L, "proc");
    lua_setfield(L, -2, "kind");
    lua_pop(L, 2);
    luaL_newlib(L, fns);
    return 1;
}
