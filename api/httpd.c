/* libmicrohttpd glue: one thread per connection. Control-plane requests are
 * collected and routed under the service lock; data-plane routes go to
 * dataplane.c, which takes the lock only for its look-ups. */
#include "httpd.h"

#include "apilog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CONN_LIMIT 256
#define CONN_TIMEOUT_S 30

struct httpd {
    struct MHD_Daemon *mhd;
    struct router *router;
    struct dataplane *dp;
    size_t max_body;
    uint16_t port;
};

/* Per-request state, from the first header callback to completion. */
struct request_state {
    struct dp_req *dp;          /* a data-plane request, handled by dataplane.c */
    char *body;
    size_t len, cap;            /* cap: body's allocation */
    bool too_large;
};

static int append_body(struct httpd *h, struct request_state *rs, const char *data, size_t n)
{
    char *grown;
    size_t cap;

    if (rs->too_large || n > h->max_body - rs->len) {
        /* Keep reading (and dropping) so the client gets our answer. */
        rs->too_large = true;
        return 0;
    }
    if (rs->len + n + 1 > rs->cap) {
        /* Doubling, and not realloc: that could leave a copy of the body (which
         * may hold secrets, registry_auth) in freed memory; the old one is wiped. */
        cap = rs->cap * 2 > rs->len + n + 1 ? rs->cap * 2 : rs->len + n + 1;
        grown = malloc(cap);
        if (!grown)
            return -ENOMEM;
        if (rs->body) {
            memcpy(grown, rs->body, rs->len);
            explicit_bzero(rs->body, rs->len);
            free(rs->body);
        }
        rs->body = grown;
        rs->cap = cap;
    }
    memcpy(rs->body + rs->len, data, n);
    rs->len += n;
    rs->body[rs->len] = '\0';
    return 0;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, const struct api_response *r)
{
    const char *body = r->body ? r->body : "";
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (r->body)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct httpd *h = cls;
    struct request_state *rs = *con_cls;
    struct api_response resp = { 0 };
    enum MHD_Result ret;

    (void)version;
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        *con_cls = rs;
        if (rs && h->dp)
            rs->dp = dataplane_begin(h->dp, conn, method, url);
        return rs ? MHD_YES : MHD_NO;
    }
    if (rs->dp)
        return dataplane_step(rs->dp, conn, upload_data, upload_data_size);
    if (*upload_data_size) {
        if (append_body(h, rs, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct api_request req = {
        .method = method,
        .path = url,
        .x_api_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Api-Key"),
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        .body = rs->body ? rs->body : "",
        .body_len = rs->len,
        .body_too_large = rs->too_large,
    };
    svc_lock();
    router_handle(h->router, &req, &resp);
    svc_unlock();
    log_debug("%s %s -> %d", method, url, resp.status);
    ret = send_response(conn, &resp);
    api_response_free(&resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request_state *rs = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (rs) {
        dataplane_end(rs->dp);
        if (rs->body)       /* a body may hold secrets (registry_auth) */
            explicit_bzero(rs->body, rs->len);
        free(rs->body);
        free(rs);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("http: %s", msg);
}

int httpd_start(struct router *router, struct dataplane *dp, const char *host, uint16_t port,
                size_t max_body, struct httpd **out)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    const union MHD_DaemonInfo *info;
    struct httpd *h;

    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->router = router;
    h->dp = dp;
    h->max_body = max_body;
    h->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
        MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        return -EADDRINUSE;
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    *out = h;
    return 0;
}

uint16_t httpd_port(const struct httpd *h)
{
    return h->port;
}

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    /* Streams and agent calls end first, so no connection thread stays blocked. */
    dataplane_shutdown(h->dp);
    MHD_stop_daemon(h->mhd);
    free(h);
}
