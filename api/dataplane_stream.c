/* WebSocket upgrades for exec/ws and tunnel, and the tunnel session. Each
 * upgraded connection runs on its own detached thread. */
#include "dataplane_int.h"

#include "apilog.h"
#include "service.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUNNEL_CHUNK 65536
#define AGENT_OUT_HIGH (256u << 10)
#define WS_OUT_HIGH (1u << 20)
#define PING_MS 20000
#define CLOSE_WAIT_MS 3000

struct upgrade {
    struct dataplane *dp;
    struct dp_target t;
    enum dp_ws_kind kind;
    unsigned port;
    struct MHD_UpgradeResponseHandle *urh;
    int fd;
    uint8_t *extra;
    size_t extra_len;
};

static void *session_thread(void *arg)
{
    struct upgrade *u = arg;

    if (u->kind == DP_WS_EXEC)
        dp_exec_session(u->dp, &u->t, u->fd, u->extra, u->extra_len);
    else
        dp_tunnel_session(u->dp, &u->t, u->fd, u->extra, u->extra_len, u->port);
    dp_touch(u->dp, &u->t);
    dp_fd_del(u->dp, u->fd);
    MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
    dp_stream_leave(u->dp);
    free(u->extra);
    free(u);
    return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    struct upgrade *u = cls;
    int rc = -1;

    (void)conn;
    (void)con_cls;
    u->urh = urh;
    u->fd = sock;
    if (extra_in_size && (u->extra = malloc(extra_in_size)))
        memcpy(u->extra, extra_in, extra_in_size);
    u->extra_len = u->extra ? extra_in_size : 0;
    if (!dp_stream_enter(u->dp))
        goto fail;
    if (dp_fd_add(u->dp, sock) == 0) {
        rc = svc_start_detached(session_thread, u);
        if (rc)
            dp_fd_del(u->dp, sock);
    }
    if (rc == 0)
        return;
    dp_stream_leave(u->dp);
fail:
    log_warn("cannot start a stream for sandbox %s", u->t.name);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    free(u->extra);
    free(u);
}

static bool header_has(struct MHD_Connection *conn, const char *name, const char *token)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    size_t n = strlen(token);

    for (; v && *v; v++) {
        if (!strncasecmp(v, token, n))
            return true;
    }
    return false;
}

static int read_port(struct MHD_Connection *conn, unsigned *port, struct dperr *e)
{
    long v;
    int rc = dp_query_long(conn, "port", 10, 1, 65535, &v);

    if (rc > 0)
        return dp_fail(e, 400, "validation", "the port query argument is required");
    if (rc < 0)
        return dp_fail(e, 400, "validation", "port must be 1 to 65535");
    *port = (unsigned)v;
    return 0;
}

int dp_upgrade(struct dataplane *dp, struct MHD_Connection *conn, const char *name,
               enum dp_ws_kind kind, struct dperr *e)
{
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    struct MHD_Response *resp;
    char accept[WS_ACCEPT_LEN];
    struct upgrade *u;
    unsigned port = 0;
    int rc;

    if (!header_has(conn, "Upgrade", "websocket") || !header_has(conn, "Connection", "upgrade"))
        return dp_fail(e, 400, "validation", "this route needs a WebSocket upgrade");
    if (!ver || strcmp(ver, "13") || ws_accept_key(key, accept))
        return dp_fail(e, 400, "validation", "bad Sec-WebSocket-Key or -Version (13)");
    if (kind == DP_WS_TUNNEL && read_port(conn, &port, e))
        return -1;
    u = calloc(1, sizeof(*u));
    if (!u)
        return dp_fail(e, 500, "internal", "out of memory");
    u->dp = dp;
    u->kind = kind;
    u->port = port;
    if (dp_lookup(dp, name, &u->t, e)) {
        free(u);
        return -1;
    }
    resp = MHD_create_response_for_upgrade(on_upgrade, u);
    if (!resp) {
        free(u);
        return dp_fail(e, 500, "internal", "out of memory");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    rc = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    if (rc != MHD_YES) {
        free(u);
        return dp_fail(e, 500, "internal", "cannot queue the upgrade");
    }
    return 0;
}

/* ---- tunnel ---- */

struct tunnel {
    struct ws *ws;
    struct dp_outbuf out;       /* bytes for the guest port */
    bool client_gone;
    bool guest_eof;
    int64_t last_io_ms;
};

static void t_on_message(void *arg, bool text, const uint8_t *data, size_t len)
{
    struct tunnel *t = arg;

    t->last_io_ms = dp_mono_ms();
    if (!text && len && dp_outbuf_raw(&t->out, data, len))
        t->client_gone = true;
}

static void t_on_close(void *arg, uint16_t code)
{
    struct tunnel *t = arg;

    (void)code;
    t->client_gone = true;
}

static bool t_can_read(void *arg)
{
    struct tunnel *t = arg;

    return t->out.len < AGENT_OUT_HIGH;
}

static const struct ws_handlers t_handlers = {
    .on_message = t_on_message, .on_close = t_on_close, .can_read = t_can_read,
};

/* Reads from the guest port while the client's queue has room. */
static void t_pump_guest(struct tunnel *t, int afd, uint8_t *buf)
{
    while (!t->guest_eof && ws_queued(t->ws) < WS_OUT_HIGH) {
        ssize_t n = recv(afd, buf, TUNNEL_CHUNK, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            t->guest_eof = true;
            ws_close(t->ws, 1000, NULL);
            return;
        }
        ws_send(t->ws, false, -1, buf, (size_t)n);
        t->last_io_ms = dp_mono_ms();
    }
}

static void t_run(struct dataplane *dp, struct dp_target *tg, struct tunnel *t, int fd, int afd)
{
    uint8_t *buf = malloc(TUNNEL_CHUNK);
    int64_t close_deadline = 0;

    if (!buf)
        return;
    ws_io(t->ws, 0);
    while (!t->client_gone) {
        struct pollfd p[2] = {
            { .fd = fd, .events = ws_events(t->ws) },
            { .fd = afd, .events = (short)((t->guest_eof || ws_queued(t->ws) >= WS_OUT_HIGH
                                                ? 0 : POLLIN) |
                                           (t->out.len ? POLLOUT : 0)) },
        };
        if (t->guest_eof && !close_deadline)
            close_deadline = dp_mono_ms() + CLOSE_WAIT_MS;
        if (ws_finished(t->ws) || (close_deadline && dp_mono_ms() > close_deadline))
            break;
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (ws_io(t->ws, p[0].revents) < 0)
            break;
        if (dp_outbuf_flush(&t->out, afd) < 0 && !t->guest_eof) {
            t->guest_eof = true;
            ws_close(t->ws, 1011, "the guest port closed");
        }
        t_pump_guest(t, afd, buf);
        dp_touch_maybe(dp, tg);
        if (!t->guest_eof && dp_mono_ms() - t->last_io_ms >= PING_MS) {
            ws_ping(t->ws);
            t->last_io_ms = dp_mono_ms();
        }
    }
    ws_io(t->ws, 0);
    /* Bytes the client sent just before its close still reach the guest. */
    for (int i = 0; i < 20 && t->out.len && !t->guest_eof; i++) {
        struct pollfd p = { .fd = afd, .events = POLLOUT };
        if (poll(&p, 1, 100) < 0 || dp_outbuf_flush(&t->out, afd) < 0)
            break;
    }
    free(buf);
}

/* Sends a close frame and gives it a moment to leave. */
static void t_close_now(struct tunnel *t, int fd, uint16_t code, const char *reason)
{
    ws_close(t->ws, code, reason);
    for (int i = 0; i < 30 && !ws_finished(t->ws); i++) {
        struct pollfd p = { .fd = fd, .events = ws_events(t->ws) };
        poll(&p, 1, 100);
        if (ws_io(t->ws, p.revents) < 0)
            break;
    }
}

void dp_tunnel_session(struct dataplane *dp, struct dp_target *tg, int fd, const void *extra,
                       size_t extra_len, unsigned port)
{
    struct agent_client ac = { .fd = -1 };
    struct tunnel t = { 0 };
    char reason[64];
    struct dperr e;
    int rc, fl;

    t.ws = ws_new(fd, extra, extra_len, &t_handlers, &t);
    if (!t.ws)
        return;
    t.last_io_ms = dp_mono_ms();
    if (dp_agent_open(dp, tg, &ac, &e)) {
        t_close_now(&t, fd, 1011, e.message);
        goto out;
    }
    rc = agent_client_tunnel(&ac, port);
    if (rc < 0) {
        if (rc == -ECONNREFUSED)
            snprintf(reason, sizeof(reason), "nothing listening on port %u", port);
        else
            snprintf(reason, sizeof(reason), "tunnel failed: %.40s", strerror(-rc));
        t_close_now(&t, fd, 1011, reason);
        goto out;
    }
    /* Bytes from the guest that came with the OK. */
    if (ac.rlen > ac.roff)
        ws_send(t.ws, false, -1, ac.rbuf + ac.roff, ac.rlen - ac.roff);
    fl = fcntl(ac.fd, F_GETFL);
    if (fl >= 0 && fcntl(ac.fd, F_SETFL, fl | O_NONBLOCK) == 0)
        t_run(dp, tg, &t, fd, ac.fd);
out:
    dp_agent_close(dp, &ac);
    dp_outbuf_free(&t.out);
    ws_free(t.ws);
}
