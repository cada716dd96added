/* Object packs: many objects in one upload, so an export of thousands of
 * objects costs one request per pack instead of one per object.
 *
 *   POST /api/v1/scopes/{scope}/objects/pack      (write permission)
 *   body: repeated  "<64 hex id> <size>\n" <size bytes: the object as stored, one zstd frame>
 *
 * Each object is verified while it streams in (the store writer decompresses
 * and hashes it; the id must match). Objects the scope already has are
 * skipped. The new ones go into one store pack (bbit/store.h: a pack file
 * when there are many, loose objects when few), installed and synced when
 * the body ends, also when it ends early: a pack cut off midway keeps its
 * complete, verified objects. Answers 200 {"stored": n, "existing": m}, or an
 * error naming the first bad object (nothing after it is stored). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbit/store.h"
#include "internal.h"

#define HEADER_MAX 96 /* "<64 hex> <up to 20 digits>\n" */

struct srv_pack {
    char header[HEADER_MAX + 1];
    size_t header_len;
    bool in_object;
    uint64_t remaining;
    char id[BBIT_STORE_ID_LEN + 1];
    bbit_store_writer *writer; /* NULL while skipping an existing object */
    bool packing;              /* the store's pack is open */
    uint64_t stored, existing;
    /* the first failure: answered when the body is complete */
    bool failed;
    unsigned status;
    char code[32];
    char message[600];
};

static void pack_fail(struct srv_pack *p, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void pack_fail(struct srv_pack *p, unsigned status, const char *code, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->status = status;
    snprintf(p->code, sizeof p->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    bbit_store_writer_abort(p->writer);
    p->writer = NULL;
}

int srv_pack_begin(struct srv_request *r)
{
    r->pack = calloc(1, sizeof *r->pack);
    if (!r->pack) {
        srv_send_internal(r, "out of memory");
        return -1;
    }
    /* objects of a pack are flushed together at the end (syncfs) */
    char dir[4200], err[BBIT_STORE_ERR_SIZE];
    if (srv_scope_dir(r->srv->root, r->params[0], dir, sizeof dir) != 0) {
        srv_send_internal(r, "scope directory path too long");
        return -1;
    }
    r->store = bbit_store_open(dir, BBIT_STORE_CREATE, err, sizeof err);
    if (!r->store || bbit_store_pack_begin(r->store, err, sizeof err) != 0) {
        srv_send_internal(r, err);
        return -1;
    }
    r->pack->packing = true;
    return 0;
}

/* Parses a complete header line; starts the object. */
static void start_object(struct srv_request *r, struct srv_pack *p)
{
    char *space = memchr(p->header, ' ', p->header_len);
    p->header[p->header_len - 1] = '\0'; /* the newline */
    if (!space || space - p->header != BBIT_STORE_ID_LEN) {
        pack_fail(p, 400, "bad_request", "pack: malformed object header '%.80s'", p->header);
        return;
    }
    *space = '\0';
    char *end;
    errno = 0;
    unsigned long long size = strtoull(space + 1, &end, 10);
    if (!bbit_store_is_id(p->header) || *end || end == space + 1 || errno) {
        pack_fail(p, 400, "bad_request", "pack: malformed object header '%.80s %.20s'", p->header,
                  space + 1);
        return;
    }
    memcpy(p->id, p->header, sizeof p->id);
    if (size > r->srv->max_object_size) {
        pack_fail(p, 413, "too_large", "object %s on scope %s: %llu bytes exceeds the limit of %llu",
                  p->id, r->params[0], size, (unsigned long long)r->srv->max_object_size);
        return;
    }
    p->in_object = true;
    p->remaining = size;
    char err[BBIT_STORE_ERR_SIZE];
    int has = bbit_store_has(r->store, p->id, err, sizeof err);
    if (has < 0) {
        pack_fail(p, 500, "internal", "%s", err);
        return;
    }
    if (has == 1) {
        p->existing++;
        return; /* its bytes are skipped */
    }
    p->writer = bbit_store_writer_begin_sized(r->store, BBIT_STORE_COMPRESSED, p->id,
                                              r->srv->max_object_size, size, err, sizeof err);
    if (!p->writer)
        pack_fail(p, 500, "internal", "%s", err);
}

static void finish_object(struct srv_request *r, struct srv_pack *p)
{
    p->in_object = false;
    p->header_len = 0;
    if (!p->writer)
        return;
    char got[BBIT_STORE_ID_LEN + 1], err[BBIT_STORE_ERR_SIZE];
    bbit_store_writer *w = p->writer;
    p->writer = NULL;
    if (bbit_store_writer_commit(w, got, err, sizeof err) != 0) {
        if (strstr(err, "hash mismatch"))
            pack_fail(p, 400, "hash_mismatch", "object %s on scope %s: %s", p->id, r->params[0], err);
        else if (strstr(err, "exceeds the size limit"))
            pack_fail(p, 413, "too_large", "object %s on scope %s: %s", p->id, r->params[0], err);
        else if (strstr(err, "zstd frame"))
            pack_fail(p, 400, "corrupt_object", "object %s on scope %s is not one valid zstd frame: %s",
                      p->id, r->params[0], err);
        else /* the server's own trouble (disk full, out of memory) */
            pack_fail(p, 500, "internal", "object %s on scope %s: %s", p->id, r->params[0], err);
        return;
    }
    p->stored++;
    srv_fault_point("server:during-upload");
}

void srv_pack_receive(struct srv_request *r, const char *data, size_t len)
{
    struct srv_pack *p = r->pack;
    while (len > 0 && !p->failed) {
        if (!p->in_object) {
            const char *nl = memchr(data, '\n', len);
            size_t take = nl ? (size_t)(nl - data) + 1 : len;
            if (p->header_len + take > HEADER_MAX) {
                pack_fail(p, 400, "bad_request", "pack: object header longer than %d bytes", HEADER_MAX);
                return;
            }
            memcpy(p->header + p->header_len, data, take);
            p->header_len += take;
            data += take;
            len -= take;
            if (nl) {
                start_object(r, p);
                if (!p->failed && p->remaining == 0)
                    finish_object(r, p);
            }
            continue;
        }
        size_t take = len < p->remaining ? len : (size_t)p->remaining;
        if (p->writer) {
            char err[BBIT_STORE_ERR_SIZE];
            if (bbit_store_writer_write(p->writer, data, take, err, sizeof err) != 0) {
                if (strstr(err, "exceeds the size limit"))
                    pack_fail(p, 413, "too_large", "object %s on scope %s: %s", p->id, r->params[0], err);
                else if (strstr(err, "zstd frame"))
                    pack_fail(p, 400, "corrupt_object", "object %s on scope %s is not one valid zstd frame: %s",
                              p->id, r->params[0], err);
                else /* the server's own trouble (disk full, out of memory) */
                    pack_fail(p, 500, "internal", "object %s on scope %s: %s", p->id, r->params[0], err);
                return;
            }
        }
        data += take;
        len -= take;
        p->remaining -= take;
        if (p->remaining == 0)
            finish_object(r, p);
    }
}

/* Installs (and syncs) the objects received so far. */
static int install(struct srv_request *r, char *err, size_t errlen)
{
    struct srv_pack *p = r->pack;
    if (!p->packing)
        return 0;
    p->packing = false;
    bbit_store_writer_abort(p->writer); /* an object cut off midway */
    p->writer = NULL;
    return bbit_store_pack_commit(r->store, true, NULL, err, errlen);
}

int api_objects_pack(struct srv_request *r)
{
    struct srv_pack *p = r->pack;
    if (!p->failed && (p->in_object || p->header_len > 0))
        pack_fail(p, 400, "bad_request", "pack: the body ends inside object %s",
                  p->in_object ? p->id : "(header)");
    char err[BBIT_STORE_ERR_SIZE];
    if (install(r, err, sizeof err) != 0)
        return srv_send_internal(r, err);
    if (p->failed) {
        if (p->status == 500)
            return srv_send_internal(r, p->message);
        return srv_send_error(r, p->status, p->code, "%s", p->message);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "stored", (double)p->stored);
    cJSON_AddNumberToObject(o, "existing", (double)p->existing);
    return srv_send_json(r, 200, o);
}

void srv_pack_free(struct srv_request *r)
{
    if (!r->pack)
        return;
    char err[BBIT_STORE_ERR_SIZE];
    if (install(r, err, sizeof err) != 0)
        fprintf(stderr, "bbit serve: %s %s: the objects received: %s\n", r->method, r->path, err);
    free(r->pack);
    r->pack = NULL;
}
