/* One client connection relayed to a sandbox port (see conn.h).
 *
 * Bytes flow through four fixed buffers, so a connection's memory is bounded
 * whatever is sent: client -> cin -> c2b -> backend, backend -> bin -> b2c -> client.
 * Heads are parsed in cin / bin and rewritten into c2b / b2c; bodies are followed by
 * the parser only to find where they end and are copied raw (chunked stays chunked).
 * One request is in flight at a time; pipelined requests wait in cin. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "auth.h"
#include "conn.h"
#include "http_msg.h"
#include "log.h"
#include "rewrite.h"
#include "route.h"
#include "tls.h"

#define BUF_CAP       32768
#define LINGER_MS     2000
#define BOOTSTRAP_MAX 2048 /* longest decoded `next` */

struct buf {
    size_t off, len;
    char data[BUF_CAP];
};

enum req_state {
    REQ_HEAD,   /* waiting for a request head */
    REQ_BODY,   /* forwarding the request body */
    REQ_SENT,   /* request done (or answered locally), response under way */
    REQ_TUNNEL, /* upgraded: raw bytes both ways */
    REQ_LINGER, /* answer sent and write side shut: draining input until EOF */
};

enum resp_state { RESP_NONE, RESP_HEAD, RESP_BODY, RESP_TUNNEL };
enum bk_state { BK_NONE, BK_CONNECTING, BK_READY };

struct conn {
    struct conn *prev, *next;
    struct conn *again_next;
    bool in_again;
    bool closed;               /* on env->freed: ignore further events */
    struct relay_env *env;
    int cfd, bfd;
    void *bk_priv; /* the backend's own, per service connection */
    SSL *ssl;
    bool handshaking, hs_want_write;
    bool read_wants_write, write_wants_read; /* TLS */
    enum bk_state bk;
    bool bk_want_write;
    struct route_target target;    /* of the current request */
    struct route_target bk_target; /* of bfd */
    struct auth_cache auth_cache;
    enum req_state req;
    enum resp_state resp;
    struct http_msg reqm, respm;
    bool head_method, upgrade_req, client_keep, client_http10;
    bool close_after_flush;
    bool client_eof, backend_eof, backend_shut, client_shut;
    bool c_readable, b_readable;
    bool dead;
    bool head_started;
    uint32_t c_events, b_events;
    bool c_registered, b_registered;
    uint64_t deadline_ms;
    char peer[64];
    struct buf cin, c2b, bin, b2c;
};

const size_t conn_size = sizeof(struct conn);

/* --- buffers --- */

static char *buf_start(struct buf *b)
{
    return b->data + b->off;
}

static size_t buf_room(struct buf *b)
{
    if (b->off && b->off + b->len > BUF_CAP / 2) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    return BUF_CAP - b->off - b->len;
}

static char *buf_end(struct buf *b)
{
    return b->data + b->off + b->len;
}

static void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

/* Copies n bytes (n <= buf_room(dst) checked by the caller) from src to dst. */
static void buf_move(struct buf *dst, struct buf *src, size_t n)
{
    memcpy(buf_end(dst), buf_start(src), n);
    dst->len += n;
    buf_consume(src, n);
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* --- timing --- */

static const struct router_opts *opts(const struct conn *c)
{
    return c->env->cfg->opts;
}

static void set_deadline(struct conn *c, int seconds)
{
    c->deadline_ms = c->env->now_ms + (uint64_t)seconds * 1000;
}

/* Bytes moved: push the idle deadline out, unless a head is being waited for. */
static void touch(struct conn *c)
{
    if (c->req == REQ_TUNNEL)
        set_deadline(c, opts(c)->tunnel_idle_timeout_s);
    else if (c->req != REQ_HEAD && c->req != REQ_LINGER)
        set_deadline(c, opts(c)->idle_timeout_s);
}

/* --- client and backend I/O --- */

static ssize_t client_recv(struct conn *c, char *p, size_t n)
{
    if (c->ssl) {
        bool ww = false;
        ssize_t r = tls_read(c->ssl, p, n, &ww);
        c->read_wants_write = r == -EAGAIN && ww;
        return r;
    }
    ssize_t r = recv(c->cfd, p, n, 0);
    return r < 0 ? -errno : r;
}

static ssize_t client_send(struct conn *c, const char *p, size_t n)
{
    if (c->ssl) {
        bool ww = true;
        ssize_t r = tls_write(c->ssl, p, n, &ww);
        c->write_wants_read = r == -EAGAIN && !ww;
        return r;
    }
    ssize_t r = send(c->cfd, p, n, MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

static void close_backend(struct conn *c)
{
    const struct proxy_config *cfg = c->env->cfg;
    if (c->bk_priv && cfg->backend->release)
        cfg->backend->release(cfg->backend_ctx, c->bk_priv);
    c->bk_priv = NULL;
    if (c->bfd >= 0)
        close(c->bfd); /* also leaves the epoll set */
    c->bfd = -1;
    c->bk = BK_NONE;
    c->b_registered = false;
    c->b_events = 0;
    c->backend_eof = c->backend_shut = c->b_readable = false;
    c->bin.off = c->bin.len = 0;
    c->c2b.off = c->c2b.len = 0;
}

/* --- local answers --- */

/* Queues a router-made response. keep: the connection may serve another request. */
static void queue_answer(struct conn *c, const char *text, int len, bool keep)
{
    if (len < 0 || (size_t)len > buf_room(&c->b2c)) {
        c->dead = true;
        return;
    }
    memcpy(buf_end(&c->b2c), text, (size_t)len);
    c->b2c.len += (size_t)len;
    c->resp = RESP_NONE;
    if (keep) {
        c->req = REQ_HEAD;
        c->head_started = false;
        set_deadline(c, opts(c)->idle_timeout_s);
    } else {
        c->req = REQ_SENT;
        c->close_after_flush = true;
    }
}

static void answer(struct conn *c, enum answer_kind kind, bool keep)
{
    char text[1024];
    int len = answer_error(text, sizeof(text), kind, keep, c->head_method);
    if (answer_status(kind) == 400 || kind == ANSWER_TIMEOUT || kind == ANSWER_HEAD_TOO_LARGE)
        log_debug("%s: answered %d", c->peer, answer_status(kind)); /* clients' mistakes */
    else if (c->target.port)
        log_info("%s %s--%u: answered %d", c->peer, c->target.sandbox, c->target.port,
                 answer_status(kind));
    else
        log_info("%s: answered %d", c->peer, answer_status(kind));
    queue_answer(c, text, len, keep);
}

/* Whether a request answered by the router can leave the connection open: only when
 * the client wants it and no body of it is left to skip. */
static bool can_keep(const struct conn *c)
{
    return c->client_keep && c->reqm.complete && !c->upgrade_req;
}

/* --- request side --- */

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

/* GET /_svc/auth?token=...&next=/path: checks the token, sets the cookie, redirects. */
static void bootstrap(struct conn *c)
{
    const struct http_span url = c->reqm.url;
    char token[SVC_TOKEN_MAX_LEN + 1], next[BOOTSTRAP_MAX + 1];
    long tlen = route_query_param(url, "token", token, sizeof(token));
    if (tlen < 0) {
        answer(c, tlen == -1 ? ANSWER_AUTH_REQUIRED : ANSWER_INVALID_TOKEN, can_keep(c));
        return;
    }
    long nlen = route_query_param(url, "next", next, sizeof(next));
    if (nlen == -1)
        nlen = (long)strlen(strcpy(next, "/"));
    if (nlen < 0 || !route_next_ok(next, (size_t)nlen)) {
        answer(c, ANSWER_BAD_REDIRECT, can_keep(c));
        return;
    }
    int64_t now = wall_now(), expires = 0;
    enum svc_token_verdict v = svc_token_verify(c->env->cfg->key, token, (size_t)tlen,
                                                c->target.sandbox, c->target.port, now, &expires);
    switch (auth_from_verdict(v)) {
    case AUTH_OK: break;
    case AUTH_EXPIRED: answer(c, ANSWER_LINK_EXPIRED, can_keep(c)); return;
    case AUTH_WRONG_TARGET: answer(c, ANSWER_WRONG_SERVICE, can_keep(c)); return;
    default: answer(c, ANSWER_INVALID_TOKEN, can_keep(c)); return;
    }
    char text[BOOTSTRAP_MAX + SVC_TOKEN_MAX_LEN + 512];
    int len = answer_bootstrap(text, sizeof(text), next, token, expires - now,
                               c->env->cfg->tls != NULL, can_keep(c));
    log_info("%s %s--%u: browser bootstrap, cookie set", c->peer, c->target.sandbox,
             c->target.port);
    queue_answer(c, text, len, can_keep(c));
}

/* Connects (or reuses the connection) to the target. Returns 0 or -errno. */
static int backend_prepare(struct conn *c, const struct route_target *t)
{
    const struct proxy_config *cfg = c->env->cfg;
    if (c->bk == BK_READY && !c->backend_eof && c->bin.len == 0 &&
        strcmp(c->bk_target.sandbox, t->sandbox) == 0 && c->bk_target.port == t->port)
        return 0;
    close_backend(c);
    int fd = cfg->backend->connect(cfg->backend_ctx, t->sandbox, t->port, &c->bk_priv);
    if (fd < 0) {
        close_backend(c); /* releases a state set before failing */
        return fd;
    }
    c->bfd = fd;
    c->bk_target = *t;
    c->bk = BK_CONNECTING;
    int rc = cfg->backend->finish(cfg->backend_ctx, fd, c->bk_priv, &c->bk_want_write);
    if (rc == 0)
        c->bk = BK_READY;
    else if (rc != -EINPROGRESS) {
        close_backend(c);
        return rc;
    }
    return 0;
}

static enum answer_kind auth_answer(enum auth_result r)
{
    switch (r) {
    case AUTH_EXPIRED: return ANSWER_LINK_EXPIRED;
    case AUTH_WRONG_TARGET: return ANSWER_WRONG_SERVICE;
    case AUTH_INVALID: return ANSWER_INVALID_TOKEN;
    default: return ANSWER_AUTH_REQUIRED;
    }
}

/* Routing and auth of a parsed head. Returns -1 to forward, else the answer to give. */
static int decide(struct conn *c, struct route_target *t, struct auth_outcome *auth)
{
    const struct proxy_config *cfg = c->env->cfg;
    const struct http_header *host = NULL;
    for (size_t i = 0; i < c->reqm.n_headers; i++) {
        if (!http_span_ieq(c->reqm.headers[i].name, "Host"))
            continue;
        if (host)
            return ANSWER_BAD_REQUEST; /* two Hosts: ambiguous, refuse */
        host = &c->reqm.headers[i];
    }
    if (c->reqm.parser.method == HTTP_CONNECT)
        return ANSWER_METHOD;
    if (c->reqm.url.len == 0 || c->reqm.url.p[0] != '/')
        return ANSWER_BAD_REQUEST;
    if (!host || route_parse_host(host->value, opts(c)->domain, t) < 0)
        return ANSWER_NOT_SERVICE_HOST;
    c->target = *t;
    /* A live service connection to the same place proves the sandbox still exists. */
    bool known = c->bk == BK_READY && c->bk_target.port == t->port &&
                 strcmp(c->bk_target.sandbox, t->sandbox) == 0;
    int exists = known ? 1 : cfg->backend->sandbox_exists(cfg->backend_ctx, t->sandbox);
    if (exists <= 0)
        return exists == 0 ? ANSWER_UNKNOWN_SANDBOX : ANSWER_INTERNAL;
    if (route_path_is(c->reqm.url, ROUTE_AUTH_PATH))
        return -2;
    *auth = auth_check(cfg->key, &c->reqm, t, wall_now(), &c->auth_cache);
    if (auth->result == AUTH_OK)
        return -1;
    if (cfg->backend->port_public(cfg->backend_ctx, t->sandbox, t->port)) {
        *auth = (struct auth_outcome){.result = AUTH_OK, .bearer_is_token = auth->bearer_is_token};
        return -1;
    }
    return (int)auth_answer(auth->result);
}

/* Sends the head upstream: connect, rewrite into c2b. */
static void forward(struct conn *c, const struct route_target *t, const struct auth_outcome *auth)
{
    int rc = backend_prepare(c, t);
    c->target = *t;
    if (rc < 0) {
        log_debug("%s %s--%u: backend: %s", c->peer, t->sandbox, t->port, strerror(-rc));
        answer(c, ANSWER_UNREACHABLE, can_keep(c));
        return;
    }
    struct rewrite_request_info info = {.peer = c->peer, .tls = c->ssl != NULL,
                                        .strip_bearer = auth->bearer_is_token};
    long n = rewrite_request(&c->reqm, buf_start(&c->cin), &info, buf_end(&c->c2b),
                             buf_room(&c->c2b));
    if (n < 0) {
        answer(c, ANSWER_HEAD_TOO_LARGE, false);
        return;
    }
    c->c2b.len += (size_t)n;
    c->req = c->reqm.complete ? REQ_SENT : REQ_BODY;
    c->resp = RESP_HEAD;
    if (c->bk == BK_CONNECTING) /* a sandbox that never answers is given up sooner */
        set_deadline(c, opts(c)->header_timeout_s);
    log_debug("%s %s--%u: %.*s", c->peer, t->sandbox, t->port,
              (int)min_size(c->reqm.url.len, 200), c->reqm.url.p);
}

static void start_request(struct conn *c, size_t head_len)
{
    c->target = (struct route_target){0};
    c->head_method = false;
    if (http_msg_head(&c->reqm, HTTP_REQUEST, false, buf_start(&c->cin), head_len) < 0) {
        c->client_keep = false;
        answer(c, ANSWER_BAD_REQUEST, false);
        buf_consume(&c->cin, head_len);
        return;
    }
    c->head_method = c->reqm.parser.method == HTTP_HEAD;
    c->client_keep = http_msg_keep_alive(&c->reqm);
    c->client_http10 = c->reqm.parser.http_major == 1 && c->reqm.parser.http_minor == 0;
    c->upgrade_req = http_msg_upgrade(&c->reqm);
    set_deadline(c, opts(c)->idle_timeout_s);
    struct route_target t = {0};
    struct auth_outcome auth = {0};
    int verdict = decide(c, &t, &auth);
    if (verdict == -1)
        forward(c, &t, &auth);
    else if (verdict == -2)
        bootstrap(c);
    else
        answer(c, (enum answer_kind)verdict, can_keep(c));
    buf_consume(&c->cin, head_len); /* after use: the head's spans point into cin */
}

static bool request_head_step(struct conn *c)
{
    /* One exchange at a time, and a new one only once the last left entirely. */
    if (c->resp != RESP_NONE || c->b2c.len || c->c2b.len || c->close_after_flush)
        return false;
    if (c->cin.len == 0) {
        if (c->client_eof)
            c->dead = true;
        return false;
    }
    if (!c->head_started) {
        c->head_started = true;
        set_deadline(c, opts(c)->header_timeout_s);
    }
    long head = http_msg_head_end(buf_start(&c->cin), c->cin.len);
    if (head == -2) {
        if (c->client_eof)
            c->dead = true;
        return false;
    }
    if (head == -1) {
        c->client_keep = false;
        answer(c, ANSWER_HEAD_TOO_LARGE, false);
        return true;
    }
    start_request(c, (size_t)head);
    return true;
}

static bool request_body_step(struct conn *c)
{
    size_t n = min_size(c->cin.len, buf_room(&c->c2b));
    if (n == 0) {
        if (c->client_eof && c->cin.len == 0)
            c->dead = true; /* body cut short */
        return false;
    }
    long used = http_msg_body(&c->reqm, buf_start(&c->cin), n);
    if (used < 0) {
        c->dead = true;
        return false;
    }
    buf_move(&c->c2b, &c->cin, (size_t)used);
    if (c->reqm.complete)
        c->req = REQ_SENT;
    return used > 0;
}

static bool tunnel_up_step(struct conn *c)
{
    size_t n = min_size(c->cin.len, buf_room(&c->c2b));
    if (n)
        buf_move(&c->c2b, &c->cin, n);
    if (c->client_eof && !c->cin.len && !c->c2b.len && !c->backend_shut && c->bfd >= 0) {
        shutdown(c->bfd, SHUT_WR);
        c->backend_shut = true;
    }
    return n > 0;
}

static bool request_step(struct conn *c)
{
    switch (c->req) {
    case REQ_HEAD: return request_head_step(c);
    case REQ_BODY: return request_body_step(c);
    case REQ_TUNNEL: return tunnel_up_step(c);
    case REQ_LINGER:
        c->cin.off = c->cin.len = 0;
        if (c->client_eof)
            c->dead = true;
        return false;
    case REQ_SENT: return false;
    }
    return false;
}

/* --- response side --- */

/* The backend failed before or while answering. */
static void backend_failed(struct conn *c, enum answer_kind kind)
{
    close_backend(c);
    if (c->resp == RESP_HEAD) {
        answer(c, kind, false);
        return;
    }
    c->resp = RESP_NONE;
    c->close_after_flush = true; /* the client sees a cut response */
}

static void response_done(struct conn *c, bool keep)
{
    /* An HTTP/1.0 request reaches the service without keep-alive: it will close. */
    bool reuse = keep && c->req == REQ_SENT && !c->client_http10 &&
                 http_msg_keep_alive(&c->respm) && !http_msg_until_close(&c->respm) &&
                 c->bin.len == 0 && c->c2b.len == 0;
    if (!reuse)
        close_backend(c);
    c->resp = RESP_NONE;
    if (keep && c->req == REQ_SENT) {
        c->req = REQ_HEAD;
        c->head_started = false;
        set_deadline(c, opts(c)->idle_timeout_s);
    } else {
        c->close_after_flush = true;
    }
}

static void start_response(struct conn *c, size_t head_len)
{
    const http_parser *p = &c->respm.parser;
    if (http_msg_head(&c->respm, HTTP_RESPONSE, c->head_method, buf_start(&c->bin), head_len) < 0) {
        backend_failed(c, ANSWER_BAD_GATEWAY);
        return;
    }
    if (p->status_code == 101 || p->status_code / 100 == 1) {
        if (p->status_code == 101 && !c->upgrade_req) {
            backend_failed(c, ANSWER_BAD_GATEWAY);
            return;
        }
        buf_move(&c->b2c, &c->bin, head_len); /* interim or switching: raw */
        if (p->status_code == 101) {
            c->resp = RESP_TUNNEL;
            c->req = REQ_TUNNEL;
            touch(c);
        }
        return;
    }
    bool keep = c->client_keep && c->req == REQ_SENT && !http_msg_until_close(&c->respm);
    bool http10 = c->client_http10 || (p->http_major == 1 && p->http_minor == 0);
    long n = rewrite_response(&c->respm, buf_start(&c->bin), keep, http10, buf_end(&c->b2c),
                              buf_room(&c->b2c));
    if (n < 0) {
        backend_failed(c, ANSWER_BAD_GATEWAY);
        return;
    }
    c->b2c.len += (size_t)n;
    buf_consume(&c->bin, head_len);
    c->client_keep = keep;
    if (c->respm.complete)
        response_done(c, keep);
    else
        c->resp = RESP_BODY;
}

static bool response_head_step(struct conn *c)
{
    if (buf_room(&c->b2c) < HTTP_MSG_HEAD_MAX + 1024)
        return false;
    long head = http_msg_head_end(buf_start(&c->bin), c->bin.len);
    if (head == -2) {
        if (c->backend_eof)
            backend_failed(c, ANSWER_BAD_GATEWAY);
        return c->backend_eof;
    }
    if (head == -1) {
        backend_failed(c, ANSWER_BAD_GATEWAY);
        return true;
    }
    start_response(c, (size_t)head);
    return true;
}

static bool response_body_step(struct conn *c)
{
    size_t n = min_size(c->bin.len, buf_room(&c->b2c));
    long used;
    if (n == 0 && c->bin.len == 0 && c->backend_eof)
        used = http_msg_body(&c->respm, "", 0);
    else if (n == 0)
        return false;
    else
        used = http_msg_body(&c->respm, buf_start(&c->bin), n);
    if (used < 0) {
        backend_failed(c, ANSWER_BAD_GATEWAY);
        return true;
    }
    buf_move(&c->b2c, &c->bin, (size_t)used);
    if (c->respm.complete)
        response_done(c, c->client_keep);
    return used > 0 || c->resp != RESP_BODY;
}

static void client_shutdown(struct conn *c)
{
    if (c->client_shut)
        return;
    c->client_shut = true;
    if (c->ssl)
        SSL_shutdown(c->ssl);
    shutdown(c->cfd, SHUT_WR);
}

static bool tunnel_down_step(struct conn *c)
{
    size_t n = min_size(c->bin.len, buf_room(&c->b2c));
    if (n)
        buf_move(&c->b2c, &c->bin, n);
    if (c->backend_eof && !c->bin.len && !c->b2c.len)
        client_shutdown(c);
    if (c->client_shut && c->backend_shut)
        c->dead = true;
    return n > 0;
}

static bool response_step(struct conn *c)
{
    switch (c->resp) {
    case RESP_HEAD: return response_head_step(c);
    case RESP_BODY: return response_body_step(c);
    case RESP_TUNNEL: return tunnel_down_step(c);
    case RESP_NONE:
        if (c->bk == BK_READY && (c->bin.len || c->backend_eof))
            close_backend(c); /* idle backend closed or chattered: drop it */
        return false;
    }
    return false;
}

/* --- moving bytes --- */

static bool client_fill(struct conn *c)
{
    if (!c->c_readable || c->client_eof)
        return false;
    size_t room = buf_room(&c->cin);
    if (room == 0)
        return false;
    ssize_t n = client_recv(c, buf_end(&c->cin), room);
    if (n == -EAGAIN) {
        c->c_readable = false;
        return false;
    }
    if (n < 0) {
        c->dead = true;
        return false;
    }
    if (n == 0) {
        c->client_eof = true;
        return true;
    }
    c->cin.len += (size_t)n;
    c->c_readable = (size_t)n == room || (c->ssl && SSL_pending(c->ssl) > 0);
    touch(c);
    return true;
}

static void start_linger(struct conn *c)
{
    close_backend(c);
    client_shutdown(c);
    c->req = REQ_LINGER;
    c->resp = RESP_NONE;
    c->close_after_flush = false;
    c->deadline_ms = c->env->now_ms + LINGER_MS;
    if (c->client_eof)
        c->dead = true;
}

static bool client_flush(struct conn *c)
{
    bool progress = false;
    while (c->b2c.len) {
        ssize_t n = client_send(c, buf_start(&c->b2c), c->b2c.len);
        if (n == -EAGAIN)
            return progress;
        if (n <= 0) {
            c->dead = true;
            return false;
        }
        buf_consume(&c->b2c, (size_t)n);
        touch(c);
        progress = true;
    }
    if (c->close_after_flush) {
        start_linger(c);
        return true;
    }
    return progress;
}

static bool backend_fill(struct conn *c)
{
    if (c->bk != BK_READY || !c->b_readable || c->backend_eof)
        return false;
    size_t room = buf_room(&c->bin);
    if (room == 0)
        return false;
    ssize_t n = recv(c->bfd, buf_end(&c->bin), room, 0);
    if (n < 0 && errno == EAGAIN) {
        c->b_readable = false;
        return false;
    }
    if (n <= 0) {
        c->backend_eof = true; /* a reset counts as an end too; framing tells if it was early */
        return true;
    }
    c->bin.len += (size_t)n;
    c->b_readable = (size_t)n == room;
    touch(c);
    return true;
}

static bool backend_flush(struct conn *c)
{
    if (c->bk != BK_READY || c->c2b.len == 0)
        return false;
    ssize_t n = send(c->bfd, buf_start(&c->c2b), c->c2b.len, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN)
        return false;
    if (n <= 0) {
        if (c->resp == RESP_TUNNEL) {
            c->c2b.off = c->c2b.len = 0;
            c->backend_shut = true;
            return true;
        }
        backend_failed(c, ANSWER_UNREACHABLE);
        return true;
    }
    buf_consume(&c->c2b, (size_t)n);
    touch(c);
    return true;
}

static bool backend_connect_step(struct conn *c)
{
    const struct proxy_config *cfg = c->env->cfg;
    int rc = cfg->backend->finish(cfg->backend_ctx, c->bfd, c->bk_priv, &c->bk_want_write);
    if (rc == -EINPROGRESS)
        return false;
    if (rc < 0) {
        backend_failed(c, ANSWER_UNREACHABLE);
        return true;
    }
    c->bk = BK_READY;
    return true;
}

static bool handshake_step(struct conn *c)
{
    int rc = tls_handshake(c->ssl, &c->hs_want_write);
    if (rc == -EAGAIN)
        return false;
    if (rc < 0) {
        c->dead = true;
        return false;
    }
    c->handshaking = false;
    c->c_readable = true;
    return true;
}

/* --- epoll interest --- */

static void set_interest(struct conn *c, int fd, int tag, uint32_t want, uint32_t *have, bool *reg)
{
    if (fd < 0 || (want == *have && *reg == (want != 0)))
        return;
    struct epoll_event ev = {.events = want, .data.u64 = (uintptr_t)c | (uintptr_t)tag};
    int op = !want ? EPOLL_CTL_DEL : *reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->env->epfd, op, fd, &ev) < 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        c->dead = true;
        return;
    }
    *have = want;
    *reg = want != 0;
}

static void update_interest(struct conn *c)
{
    uint32_t cw = 0, bw = 0;
    if (c->handshaking) {
        cw = c->hs_want_write ? EPOLLOUT : EPOLLIN;
    } else {
        if (!c->client_eof && (c->cin.len < BUF_CAP || c->req == REQ_LINGER))
            cw |= EPOLLIN;
        if (c->b2c.len || c->read_wants_write)
            cw |= EPOLLOUT;
        if (c->write_wants_read && c->b2c.len)
            cw |= EPOLLIN;
    }
    if (c->bk == BK_CONNECTING)
        bw = c->bk_want_write ? EPOLLOUT : EPOLLIN;
    else if (c->bk == BK_READY) {
        if (!c->backend_eof && c->bin.len < BUF_CAP)
            bw |= EPOLLIN;
        if (c->c2b.len)
            bw |= EPOLLOUT;
    }
    set_interest(c, c->cfd, CONN_TAG_CLIENT, cw, &c->c_events, &c->c_registered);
    set_interest(c, c->bfd, CONN_TAG_BACKEND, bw, &c->b_events, &c->b_registered);
}

/* --- life cycle --- */

static void conn_free(struct conn *c)
{
    struct relay_env *env = c->env;
    close_backend(c);
    if (c->ssl)
        SSL_free(c->ssl);
    close(c->cfd);
    if (c->prev)
        c->prev->next = c->next;
    else
        env->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    for (struct conn **p = &env->again; c->in_again && *p; p = &(*p)->again_next) {
        if (*p == c) {
            *p = c->again_next;
            break;
        }
    }
    env->n_conns--;
    c->closed = true;
    c->next = env->freed;
    env->freed = c;
}

void conn_reap(struct relay_env *env)
{
    while (env->freed) {
        struct conn *c = env->freed;
        env->freed = c->next;
        free(c);
    }
}

/* Puts c on the list of connections driven again before the next wait. */
static void run_again(struct conn *c)
{
    if (c->in_again)
        return;
    c->in_again = true;
    c->again_next = c->env->again;
    c->env->again = c;
}

static void drive(struct conn *c)
{
    bool progress = true;
    for (int round = 0; round < 64 && progress && !c->dead; round++) {
        progress = false;
        if (c->handshaking && !handshake_step(c))
            break;
        progress |= client_fill(c);
        progress |= request_step(c);
        if (c->dead)
            break;
        if (c->bk == BK_CONNECTING)
            progress |= backend_connect_step(c);
        progress |= backend_flush(c);
        progress |= backend_fill(c);
        while (response_step(c) && !c->dead)
            progress = true; /* a whole response into b2c, then one write */
        progress |= client_flush(c);
    }
    if (c->dead) {
        conn_free(c);
        return;
    }
    update_interest(c);
    /* Stopped by the round limit while bytes still moved: the state may wait on no
     * event at all (cin full, c2b just flushed), so come back rather than stall. */
    if (progress)
        run_again(c);
    /* epoll cannot tell about bytes OpenSSL already holds: come back for them. */
    if (c->ssl && c->c_readable && !c->client_eof && buf_room(&c->cin) > 0 &&
        SSL_pending(c->ssl) > 0)
        run_again(c);
}

void conn_run_again(struct relay_env *env)
{
    for (int budget = 1024; env->again && budget > 0; budget--) {
        struct conn *c = env->again;
        env->again = c->again_next;
        c->in_again = false;
        drive(c);
    }
}

int conn_new(struct relay_env *env, int fd, const char *peer)
{
    struct conn *c = malloc(sizeof(*c));
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    memset(c, 0, offsetof(struct conn, cin));
    c->cin.off = c->cin.len = c->c2b.off = c->c2b.len = 0;
    c->bin.off = c->bin.len = c->b2c.off = c->b2c.len = 0;
    c->env = env;
    c->cfd = fd;
    c->bfd = -1;
    c->c_readable = true;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    if (env->cfg->tls) {
        c->ssl = SSL_new(env->cfg->tls);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
            SSL_free(c->ssl);
            free(c);
            close(fd);
            return -ENOMEM;
        }
        c->handshaking = true;
    }
    c->next = env->conns;
    if (c->next)
        c->next->prev = c;
    env->conns = c;
    env->n_conns++;
    set_deadline(c, opts(c)->header_timeout_s);
    drive(c);
    return 0;
}

void conn_event(struct conn *c, int tag, uint32_t events)
{
    if (c->closed)
        return;
    if (tag == CONN_TAG_CLIENT) {
        if (events & EPOLLERR) {
            conn_free(c);
            return;
        }
        if (events & (EPOLLIN | EPOLLHUP))
            c->c_readable = true;
        if ((events & EPOLLOUT) && c->read_wants_write)
            c->c_readable = true;
    } else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        c->b_readable = true;
    }
    drive(c);
}

void conn_sweep(struct relay_env *env)
{
    struct conn *c = env->conns;
    while (c) {
        struct conn *next = c->next;
        if (c->deadline_ms <= env->now_ms) {
            bool slow_head = c->req == REQ_HEAD && c->cin.len && !c->b2c.len && !c->handshaking;
            bool slow_backend = c->bk == BK_CONNECTING && c->resp == RESP_HEAD && !c->b2c.len;
            if (slow_head) {
                answer(c, ANSWER_TIMEOUT, false);
                drive(c);
            } else if (slow_backend) {
                log_info("%s %s--%u: the sandbox did not answer in time", c->peer,
                         c->target.sandbox, c->target.port);
                backend_failed(c, ANSWER_UNREACHABLE);
                drive(c);
            } else {
                conn_free(c);
            }
        }
        c = next;
    }
}

void conn_close_all(struct relay_env *env)
{
    while (env->conns)
        conn_free(env->conns);
    conn_reap(env);
}
