/* sbx's WebSocket client (RFC 6455) for exec, console and tunnel: a plain TCP
 * connection to sbx-api, the HTTP/1.1 upgrade done here (Sec-WebSocket-Accept
 * checked with SHA-1), frames through wslay, and a poll() loop that also
 * watches the caller's file descriptors. */
#ifndef SBX_CLI_WS_H
#define SBX_CLI_WS_H

#include "cli_http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli_ws;

struct cli_ws_handler {
    /* A whole text or binary message from the server (may be NULL). */
    void (*on_text)(struct cli_ws *ws, const char *msg, size_t len, void *arg);
    void (*on_binary)(struct cli_ws *ws, const uint8_t *msg, size_t len, void *arg);
};

/* One of the caller's descriptors watched by cli_ws_loop. */
struct cli_ws_fd {
    int fd;                     /* -1: not watched (a callback may set it) */
    short events;               /* POLLIN, ... */
    bool throttle;              /* not watched while much is queued to send */
    /* <0 error (ends the loop), 0 go on, 1 end the loop now. */
    int (*ready)(struct cli_ws *ws, struct cli_ws_fd *f, short revents, void *arg);
};

/* Connects to conn->url, upgrades GET path. Returns 0 with *out set, or -1
 * with a message in err. When sbx-api answered but did not upgrade, -1 with
 * *http_status set (0 otherwise) and its JSON error's "type: message" in err. */
int cli_ws_connect(const struct cli_conn *conn, const char *path,
                   const struct cli_ws_handler *h, void *arg, struct cli_ws **out,
                   long *http_status, char *err, size_t errlen);
void cli_ws_free(struct cli_ws *ws);

/* cli_ws_connect to /v1/sandboxes/NAME SUFFIX (e.g. "/exec/ws"), saying on stderr why
 * it failed. Returns 0 with *out set, 2 for a name that makes no path, 1 when it could
 * not connect or sbx-api refused (an exit status for the command). */
int cli_ws_open_sandbox(const struct cli_conn *conn, const char *name, const char *suffix,
                        const struct cli_ws_handler *h, void *arg, struct cli_ws **out);

/* Runs until the close handshake is done, the server went away, or a
 * callback ended it. Returns 0, or -1 on a transport error (cli_ws_error). */
int cli_ws_loop(struct cli_ws *ws, struct cli_ws_fd *fds, size_t nfds, void *arg);

/* Queue messages; sent by cli_ws_loop. Return 0 or -1 (closing or no memory). */
int cli_ws_send_text(struct cli_ws *ws, const char *text);
int cli_ws_send_json(struct cli_ws *ws, json_t *obj);     /* takes obj's reference */
/* A binary message: the byte prefix (if >= 0) then data. */
int cli_ws_send_binary(struct cli_ws *ws, int prefix, const void *data, size_t len);
int cli_ws_close(struct cli_ws *ws, uint16_t code, const char *reason);

/* For a cli_ws_fd's ready callback: reads what f->fd has and queues it as one binary
 * message with the byte prefix (if >= 0). Returns 0 (queued, or nothing to read now),
 * -1 when it could not queue, 1 at end of input or a read error (f->fd is -1 then;
 * the caller says so to the server its own way). */
int cli_ws_forward_input(struct cli_ws *ws, struct cli_ws_fd *f, int prefix);

/* After the loop: the close code the server sent (0 if none) and its reason. */
uint16_t cli_ws_close_code(const struct cli_ws *ws);
const char *cli_ws_close_reason(const struct cli_ws *ws);
/* The last transport error, "" if none. */
const char *cli_ws_error(const struct cli_ws *ws);

/* write() all of buf to a possibly non-blocking fd. Returns 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t len);

#endif
