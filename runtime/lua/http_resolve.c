/* Host names to addresses for the plain HTTP transport (http_plain.c).
 *
 * A numeric host is converted at once; a name is looked up with getaddrinfo
 * on a thread of its own, which writes a byte to a pipe when it is done, so
 * the scheduler waits on the pipe like on any socket and a connect or total
 * timeout also covers a slow lookup (as libcurl's threaded resolver does).
 * Answers are kept for the rest of the process, at most CACHE_SIZE of them.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_transfer.h"

enum { CACHE_SIZE = 8 };

struct http_resolver {
    atomic_int refs; // the transfer's and, while it runs, the thread's
    int pipe[2];
    char host[HTTP_HOST_MAX];
    int port;
    struct http_address addrs[HTTP_MAX_ADDRS];
    int n, error; // error: getaddrinfo's
};

static struct {
    char host[HTTP_HOST_MAX];
    int port;
    struct http_address addrs[HTTP_MAX_ADDRS];
    int n;
} cache[CACHE_SIZE];
static int cache_n, cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int numeric(const char *host, int port, struct http_address *a)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        a->len = sizeof *v4;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *v6;
        return 1;
    }
    return 0;
}

static int cache_get(struct http_resolver *r)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < cache_n; i++) {
        if (cache[i].port == r->port && strcasecmp(cache[i].host, r->host) == 0) {
            memcpy(r->addrs, cache[i].addrs, sizeof r->addrs);
            r->n = cache[i].n;
            break;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return r->n > 0;
}

static void cache_put(const struct http_resolver *r)
{
    pthread_mutex_lock(&cache_lock);
    int i = cache_n < CACHE_SIZE ? cache_n++ : cache_next++ % CACHE_SIZE;
    snprintf(cache[i].host, sizeof cache[i].host, "%s", r->host);
    cache[i].port = r->port;
    memcpy(cache[i].addrs, r->addrs, sizeof r->addrs);
    cache[i].n = r->n;
    pthread_mutex_unlock(&cache_lock);
}

static void release(struct http_resolver *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->pipe[0] >= 0)
        close(r->pipe[0]);
    if (r->pipe[1] >= 0)
        close(r->pipe[1]);
    free(r);
}

static void *lookup(void *arg)
{
    struct http_resolver *r = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", r->port);
    r->error = getaddrinfo(r->host, port, &hints, &res);
    for (struct addrinfo *ai = res; ai && r->n < HTTP_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof r->addrs[0].sa)
            continue;
        memcpy(&r->addrs[r->n].sa, ai->ai_addr, ai->ai_addrlen);
        r->addrs[r->n].len = ai->ai_addrlen;
        r->n++;
    }
    if (res)
        freeaddrinfo(res);
    if (r->error == 0 && r->n == 0)
        r->error = EAI_NONAME;
    if (r->error == 0)
        cache_put(r);
    (void)!write(r->pipe[1], "", 1);
    release(r);
    return NULL;
}

struct http_resolver *http_resolve_start(const char *host, int port)
{
    struct http_resolver *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->pipe[0] = r->pipe[1] = -1;
    snprintf(r->host, sizeof r->host, "%s", host);
    r->port = port;
    if (numeric(host, port, &r->addrs[0])) {
        r->n = 1;
        return r;
    }
    if (cache_get(r))
        return r;
    pthread_attr_t attr;
    pthread_t tid;
    atomic_store(&r->refs, 2);
    int ok = pipe2(r->pipe, O_CLOEXEC | O_NONBLOCK) == 0 && pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        ok = pthread_create(&tid, &attr, lookup, r) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!ok) {
        atomic_store(&r->refs, 1);
        release(r);
        return NULL;
    }
    return r;
}

int http_resolve_fd(const struct http_resolver *r)
{
    return r->pipe[0];
}

int http_resolve_result(struct http_resolver *r, struct http_address *addrs, int *n)
{
    if (r->pipe[0] >= 0) {
        char byte;
        if (read(r->pipe[0], &byte, 1) != 1)
            return 0; // still looking up
        close(r->pipe[0]);
        r->pipe[0] = -1; // read once: the thread has finished with r->addrs
    }
    if (r->n == 0)
        return -1;
    memcpy(addrs, r->addrs, sizeof r->addrs);
    *n = r->n;
    return 1;
}

void http_resolve_free(struct http_resolver *r)
{
    if (r)
        release(r);
}
