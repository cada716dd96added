/* One HTTP transfer of bbit.core.http, shared by its two transports:
 * libcurl (http.c: https, proxies, redirects) and the plain
 * HTTP/1.1 transport (http_plain.c, http_resolve.c: http:// without a
 * proxy), which spares a command the ~15 ms of loading libcurl.
 */
#ifndef BBIT_HTTP_TRANSFER_H
#define BBIT_HTTP_TRANSFER_H

#include <stdio.h>

#include "bbit/lazylibs.h" /* curl types only: no libcurl function is called here */

#include "bbit/luax.h"

enum state { RUNNING, DONE, CANCELLED };

/* A growable byte buffer. */
struct buffer {
    char *data;
    size_t len, cap;
};

struct plain; // http_plain.c

typedef struct transfer {
    void *open; // first field: the transfer itself while open, NULL once closed
    CURL *easy; // the libcurl transport (NULL for plain)
    struct plain *plain;
    enum state state;
    int in_multi;
    char method[32];
    char *url;
    char **headers; // "Name: value" lines given by the caller
    size_t n_headers;
    // request body: from memory or from a file
    char *body;
    size_t body_len, body_pos;
    FILE *upload;
    // response
    struct buffer data;
    struct buffer header_lines; // of the last response (status line first)
    FILE *out;
    char *out_path, *tmp_path;
    curl_off_t max_size, received;
    // progress callback
    int progress_ref;
    curl_off_t last_progress[4];
    // outcome
    long status;
    char *abort_msg; // set by a callback that aborted the transfer
    char *error;     // the final error message (NULL on success)
    const char *error_kind;
    long retry_after; // seconds, from Retry-After
    double seconds;   // the transfer's duration
    char *effective_url; // after redirects (NULL: url)
    double timeout, connect_timeout;
    long low_speed_limit, low_speed_time;
    long follow_redirects; // -1: off, else at most this many
    // libcurl's part
    CURLcode code;
    struct curl_slist *curl_headers;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

/* ---- http.c, for both transports ---- */
int buffer_add(struct buffer *b, const char *s, size_t n);
void buffer_free(struct buffer *b);
char *dup_printf(const char *fmt, ...);
void set_abort(transfer *t, char *msg);
/* A response header line (or the status line) as received; a status line starts a new response. */
int transfer_header(transfer *t, const char *line, size_t n);
/* Body bytes of the response; -1 aborted the transfer (abort_msg says why). */
int transfer_body(transfer *t, const char *p, size_t n);
/* Calls the progress callback if a value changed; nonzero: abort. */
int transfer_progress(lua_State *L, transfer *t, curl_off_t dlnow, curl_off_t dltotal,
                      curl_off_t ulnow, curl_off_t ultotal);
/* Sets the final error "METHOD URL: reason" (reason printf-style) and its kind. */
void transfer_fail(transfer *t, const char *kind, const char *fmt, ...);
/* Marks t finished: closes the upload, moves output_file into place on success. */
void transfer_finish(transfer *t);
/* Reads the request body (memory or file) at the current position; -1 on a read error. */
long transfer_read_body(transfer *t, char *buf, size_t n);
/* Restarts the request body from its first byte (a retried connection); -1 on error. */
int transfer_rewind_body(transfer *t);

/* ---- http_resolve.c ---- */
#include <sys/socket.h>

enum { HTTP_HOST_MAX = 256, HTTP_MAX_ADDRS = 8 };

struct http_address {
    struct sockaddr_storage sa;
    socklen_t len;
};

struct http_resolver;
/* Starts finding host's addresses (numeric and known hosts are answered at
 * once); NULL when out of memory or threads. */
struct http_resolver *http_resolve_start(const char *host, int port);
/* The descriptor that becomes readable when the answer is there (-1: it is). */
int http_resolve_fd(const struct http_resolver *r);
/* 1 with the addresses (at most HTTP_MAX_ADDRS), 0 not yet, -1 the host is unknown. */
int http_resolve_result(struct http_resolver *r, struct http_address *addrs, int *n);
void http_resolve_free(struct http_resolver *r);

/* ---- http_plain.c ---- */
/* Would the plain transport carry a request to url (not BBIT_HTTP=curl, no proxy)? */
int plain_accepts(const char *url);
/* Prepares t for the plain transport if it can carry it: 1 taken, 0 not (libcurl's then),
 * -1 out of memory. Nothing is sent before the first step. */
int plain_start(transfer *t, int has_body);
/* Makes progress without blocking; finishes t (transfer_finish) when it ends. */
void plain_step(lua_State *L, transfer *t);
/* The descriptor to wait on and how: *read_fd / *write_fd are -1 when not waited on. */
void plain_poll(const transfer *t, int *read_fd, int *write_fd);
/* Stops t and frees its transport (the connection is closed unless idle and reusable). */
void plain_close(transfer *t);

#endif
