/* WebSocket sessions on wslay; the handshake key with OpenSSL. */
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws {
    wslay_event_context_ptr ctx;
    int fd;
    uint8_t *extra;             /* bytes read before the upgrade, consumed first */
    size_t extra_len, extra_off;
    const struct ws_handlers *h;
    void *arg;
    bool gone;                  /* the socket failed or reached its end */
    /* wslay sends control frames ahead of queued messages: a close is held
     * back until the messages before it are out. */
    bool close_pending;
    uint16_t close_code;
    char close_reason[124];
};

int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN])
{
    unsigned char raw[32], digest[SHA_DIGEST_LENGTH];
    char buf[128];
    size_t klen;
    int n;

    if (!client_key)
        return -EINVAL;
    klen = strlen(client_key);
    /* 16 bytes in base64 are 24 characters. */
    if (klen != 24 || EVP_DecodeBlock(raw, (const unsigned char *)client_key, (int)klen) != 18)
        return -EINVAL;
    memcpy(buf, client_key, klen);
    memcpy(buf + klen, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1((const unsigned char *)buf, klen + sizeof(WS_GUID) - 1, digest);
    n = EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest));
    return n == WS_ACCEPT_LEN - 1 ? 0 : -EINVAL;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    struct ws *ws = user;
    ssize_t n;

    (void)flags;
    if (ws->h->can_read && !ws->h->can_read(ws->arg)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (ws->extra_off < ws->extra_len) {
        n = (ssize_t)(ws->extra_len - ws->extra_off);
        if ((size_t)n > len)
            n = (ssize_t)len;
        memcpy(buf, ws->extra + ws->extra_off, (size_t)n);
        ws->extra_off += (size_t)n;
        return n;
    }
    do
        n = recv(ws->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n <= 0) {
        ws->gone = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct ws *ws = user;
    ssize_t n;

    do
        n = send(ws->fd, data, len, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n < 0) {
        ws->gone = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
    struct ws *ws = user;

    (void)ctx;
    if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME)
        ws->h->on_message(ws->arg, a->opcode == WSLAY_TEXT_FRAME, a->msg, a->msg_length);
    else if (a->opcode == WSLAY_CONNECTION_CLOSE && ws->h->on_close)
        ws->h->on_close(ws->arg, a->status_code ? a->status_code : 1005);
    /* Pings are answered by wslay itself. */
}

struct ws *ws_new(int fd, const void *extra, size_t extra_len, const struct ws_handlers *h,
                  void *arg)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = on_recv, .send_callback = on_send, .on_msg_recv_callback = on_msg,
    };
    struct ws *ws = calloc(1, sizeof(*ws));
    int fl = fcntl(fd, F_GETFL);

    if (!ws)
        return NULL;
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail;
    ws->fd = fd;
    ws->h = h;
    ws->arg = arg;
    if (extra_len) {
        ws->extra = malloc(extra_len);
        if (!ws->extra)
            goto fail;
        memcpy(ws->extra, extra, extra_len);
        ws->extra_len = extra_len;
    }
    if (wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0)
        goto fail;
    wslay_event_config_set_max_recv_msg_length(ws->ctx, WS_MAX_MESSAGE);
    return ws;
fail:
    free(ws->extra);
    free(ws);
    return NULL;
}

void ws_free(struct ws *ws)
{
    if (!ws)
        return;
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    free(ws->extra);
    free(ws);
}

int ws_send(struct ws *ws, bool text, int prefix, const void *data, size_t len)
{
    struct wslay_event_msg m = { .opcode = text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME };
    uint8_t *buf = NULL;
    int rc;

    if (prefix >= 0) {
        buf = malloc(len + 1);
        if (!buf)
            return -ENOMEM;
        buf[0] = (uint8_t)prefix;
        memcpy(buf + 1, data, len);
        m.msg = buf;
        m.msg_length = len + 1;
    } else {
        m.msg = data;
        m.msg_length = len;
    }
    /* wslay copies the message. */
    rc = wslay_event_queue_msg(ws->ctx, &m);
    free(buf);
    return rc == 0 ? 0 : -EPIPE;
}

int ws_send_json_text(struct ws *ws, const char *text)
{
    return ws_send(ws, true, -1, text, strlen(text));
}

int ws_ping(struct ws *ws)
{
    struct wslay_event_msg m = { .opcode = WSLAY_PING, .msg = (const uint8_t *)"", .msg_length = 0 };

    return wslay_event_queue_msg(ws->ctx, &m) == 0 ? 0 : -EPIPE;
}

int ws_close(struct ws *ws, uint16_t code, const char *reason)
{
    if (ws->close_pending || wslay_event_get_close_sent(ws->ctx))
        return 0;
    ws->close_pending = true;
    ws->close_code = code;
    /* A control frame carries at most 125 bytes: the code and 123 of reason. */
    snprintf(ws->close_reason, sizeof(ws->close_reason), "%s", reason ? reason : "");
    return 0;
}

/* Queues the held-back close once nothing else waits. */
static void flush_close(struct ws *ws)
{
    if (!ws->close_pending || wslay_event_get_queued_msg_count(ws->ctx) > 0)
        return;
    ws->close_pending = false;
    wslay_event_queue_close(ws->ctx, ws->close_code, (const uint8_t *)ws->close_reason,
                            strlen(ws->close_reason));
}

short ws_events(struct ws *ws)
{
    short ev = 0;

    if (ws->gone)
        return 0;
    flush_close(ws);
    if (wslay_event_want_read(ws->ctx) && (!ws->h->can_read || ws->h->can_read(ws->arg)))
        ev |= POLLIN;
    if (wslay_event_want_write(ws->ctx))
        ev |= POLLOUT;
    return ev;
}

int ws_io(struct ws *ws, short revents)
{
    if (ws->gone)
        return -1;
    /* Bytes read with the upgrade request may be waiting without the fd being readable. */
    if ((revents & (POLLIN | POLLHUP | POLLERR)) || ws->extra_off < ws->extra_len) {
        if (wslay_event_want_read(ws->ctx) && wslay_event_recv(ws->ctx) != 0)
            ws->gone = true;
    }
    if (!ws->gone && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
        ws->gone = true;
    flush_close(ws);
    if (!ws->gone && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
        ws->gone = true;
    return ws->gone ? -1 : 0;
}

size_t ws_queued(struct ws *ws)
{
    return wslay_event_get_queued_msg_length(ws->ctx);
}

bool ws_finished(struct ws *ws)
{
    return ws->gone || (!ws->close_pending && !wslay_event_want_read(ws->ctx) &&
                        !wslay_event_want_write(ws->ctx));
}
