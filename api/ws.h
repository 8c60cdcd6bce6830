/* Server side of RFC 6455 over an upgraded, non-blocking socket, on wslay's
 * event API: the handshake's accept key, message callbacks, queued sends
 * whose total the caller bounds, pings, and the close handshake. */
#ifndef SBX_API_WS_H
#define SBX_API_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_ACCEPT_LEN 29    /* base64 of a SHA-1, with NUL */
#define WS_MAX_MESSAGE (1u << 20)

struct ws;

struct ws_handlers {
    /* A whole text or binary message from the client. */
    void (*on_message)(void *arg, bool text, const uint8_t *data, size_t len);
    /* The client sent a close frame (code 1005 when it carried none). */
    void (*on_close)(void *arg, uint16_t code);
    /* Whether the session can take more input now (backpressure); NULL: always. */
    bool (*can_read)(void *arg);
};

/* The Sec-WebSocket-Accept value for the client's Sec-WebSocket-Key.
 * Returns 0, or -EINVAL for a key that is not 16 bytes in base64. */
int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN]);

/* A session on fd (made non-blocking) with extra bytes the HTTP layer already
 * read. NULL when out of memory. */
struct ws *ws_new(int fd, const void *extra, size_t extra_len, const struct ws_handlers *h,
                  void *arg);
void ws_free(struct ws *ws);

/* Queues a message; a binary one may carry a prefix byte (prefix >= 0). */
int ws_send(struct ws *ws, bool text, int prefix, const void *data, size_t len);
int ws_send_json_text(struct ws *ws, const char *text);
int ws_ping(struct ws *ws);
/* Queues a close frame; nothing more is sent after it. */
int ws_close(struct ws *ws, uint16_t code, const char *reason);

/* poll events the session wants on its fd. */
short ws_events(struct ws *ws);
/* Runs reads and writes after poll; returns 0, or -1 when the connection is gone. */
int ws_io(struct ws *ws, short revents);
/* Bytes queued for the client. */
size_t ws_queued(struct ws *ws);
/* Nothing more to read or write (close handshake done, or the peer gone). */
bool ws_finished(struct ws *ws);

#endif
