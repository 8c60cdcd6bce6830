/* WebSocket client over a plain TCP socket: see cli_ws.h. */
#include "cli_ws.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HEAD_MAX 16384              /* bytes of the upgrade answer's head */
#define ERR_BODY_MAX 65536          /* bytes read of a refusal's body */
#define HANDSHAKE_TIMEOUT_S 75      /* the server may wait 30 s for the agent */
#define SEND_HIGH_WATER (4u << 20)  /* stop reading input above this queue */

struct cli_ws {
    int fd;
    wslay_event_context_ptr ctx;
    const struct cli_ws_handler *h;
    void *arg;
    uint8_t *pre;                   /* bytes read past the handshake head */
    size_t pre_len, pre_off;
    bool eof;
    uint16_t close_code;
    char close_reason[128];
    char error[256];
};

int cli_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };

            poll(&pfd, 1, -1);
            continue;
        }
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- connecting ---- */

struct target {
    char host[256];
    char port[8];
    char base[512];                 /* the URL's path without a trailing '/' */
};

static int parse_url(const char *url, struct target *t, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int rc = -1;

    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ||
        curl_url_get(u, CURLUPART_PATH, &path, 0)) {
        snprintf(err, errlen, "bad API URL '%s'", url);
        goto out;
    }
    if (strcasecmp(scheme, "http")) {
        snprintf(err, errlen, "streaming needs an http:// API URL (%s:// is not supported yet)",
                 scheme);
        goto out;
    }
    /* [::1] -> ::1 for getaddrinfo */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    size_t pl = strlen(path);
    while (pl && path[pl - 1] == '/')
        path[--pl] = '\0';
    if (strlen(host) >= sizeof(t->host) || strlen(port) >= sizeof(t->port) ||
        pl >= sizeof(t->base)) {
        snprintf(err, errlen, "API URL too long");
        goto out;
    }
    strcpy(t->host, host);
    strcpy(t->port, port);
    strcpy(t->base, path);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

static int tcp_connect(const struct target *t, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
    int fd = -1, gai = getaddrinfo(t->host, t->port, &hints, &res), saved = 0;

    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", t->host, gai_strerror(gai));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot reach sbx-api at %s:%s: %s", t->host, t->port,
                 strerror(saved ? saved : EHOSTUNREACH));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ---- the upgrade ---- */

static void accept_for(const char *key, char out[64])
{
    unsigned char sha[SHA_DIGEST_LENGTH];
    char buf[128];

    snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)buf, strlen(buf), sha);
    EVP_EncodeBlock((unsigned char *)out, sha, sizeof(sha));
}

static int make_key(char out[32])
{
    unsigned char raw[16];

    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
        return -1;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
    return 0;
}

static int send_request(int fd, const struct target *t, const char *path, const char *api_key,
                        const char *key)
{
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "GET %s%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%sUser-Agent: sbx\r\n\r\n",
                     t->base, path, t->host, t->port, key,
                     api_key ? "X-Api-Key: " : "", api_key ? api_key : "", api_key ? "\r\n" : "");

    if (n < 0 || (size_t)n >= sizeof(req))
        return -ENAMETOOLONG;
    return cli_write_all(fd, req, (size_t)n);
}

/* Reads until the blank line ending the head; *head_len is its length
 * including the blank line, *len what was read in all. */
static int read_head(int fd, char *buf, size_t cap, size_t *len, size_t *head_len)
{
    *len = 0;
    while (*len < cap - 1) {
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -ECONNRESET;
        *len += (size_t)n;
        buf[*len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            *head_len = (size_t)(end - buf) + 4;
            return 0;
        }
    }
    return -E2BIG;
}

/* The value of header name in head (its first line skipped), copied to out. */
static bool header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *line = strstr(head, "\r\n");

    while (line && line[2] != '\r' && line[2]) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (!end)
            return false;
        if ((size_t)(end - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(end - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= outlen)
                return false;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        line = end;
    }
    return false;
}

/* A refusal: read its body (Content-Length or to EOF) and describe it. */
static void describe_refusal(int fd, const char *buf, size_t len, size_t head_len,
                             long status, char *err, size_t errlen)
{
    char cl[32], *body = malloc(ERR_BODY_MAX + 1);
    size_t want = ERR_BODY_MAX, have = len - head_len;

    if (!body) {
        snprintf(err, errlen, "sbx-api answered HTTP %ld", status);
        return;
    }
    if (header(buf, "Content-Length", cl, sizeof(cl))) {
        unsigned long v = strtoul(cl, NULL, 10);
        want = v < ERR_BODY_MAX ? v : ERR_BODY_MAX;
    }
    if (have > want)
        have = want;
    memcpy(body, buf + head_len, have);
    while (have < want) {
        ssize_t n = read(fd, body + have, want - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    body[have] = '\0';
    json_t *j = json_loads(body, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (type && msg)
        snprintf(err, errlen, "%s: %s", type, msg);
    else
        snprintf(err, errlen, "sbx-api answered HTTP %ld instead of a WebSocket upgrade",
                 status);
    json_decref(j);
    free(body);
}

static int handshake(struct cli_ws *ws, const struct target *t, const char *path,
                     const char *api_key, long *http_status, char *err, size_t errlen)
{
    char key[32], want[64], got[128], *buf = malloc(HEAD_MAX);
    size_t len = 0, head_len = 0;
    long status;
    int rc = -1;

    if (!buf || make_key(key)) {
        snprintf(err, errlen, "out of memory or randomness");
        goto out;
    }
    if (send_request(ws->fd, t, path, api_key, key) ||
        read_head(ws->fd, buf, HEAD_MAX, &len, &head_len)) {
        snprintf(err, errlen, "WebSocket upgrade to sbx-api at %s:%s failed: %s", t->host,
                 t->port, errno == EAGAIN ? "timed out" : "connection lost or bad answer");
        goto out;
    }
    if (sscanf(buf, "HTTP/1.%*1[01] %ld", &status) != 1) {
        snprintf(err, errlen, "sbx-api's answer is not HTTP");
        goto out;
    }
    if (status != 101) {
        *http_status = status;
        describe_refusal(ws->fd, buf, len, head_len, status, err, errlen);
        goto out;
    }
    accept_for(key, want);
    if (!header(buf, "Upgrade", got, sizeof(got)) || strcasecmp(got, "websocket")) {
        snprintf(err, errlen, "sbx-api's WebSocket upgrade answer lacks Upgrade: websocket");
        goto out;
    }
    if (!header(buf, "Sec-WebSocket-Accept", got, sizeof(got)) || strcmp(got, want)) {
        snprintf(err, errlen, "sbx-api's WebSocket upgrade answer has a wrong "
                              "Sec-WebSocket-Accept");
        goto out;
    }
    if (len > head_len) {
        ws->pre = malloc(len - head_len);
        if (!ws->pre)
            goto out;
        memcpy(ws->pre, buf + head_len, len - head_len);
        ws->pre_len = len - head_len;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* ---- wslay callbacks ---- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    struct cli_ws *ws = user;
    ssize_t n;

    (void)flags;
    if (ws->pre_off < ws->pre_len) {
        size_t k = ws->pre_len - ws->pre_off;
        if (k > len)
            k = len;
        memcpy(buf, ws->pre + ws->pre_off, k);
        ws->pre_off += k;
        return (ssize_t)k;
    }
    do
        n = recv(ws->fd, buf, len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    ws->eof = true;
    if (n < 0)
        snprintf(ws->error, sizeof(ws->error), "connection to sbx-api: %s", strerror(errno));
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                       int flags, void *user)
{
    struct cli_ws *ws = user;
    ssize_t n;

    (void)flags;
    do
        n = send(ws->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    ws->eof = true;
    snprintf(ws->error, sizeof(ws->error), "connection to sbx-api: %s", strerror(errno));
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

/* RFC 6455 5.3: masking keys must be unpredictable. */
static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)user;
    if (getrandom(buf, len, 0) != (ssize_t)len) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
    struct cli_ws *ws = user;

    (void)ctx;
    if (a->opcode == WSLAY_TEXT_FRAME && ws->h->on_text)
        ws->h->on_text(ws, (const char *)a->msg, a->msg_length, ws->arg);
    else if (a->opcode == WSLAY_BINARY_FRAME && ws->h->on_binary)
        ws->h->on_binary(ws, a->msg, a->msg_length, ws->arg);
    else if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->close_code = a->status_code;
        if (a->msg_length > 2) {
            size_t n = a->msg_length - 2;
            if (n >= sizeof(ws->close_reason))
                n = sizeof(ws->close_reason) - 1;
            memcpy(ws->close_reason, a->msg + 2, n);
            ws->close_reason[n] = '\0';
        }
    }
}

int cli_ws_connect(const struct cli_conn *conn, const char *path,
                   const struct cli_ws_handler *h, void *arg, struct cli_ws **out,
                   long *http_status, char *err, size_t errlen)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = on_recv, .send_callback = on_send,
        .genmask_callback = on_genmask, .on_msg_recv_callback = on_msg,
    };
    struct timeval tv = { .tv_sec = HANDSHAKE_TIMEOUT_S };
    struct cli_ws *ws = calloc(1, sizeof(*ws));
    struct target t;

    *out = NULL;
    *http_status = 0;
    if (!ws) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ws->fd = -1;
    ws->h = h;
    ws->arg = arg;
    if (parse_url(conn->url, &t, err, errlen))
        goto fail;
    ws->fd = tcp_connect(&t, err, errlen);
    if (ws->fd < 0)
        goto fail;
    setsockopt(ws->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(ws->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (handshake(ws, &t, path, conn->key && *conn->key ? conn->key : NULL, http_status,
                  err, errlen))
        goto fail;
    if (wslay_event_context_client_init(&ws->ctx, &cbs, ws)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, 64u << 20);
    *out = ws;
    return 0;
fail:
    cli_ws_free(ws);
    return -1;
}

int cli_ws_open_sandbox(const struct cli_conn *conn, const char *name, const char *suffix,
                        const struct cli_ws_handler *h, void *arg, struct cli_ws **out)
{
    char path[600], err[512];
    long status;

    *out = NULL;
    if (cli_path(path, sizeof(path), "/v1/sandboxes/", name, suffix)) {
        fprintf(stderr, "sbx: bad name '%s'\n", name);
        return 2;
    }
    if (cli_ws_connect(conn, path, h, arg, out, &status, err, sizeof(err))) {
        fprintf(stderr, "sbx: %s\n", err);
        return 1;
    }
    return 0;
}

void cli_ws_free(struct cli_ws *ws)
{
    if (!ws)
        return;
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    if (ws->fd >= 0)
        close(ws->fd);
    free(ws->pre);
    free(ws);
}

/* ---- sending ---- */

static bool closing(const struct cli_ws *ws)
{
    return wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx);
}

static int queue(struct cli_ws *ws, uint8_t opcode, const uint8_t *msg, size_t len)
{
    struct wslay_event_msg m = { .opcode = opcode, .msg = msg, .msg_length = len };

    if (closing(ws))
        return 0;       /* the stream is ending: nothing more goes out */
    return wslay_event_queue_msg(ws->ctx, &m) ? -1 : 0;     /* wslay copies msg */
}

int cli_ws_send_text(struct cli_ws *ws, const char *text)
{
    return queue(ws, WSLAY_TEXT_FRAME, (const uint8_t *)text, strlen(text));
}

int cli_ws_send_json(struct cli_ws *ws, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    int rc = text ? cli_ws_send_text(ws, text) : -1;

    free(text);
    json_decref(obj);
    return rc;
}

int cli_ws_send_binary(struct cli_ws *ws, int prefix, const void *data, size_t len)
{
    uint8_t *buf;
    size_t off = prefix >= 0 ? 1 : 0;
    int rc;

    if (!off)
        return queue(ws, WSLAY_BINARY_FRAME, data, len);
    buf = malloc(len + 1);
    if (!buf)
        return -1;
    buf[0] = (uint8_t)prefix;
    memcpy(buf + 1, data, len);
    rc = queue(ws, WSLAY_BINARY_FRAME, buf, len + 1);
    free(buf);
    return rc;
}

int cli_ws_forward_input(struct cli_ws *ws, struct cli_ws_fd *f, int prefix)
{
    static char buf[65536];     /* one message at a time: the loop is single-threaded */
    ssize_t n = read(f->fd, buf, sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n > 0)
        return cli_ws_send_binary(ws, prefix, buf, (size_t)n) ? -1 : 0;
    f->fd = -1;
    return 1;
}

int cli_ws_close(struct cli_ws *ws, uint16_t code, const char *reason)
{
    if (closing(ws))
        return 0;
    return wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason,
                                   reason ? strlen(reason) : 0) ? -1 : 0;
}

uint16_t cli_ws_close_code(const struct cli_ws *ws)
{
    return ws->close_code;
}

const char *cli_ws_close_reason(const struct cli_ws *ws)
{
    return ws->close_reason;
}

const char *cli_ws_error(const struct cli_ws *ws)
{
    return ws->error;
}

/* ---- the loop ---- */

static bool done(struct cli_ws *ws)
{
    return ws->eof || (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx));
}

int cli_ws_loop(struct cli_ws *ws, struct cli_ws_fd *fds, size_t nfds, void *arg)
{
    struct pollfd pfd[1 + 16];
    size_t map[16];

    if (nfds > 16)
        return -1;
    if (ws->pre_len && wslay_event_recv(ws->ctx) && !ws->eof) {
        snprintf(ws->error, sizeof(ws->error), "bad WebSocket data from sbx-api");
        return -1;
    }
    while (!done(ws)) {
        bool full = wslay_event_get_queued_msg_length(ws->ctx) > SEND_HIGH_WATER;
        bool closing = wslay_event_get_close_sent(ws->ctx);
        size_t n = 1;

        pfd[0] = (struct pollfd){ .fd = ws->fd, .events = 0 };
        if (wslay_event_want_read(ws->ctx))
            pfd[0].events |= POLLIN;
        if (wslay_event_want_write(ws->ctx))
            pfd[0].events |= POLLOUT;
        for (size_t i = 0; i < nfds; i++) {
            if (fds[i].fd < 0 || closing || (fds[i].throttle && full))
                continue;
            map[n - 1] = i;
            pfd[n++] = (struct pollfd){ .fd = fds[i].fd, .events = fds[i].events };
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(ws->error, sizeof(ws->error), "poll: %s", strerror(errno));
            return -1;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (wslay_event_recv(ws->ctx) && !ws->eof) {
                snprintf(ws->error, sizeof(ws->error), "bad WebSocket data from sbx-api");
                return -1;
            }
        }
        for (size_t k = 1; k < n && !done(ws); k++) {
            struct cli_ws_fd *f = &fds[map[k - 1]];

            if (!pfd[k].revents || f->fd != pfd[k].fd)
                continue;
            int rc = f->ready(ws, f, pfd[k].revents, arg);
            if (rc < 0) {
                if (!ws->error[0])
                    snprintf(ws->error, sizeof(ws->error), "out of memory");
                return -1;
            }
            if (rc > 0)
                return 0;
        }
        if (!ws->eof && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) &&
            !ws->eof) {
            snprintf(ws->error, sizeof(ws->error), "sending to sbx-api failed");
            return -1;
        }
    }
    if (wslay_event_get_close_received(ws->ctx)) {
        ws->error[0] = '\0';   /* the peer may hang up before our close reply */
        return 0;
    }
    if (ws->eof && !ws->error[0])
        snprintf(ws->error, sizeof(ws->error), "sbx-api closed the connection");
    return ws->error[0] ? -1 : 0;
}
