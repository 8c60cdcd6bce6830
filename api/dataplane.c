/* The data plane's routing and shared machinery (see dataplane.h). */
#include "dataplane_int.h"

#include "apilog.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define OUTBUF_MAX (4u << 20)
#define HELLO_TIMEOUT_MS 10000

enum dp_kind { K_JSON, K_UPLOAD, K_DOWNLOAD, K_UPGRADE };

typedef int (*dp_json_fn)(struct dp_call *c, json_t **out, struct dperr *e);

struct dp_route {
    const char *method;
    const char *suffix;         /* after /v1/sandboxes/{name}/ */
    enum dp_kind kind;
    dp_json_fn fn;              /* K_JSON */
    enum dp_ws_kind ws;         /* K_UPGRADE */
};

static const struct dp_route routes[] = {
    { "POST", "exec", K_JSON, dp_exec_oneshot, 0 },
    { "GET", "exec/ws", K_UPGRADE, NULL, DP_WS_EXEC },
    { "PUT", "files", K_UPLOAD, NULL, 0 },
    { "GET", "files", K_DOWNLOAD, NULL, 0 },
    { "DELETE", "files", K_JSON, dp_files_delete, 0 },
    { "GET", "files/stat", K_JSON, dp_files_stat, 0 },
    { "GET", "files/list", K_JSON, dp_files_list, 0 },
    { "POST", "files/mkdir", K_JSON, dp_files_mkdir, 0 },
    { "GET", "tunnel", K_UPGRADE, NULL, DP_WS_TUNNEL },
    { "POST", "service-url", K_JSON, dp_service_url, 0 },
};

struct dp_fd {
    int fd;
    struct dp_fd *next;
};

struct dp_req {
    struct dataplane *dp;
    const struct dp_route *route;
    char name[STORE_NAME_LEN + STORE_ID_LEN];
    struct dperr err;           /* answered at the final call when status != 0 */
    char *body;
    size_t len;
    bool too_large;
    struct dp_upload *up;
    bool started;
};

/* ---- errors ---- */

int dp_fail(struct dperr *e, int status, const char *type, const char *fmt, ...)
{
    va_list ap;

    e->status = status;
    e->type = type;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

int dp_fail_errno(struct dperr *e, int neg_errno, const char *agent_msg, const char *what)
{
    int en = -neg_errno;
    const char *msg = agent_msg && *agent_msg ? agent_msg : strerror(en);

    switch (en) {
    case ENOENT: return dp_fail(e, 404, "not_found", "%s: %s", what, msg);
    case EEXIST: return dp_fail(e, 409, "conflict", "%s: %s", what, msg);
    case EACCES:
    case EPERM: return dp_fail(e, 403, "forbidden", "%s: %s", what, msg);
    case EISDIR:
    case ENOTDIR:
    case EINVAL: return dp_fail(e, 400, "validation", "%s: %s", what, msg);
    case EBUSY: return dp_fail(e, 409, "conflict", "%s: %s", what, msg);
    case ESRCH: return dp_fail(e, 404, "not_found", "%s: %s", what, msg);
    default: return dp_fail(e, 500, "internal", "%s: %s", what, msg);
    }
}

json_t *dp_error_json(const struct dperr *e)
{
    return json_pack("{s:{s:s,s:s}}", "error", "type", e->type ? e->type : "internal",
                     "message", e->message);
}

static int from_apierr(struct dperr *e, const struct apierr *a)
{
    return dp_fail(e, apierr_status(a->type), apierr_name(a->type), "%s", a->message);
}

/* ---- sandboxes ---- */

int64_t dp_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dp_lookup(struct dataplane *dp, const char *name, struct dp_target *t, struct dperr *e)
{
    struct sandbox_rec rec;
    struct apierr aerr;
    int rc = -1;

    svc_lock();
    if (sandbox_get(dp->cfg.svc, name, &rec, &aerr) &&
        store_sandbox_get_by_id(dp->cfg.svc->store, name, &rec)) {
        from_apierr(e, &aerr);
        goto out;
    }
    if (strcmp(rec.status, "running")) {
        dp_fail(e, 409, "conflict", "sandbox %s is %s", rec.name, rec.status);
        goto out;
    }
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", rec.id);
    snprintf(t->name, sizeof(t->name), "%s", rec.name);
    snprintf(t->snapshot_id, sizeof(t->snapshot_id), "%s", rec.snapshot_id);
    snprintf(t->vsock, sizeof(t->vsock), "%s/sandboxes/%s/vsock.sock", dp->cfg.state_dir, rec.id);
    t->started_ms = rec.started_ms;
    sandbox_touch(dp->cfg.svc, rec.name, &aerr);
    t->last_touch_ms = dp_mono_ms();
    rc = 0;
out:
    svc_unlock();
    return rc;
}

void dp_touch(struct dataplane *dp, struct dp_target *t)
{
    struct apierr aerr;

    svc_lock();
    sandbox_touch(dp->cfg.svc, t->name, &aerr);
    svc_unlock();
    t->last_touch_ms = dp_mono_ms();
}

void dp_touch_maybe(struct dataplane *dp, struct dp_target *t)
{
    if (dp_mono_ms() - t->last_touch_ms >= 1000)
        dp_touch(dp, t);
}

/* ---- interruptible sockets ---- */

int dp_fd_add(struct dataplane *dp, int fd)
{
    struct dp_fd *n = malloc(sizeof(*n));
    int rc = 0;

    if (!n)
        return -ENOMEM;
    pthread_mutex_lock(&dp->mu);
    if (dp->stopping) {
        rc = -ESHUTDOWN;
        free(n);
    } else {
        n->fd = fd;
        n->next = dp->fds;
        dp->fds = n;
    }
    pthread_mutex_unlock(&dp->mu);
    return rc;
}

void dp_fd_del(struct dataplane *dp, int fd)
{
    pthread_mutex_lock(&dp->mu);
    for (struct dp_fd **pp = &dp->fds; *pp; pp = &(*pp)->next) {
        if ((*pp)->fd == fd) {
            struct dp_fd *n = *pp;
            *pp = n->next;
            free(n);
            break;
        }
    }
    pthread_mutex_unlock(&dp->mu);
}

bool dp_stream_enter(struct dataplane *dp)
{
    bool ok;

    pthread_mutex_lock(&dp->mu);
    ok = !dp->stopping;
    if (ok)
        dp->streams++;
    pthread_mutex_unlock(&dp->mu);
    return ok;
}

void dp_stream_leave(struct dataplane *dp)
{
    pthread_mutex_lock(&dp->mu);
    if (--dp->streams == 0)
        pthread_cond_broadcast(&dp->idle);
    pthread_mutex_unlock(&dp->mu);
}

static bool dp_stopping(struct dataplane *dp)
{
    bool stopping;

    pthread_mutex_lock(&dp->mu);
    stopping = dp->stopping;
    pthread_mutex_unlock(&dp->mu);
    return stopping;
}

/* ---- agent connections ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void set_rcvtimeo(int fd, int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

int dp_agent_open(struct dataplane *dp, const struct dp_target *t, struct agent_client *c,
                  struct dperr *e)
{
    int64_t deadline = t->started_ms + DP_AGENT_WAIT_MS;
    int fd, rc;

    for (;;) {
        fd = agent_client_connect_vsock_uds(t->vsock, AGENT_VSOCK_PORT);
        /* A guest that takes the connection but never says HELLO must not hold
         * this thread: bound the handshake, then block as usual. */
        if (fd >= 0)
            set_rcvtimeo(fd, HELLO_TIMEOUT_MS);
        rc = fd < 0 ? fd : agent_client_init(c, fd);
        if (rc == 0) {
            set_rcvtimeo(c->fd, 0);
            break;
        }
        if (svc_now_ms() >= deadline || dp_stopping(dp))
            return dp_fail(e, 504, "timeout",
                           "the guest agent of sandbox %s did not answer (%s)", t->name,
                           strerror(-rc));
        sleep_ms(100);
    }
    if (dp_fd_add(dp, c->fd)) {
        agent_client_close(c);
        return dp_fail(e, 503, "internal", "sbx-api is shutting down");
    }
    return 0;
}

void dp_agent_close(struct dataplane *dp, struct agent_client *c)
{
    if (!c->rbuf && c->fd < 0)
        return;
    dp_fd_del(dp, c->fd);
    agent_client_close(c);
}

/* ---- outbound buffer ---- */

int dp_reserve(uint8_t **data, size_t *cap, size_t need)
{
    size_t want = *cap ? *cap : 4096;
    uint8_t *grown;

    if (need <= *cap)
        return 0;
    while (want < need) {
        if (want > SIZE_MAX / 2)
            return -ENOMEM;
        want *= 2;
    }
    grown = realloc(*data, want);
    if (!grown)
        return -ENOMEM;
    *data = grown;
    *cap = want;
    return 0;
}

int dp_outbuf_raw(struct dp_outbuf *b, const void *p, size_t n)
{
    if (!n)
        return 0;
    if (n > OUTBUF_MAX - b->len)
        return -ENOBUFS;
    if (dp_reserve(&b->data, &b->cap, b->len + n))
        return -ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int dp_outbuf_frame(struct dp_outbuf *b, uint16_t type, uint32_t id, const void *p, size_t n)
{
    uint8_t hdr[AGENT_HDR_SIZE];
    int rc;

    if (n > AGENT_MAX_PAYLOAD)
        return -EMSGSIZE;
    agent_frame_header(hdr, type, id, (uint32_t)n);
    rc = dp_outbuf_raw(b, hdr, sizeof(hdr));
    return rc ? rc : dp_outbuf_raw(b, p, n);
}

int dp_outbuf_flush(struct dp_outbuf *b, int fd)
{
    while (b->len) {
        ssize_t w = send(fd, b->data, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        memmove(b->data, b->data + w, b->len - (size_t)w);
        b->len -= (size_t)w;
    }
    return 0;
}

void dp_outbuf_free(struct dp_outbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- queries ---- */

int dp_query_path(struct MHD_Connection *conn, const char **path, struct dperr *e)
{
    const char *p = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "path");

    if (!p || !*p)
        return dp_fail(e, 400, "validation", "the path query argument is required");
    if (p[0] != '/')
        return dp_fail(e, 400, "validation", "path must be absolute");
    if (strlen(p) >= AGENT_MAX_PATH)
        return dp_fail(e, 400, "validation", "path is too long");
    *path = p;
    return 0;
}

bool dp_query_flag(struct MHD_Connection *conn, const char *key)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);

    return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

int dp_query_long(struct MHD_Connection *conn, const char *key, int base, long min, long max,
                  long *out)
{
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
    char *end;
    long v;

    if (!s)
        return 1;
    errno = 0;
    v = strtol(s, &end, base);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- the request cycle ---- */

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    json_decref(obj);
    if (obj && !text)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (void *)"",
                                           text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (text)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, const struct dperr *e)
{
    return send_json(conn, e->status, dp_error_json(e));
}

/* "/v1/sandboxes/NAME/SUFFIX" -> name, suffix; false for anything else. */
static bool split_url(const char *url, char *name, size_t cap, const char **suffix)
{
    static const char prefix[] = "/v1/sandboxes/";
    const char *p, *slash;

    if (strncmp(url, prefix, sizeof(prefix) - 1))
        return false;
    p = url + sizeof(prefix) - 1;
    slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= cap)
        return false;
    memcpy(name, p, (size_t)(slash - p));
    name[slash - p] = '\0';
    *suffix = slash + 1;
    return true;
}

struct dp_req *dataplane_begin(struct dataplane *dp, struct MHD_Connection *conn,
                               const char *method, const char *url)
{
    char name[sizeof(((struct dp_req *)0)->name)];
    const struct dp_route *route = NULL;
    const char *suffix;
    bool path_known = false;
    struct apierr aerr;
    struct dp_req *r;

    if (!split_url(url, name, sizeof(name), &suffix))
        return NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].suffix, suffix))
            continue;
        path_known = true;
        if (!strcmp(routes[i].method, method))
            route = &routes[i];
    }
    if (!path_known)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->dp = dp;
    r->route = route;
    snprintf(r->name, sizeof(r->name), "%s", name);
    if (router_auth(dp->cfg.router,
                    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Api-Key"),
                    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), &aerr))
        from_apierr(&r->err, &aerr);
    else if (!route)
        dp_fail(&r->err, 405, "method_not_allowed", "method %.16s not allowed on %.128s", method,
                url);
    return r;
}

static void append_body(struct dp_req *r, const char *data, size_t n)
{
    char *grown;

    if (r->too_large || n > r->dp->cfg.max_body - r->len) {
        r->too_large = true;
        return;
    }
    grown = realloc(r->body, r->len + n + 1);
    if (!grown) {
        r->too_large = true;
        return;
    }
    memcpy(grown + r->len, data, n);
    r->body = grown;
    r->len += n;
    r->body[r->len] = '\0';
}

static enum MHD_Result finish_json(struct dp_req *r, struct MHD_Connection *conn)
{
    struct dp_call call = { .dp = r->dp, .conn = conn, .name = r->name,
                            .body = r->body ? r->body : "", .body_len = r->len };
    json_t *out = NULL;

    if (r->too_large)
        dp_fail(&r->err, 413, "payload_too_large", "request body too large");
    else if (r->route->fn(&call, &out, &r->err) == 0)
        return send_json(conn, 200, out);
    return send_error(conn, &r->err);
}

static enum MHD_Result finish_upload(struct dp_req *r, struct MHD_Connection *conn)
{
    json_t *out = NULL;

    if (dp_upload_end(r->up, &out, &r->err) == 0)
        return send_json(conn, 200, out);
    return send_error(conn, &r->err);
}

/* The first call with the body (or the final call without one). */
static void start(struct dp_req *r, struct MHD_Connection *conn)
{
    r->started = true;
    if (r->err.status || r->route->kind != K_UPLOAD)
        return;
    r->up = dp_upload_begin(r->dp, conn, r->name, &r->err);
}

enum MHD_Result dataplane_step(struct dp_req *r, struct MHD_Connection *conn,
                               const char *upload_data, size_t *upload_data_size)
{
    if (!r->started)
        start(r, conn);
    if (*upload_data_size) {
        /* After an error the body is read and dropped, so the client gets the answer. */
        if (!r->err.status && r->route->kind == K_UPLOAD)
            dp_upload_data(r->up, upload_data, *upload_data_size);
        else if (!r->err.status)
            append_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->err.status)
        return send_error(conn, &r->err);
    switch (r->route->kind) {
    case K_JSON:
        return finish_json(r, conn);
    case K_UPLOAD:
        return finish_upload(r, conn);
    case K_DOWNLOAD:
        if (dp_download(r->dp, conn, r->name, &r->err) == 0)
            return MHD_YES;
        return send_error(conn, &r->err);
    case K_UPGRADE:
        if (dp_upgrade(r->dp, conn, r->name, r->route->ws, &r->err) == 0)
            return MHD_YES;
        return send_error(conn, &r->err);
    }
    return MHD_NO;
}

void dataplane_end(struct dp_req *r)
{
    if (!r)
        return;
    dp_upload_free(r->up);
    free(r->body);
    free(r);
}

/* ---- life cycle ---- */

int dataplane_init(const struct dataplane_config *cfg, struct dataplane **out)
{
    struct dataplane *dp = calloc(1, sizeof(*dp));
    int err;

    if (!dp)
        return -ENOMEM;
    dp->cfg = *cfg;
    pthread_mutex_init(&dp->mu, NULL);
    pthread_cond_init(&dp->idle, NULL);
    err = dp_service_key_load(dp);
    if (err) {
        dataplane_free(dp);
        return err;
    }
    *out = dp;
    return 0;
}

void dataplane_shutdown(struct dataplane *dp)
{
    if (!dp)
        return;
    pthread_mutex_lock(&dp->mu);
    dp->stopping = true;
    for (struct dp_fd *n = dp->fds; n; n = n->next)
        shutdown(n->fd, SHUT_RDWR);
    while (dp->streams > 0)
        pthread_cond_wait(&dp->idle, &dp->mu);
    pthread_mutex_unlock(&dp->mu);
}

void dataplane_free(struct dataplane *dp)
{
    if (!dp)
        return;
    while (dp->fds) {
        struct dp_fd *n = dp->fds;
        dp->fds = n->next;
        free(n);
    }
    pthread_mutex_destroy(&dp->mu);
    pthread_cond_destroy(&dp->idle);
    free(dp);
}
