/* Files: streamed PUT and GET, stat, list, mkdir, delete. Neither direction
 * holds a file: bytes move in agent DATA frames of at most 64 KiB. */
#include "dataplane_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- small requests ---- */

static const char *type_name(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    default: return "other";
    }
}

static json_t *stat_json(const struct agent_stat *st)
{
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "type", type_name(st->mode), "size",
                     (json_int_t)st->size, "mode", (json_int_t)(st->mode & 07777), "uid",
                     (json_int_t)st->uid, "gid", (json_int_t)st->gid, "mtime",
                     (json_int_t)(st->mtime_ns / 1000000000ull));
}

/* Looks up, checks the path and connects: the common start of every file call. */
static int open_for(struct dp_call *c, const char **path, struct dp_target *t,
                    struct agent_client *ac, struct dperr *e)
{
    if (dp_query_path(c->conn, path, e) || dp_lookup(c->dp, c->name, t, e))
        return -1;
    return dp_agent_open(c->dp, t, ac, e);
}

/* The common end of every file call: closes the agent connection; the agent's result rc,
 * when negative, becomes the error in e (-1). */
static int close_for(struct dp_call *c, struct agent_client *ac, long rc, const char *path,
                     struct dperr *e)
{
    if (rc < 0)
        dp_fail_errno(e, (int)rc, ac->error, path);
    dp_agent_close(c->dp, ac);
    return rc < 0 ? -1 : 0;
}

int dp_files_stat(struct dp_call *c, json_t **out, struct dperr *e)
{
    struct agent_client ac = { .fd = -1 };
    struct agent_stat st;
    struct dp_target t;
    const char *path;

    if (open_for(c, &path, &t, &ac, e))
        return -1;
    if (close_for(c, &ac, agent_client_stat(&ac, path, &st), path, e))
        return -1;
    *out = stat_json(&st);
    json_object_set_new(*out, "path", json_string(path));
    return 0;
}

static int add_entry(void *arg, const struct agent_stat *st)
{
    json_t *e = stat_json(st);

    json_object_set_new(e, "name", json_string(st->name));
    return json_array_append_new(arg, e) ? -ENOMEM : 0;
}

int dp_files_list(struct dp_call *c, json_t **out, struct dperr *e)
{
    struct agent_client ac = { .fd = -1 };
    json_t *arr = json_array();
    struct dp_target t;
    const char *path;

    if (!arr || open_for(c, &path, &t, &ac, e)) {
        json_decref(arr);
        return arr ? -1 : dp_fail(e, 500, "internal", "out of memory");
    }
    if (close_for(c, &ac, agent_client_list(&ac, path, add_entry, arr), path, e)) {
        json_decref(arr);
        return -1;
    }
    *out = json_pack("{s:s,s:o}", "path", path, "entries", arr);
    return 0;
}

/* mkdir and delete: one agent call with a flag from the query, {"path": ...} back. */
static int path_call(struct dp_call *c, bool mkdir, json_t **out, struct dperr *e)
{
    struct agent_client ac = { .fd = -1 };
    struct dp_target t;
    const char *path;
    int rc;

    if (open_for(c, &path, &t, &ac, e))
        return -1;
    rc = mkdir ? agent_client_mkdir(&ac, path, 0755, dp_query_flag(c->conn, "parents"))
               : agent_client_remove(&ac, path, dp_query_flag(c->conn, "recursive"));
    if (close_for(c, &ac, rc, path, e))
        return -1;
    *out = json_pack("{s:s}", "path", path);
    return 0;
}

int dp_files_mkdir(struct dp_call *c, json_t **out, struct dperr *e)
{
    return path_call(c, true, out, e);
}

int dp_files_delete(struct dp_call *c, json_t **out, struct dperr *e)
{
    return path_call(c, false, out, e);
}

/* ---- upload ---- */

struct dp_upload {
    struct dataplane *dp;
    struct dp_target t;
    struct agent_client ac;
    char path[AGENT_MAX_PATH];
    struct dperr err;
    bool failed;                /* err is set; drop the rest of the body */
    bool agent_failed;          /* the agent already sent its ERROR */
    unsigned frames;
};

static int parse_mode(struct MHD_Connection *conn, int *mode, struct dperr *e)
{
    long v;
    int rc = dp_query_long(conn, "mode", 8, 0, 07777, &v);

    *mode = rc == 0 ? (int)v : -1;
    if (rc < 0)
        return dp_fail(e, 400, "validation", "mode must be octal, 0 to 7777");
    return 0;
}

static int send_write(struct dp_upload *u, int mode)
{
    struct agent_frame f;

    agent_msg_init(u->ac.msg, AGENT_FILE_WRITE, 0);
    agent_msg_str(u->ac.msg, AGENT_T_PATH, u->path);
    if (mode >= 0)
        agent_msg_u32(u->ac.msg, AGENT_T_MODE, (uint32_t)mode);
    return agent_client_transact(&u->ac, &f);
}

static int make_parents(struct dp_upload *u)
{
    char parent[AGENT_MAX_PATH];
    char *slash;

    snprintf(parent, sizeof(parent), "%s", u->path);
    slash = strrchr(parent, '/');
    if (!slash || slash == parent)
        return 0;
    *slash = '\0';
    return agent_client_mkdir(&u->ac, parent, 0755, 1);
}

struct dp_upload *dp_upload_begin(struct dataplane *dp, struct MHD_Connection *conn,
                                  const char *name, struct dperr *e)
{
    struct dp_upload *u = calloc(1, sizeof(*u));
    const char *path;
    int mode, rc;

    if (!u) {
        dp_fail(e, 500, "internal", "out of memory");
        return NULL;
    }
    u->dp = dp;
    u->ac.fd = -1;
    if (dp_query_path(conn, &path, e) || parse_mode(conn, &mode, e) ||
        dp_lookup(dp, name, &u->t, e) || dp_agent_open(dp, &u->t, &u->ac, e))
        goto fail;
    snprintf(u->path, sizeof(u->path), "%s", path);
    rc = dp_query_flag(conn, "mkdir") ? make_parents(u) : 0;
    if (rc == 0)
        rc = send_write(u, mode);
    if (rc < 0) {
        dp_fail_errno(e, rc, u->ac.error, u->path);
        goto fail;
    }
    return u;
fail:
    dp_upload_free(u);
    return NULL;
}

/* An early ERROR (disk full...) without blocking. */
static void check_early_error(struct dp_upload *u)
{
    struct pollfd p = { .fd = u->ac.fd, .events = POLLIN };
    struct agent_frame f;
    int rc;

    if (!agent_client_has_frame(&u->ac) && poll(&p, 1, 0) <= 0)
        return;
    rc = agent_client_recv(&u->ac, &f);
    if (rc == 0 && f.type == AGENT_ERROR) {
        u->agent_failed = true;
        rc = agent_client_frame_error(&u->ac, &f);
    } else if (rc == 0) {
        rc = -EPROTO;
    }
    u->failed = true;
    dp_fail_errno(&u->err, rc, u->ac.error, u->path);
}

void dp_upload_data(struct dp_upload *u, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n && !u->failed) {
        size_t chunk = n > AGENT_MAX_PAYLOAD ? AGENT_MAX_PAYLOAD : n;
        int rc = agent_client_send(&u->ac, AGENT_DATA, 0, b, chunk);

        if (rc < 0) {
            u->failed = true;
            dp_fail_errno(&u->err, rc, "agent connection lost", u->path);
            return;
        }
        b += chunk;
        n -= chunk;
        if (++u->frames % 16 == 0)
            check_early_error(u);
    }
    dp_touch_maybe(u->dp, &u->t);
}

int dp_upload_end(struct dp_upload *u, json_t **out, struct dperr *e)
{
    struct agent_frame f;
    uint64_t size = 0;
    int rc;

    if (!u)
        return dp_fail(e, 500, "internal", "no upload");
    if (u->agent_failed) {
        /* DATA_END takes the agent out of its write state; it answers nothing more. */
        agent_client_send(&u->ac, AGENT_DATA_END, 0, NULL, 0);
        *e = u->err;
        return -1;
    }
    rc = agent_client_send(&u->ac, AGENT_DATA_END, 0, NULL, 0);
    if (rc == 0)
        rc = agent_client_recv_reply(&u->ac, &f);
    if (u->failed) {
        *e = u->err;
        return -1;
    }
    if (rc < 0)
        return dp_fail_errno(e, rc, u->ac.error, u->path);
    agent_client_reply_size(&f, &size);
    dp_touch(u->dp, &u->t);
    *out = json_pack("{s:s,s:I}", "path", u->path, "size", (json_int_t)size);
    return 0;
}

void dp_upload_free(struct dp_upload *u)
{
    if (!u)
        return;
    dp_agent_close(u->dp, &u->ac);
    free(u);
}

/* ---- download ---- */

struct download {
    struct dataplane *dp;
    struct dp_target t;
    struct agent_client ac;
    struct agent_frame f;       /* the DATA frame being copied out */
    size_t off;
    bool end;
};

static ssize_t download_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct download *d = cls;
    size_t n;

    (void)pos;
    while (d->off >= d->f.len) {
        if (d->end)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (agent_client_recv(&d->ac, &d->f) < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        d->off = 0;
        if (d->f.type == AGENT_DATA_END) {
            d->end = true;
            d->f.len = 0;
        } else if (d->f.type != AGENT_DATA) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        dp_touch_maybe(d->dp, &d->t);
    }
    n = d->f.len - d->off;
    if (n > max)
        n = max;
    memcpy(buf, d->f.payload + d->off, n);
    d->off += n;
    return (ssize_t)n;
}

static void download_free(void *cls)
{
    struct download *d = cls;

    dp_agent_close(d->dp, &d->ac);
    free(d);
}

/* Sends FILE_READ; on OK fills *size. */
static int start_read(struct download *d, const char *path, uint64_t *size)
{
    struct agent_frame f;
    int rc;

    agent_msg_init(d->ac.msg, AGENT_FILE_READ, 0);
    agent_msg_str(d->ac.msg, AGENT_T_PATH, path);
    rc = agent_client_transact(&d->ac, &f);
    if (rc < 0)
        return rc;
    *size = 0;
    agent_client_reply_size(&f, size);
    return 0;
}

int dp_download(struct dataplane *dp, struct MHD_Connection *conn, const char *name,
                struct dperr *e)
{
    struct download *d = calloc(1, sizeof(*d));
    struct MHD_Response *resp;
    const char *path;
    uint64_t size;
    int rc;

    if (!d)
        return dp_fail(e, 500, "internal", "out of memory");
    d->dp = dp;
    d->ac.fd = -1;
    if (dp_query_path(conn, &path, e) || dp_lookup(dp, name, &d->t, e) ||
        dp_agent_open(dp, &d->t, &d->ac, e))
        goto fail;
    rc = start_read(d, path, &size);
    if (rc < 0) {
        dp_fail_errno(e, rc, d->ac.error, path);
        goto fail;
    }
    /* Content-Length is the size at open; a file that shrinks meanwhile ends the
     * connection early rather than sending a short body as if complete. */
    resp = MHD_create_response_from_callback(size, 64 * 1024, download_read, d, download_free);
    if (!resp) {
        dp_fail(e, 500, "internal", "out of memory");
        goto fail;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    rc = MHD_queue_response(conn, 200, resp) == MHD_YES ? 0 : -1;
    MHD_destroy_response(resp);
    return rc == 0 ? 0 : dp_fail(e, 500, "internal", "cannot queue the response");
fail:
    download_free(d);
    return -1;
}
