// countproxy: a TCP relay on 127.0.0.1 that counts the bytes going through it,
// so bench/run can measure what a client really sends over the wire.
//
//   countproxy TARGET_PORT STATS_FILE
//
// Listens on 127.0.0.1:<free port> (printed as "port N" on stdout), forwards
// every connection to 127.0.0.1:TARGET_PORT, and after each connection ends
// rewrites STATS_FILE (temp + rename) with one line:
//   up=<client-to-server bytes> down=<server-to-client bytes> connections=<n> active=<open>
// Counters are cumulative (the caller takes differences); SIGTERM/SIGINT end it. One thread per direction per connection, so a relay
// never deadlocks on full buffers whatever the protocol does.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_ullong bytes_up, bytes_down, connections;
static atomic_int active;
static const char *stats_path;
static int target_port;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

struct relay {
    int from, to;
    atomic_ullong *counter;
    struct pair *pair;
};

struct pair {
    atomic_int halves_left;
    int client, server;
    struct relay up, down;
};

static void write_stats(void) {
    char tmp[4096];
    pthread_mutex_lock(&stats_lock);
    snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "up=%llu down=%llu connections=%llu active=%d\n", (unsigned long long)bytes_up,
                (unsigned long long)bytes_down, (unsigned long long)connections, (int)active);
        if (fclose(f) == 0)
            rename(tmp, stats_path);
    }
    pthread_mutex_unlock(&stats_lock);
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

// Copies one direction until EOF or an error, then half-closes the other side.
static void *relay_run(void *arg) {
    struct relay *r = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(r->from, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        atomic_fetch_add(r->counter, (unsigned long long)n);
        if (write_all(r->to, buf, (size_t)n) < 0)
            break;
    }
    shutdown(r->to, SHUT_WR);
    shutdown(r->from, SHUT_RD);
    struct pair *p = r->pair;
    if (atomic_fetch_sub(&p->halves_left, 1) == 1) {
        close(p->client);
        close(p->server);
        free(p);
        atomic_fetch_sub(&active, 1);
        write_stats();
    }
    return NULL;
}

static int connect_target(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int start_pair(int client) {
    int server = connect_target();
    if (server < 0)
        return -1;
    struct pair *p = calloc(1, sizeof *p);
    if (!p) {
        close(server);
        return -1;
    }
    p->client = client;
    p->server = server;
    atomic_init(&p->halves_left, 2);
    p->up = (struct relay){client, server, &bytes_up, p};
    p->down = (struct relay){server, client, &bytes_down, p};
    atomic_fetch_add(&active, 1);
    atomic_fetch_add(&connections, 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    pthread_create(&t, &attr, relay_run, &p->up);
    pthread_create(&t, &attr, relay_run, &p->down);
    pthread_attr_destroy(&attr);
    return 0;
}

static int listen_loopback(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        perror("countproxy: listen");
        exit(1);
    }
    printf("port %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 3 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: countproxy TARGET_PORT STATS_FILE\n");
        return 2;
    }
    target_port = atoi(argv[1]);
    stats_path = argv[2];
    int listener = listen_loopback();
    write_stats();
    for (;;) {
        int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0)
            continue;
        int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (start_pair(client) < 0)
            close(client);
    }
}
