/* Shared between the data-plane files: the context, one looked-up sandbox,
 * typed errors with their HTTP status, agent connections that shutdown can
 * interrupt, and a non-blocking outbound buffer to the agent. */
#ifndef SBX_API_DATAPLANE_INT_H
#define SBX_API_DATAPLANE_INT_H

#include "agent_client.h"
#include "dataplane.h"
#include "store.h"

#include <jansson.h>
#include <pthread.h>
#include <sbx/svc_token.h>
#include <stdbool.h>
#include <stdint.h>

#define DP_AGENT_WAIT_MS 30000      /* the agent must answer this long after the VMM's start */

struct dp_fd;

struct dataplane {
    struct dataplane_config cfg;
    struct svc_token_key key;
    pthread_mutex_t mu;             /* guards the fields below */
    pthread_cond_t idle;
    struct dp_fd *fds;              /* sockets shutdown() must interrupt */
    int streams;                    /* stream threads running */
    bool stopping;
};

/* A sandbox as the data plane needs it, copied out from under the lock. */
struct dp_target {
    char id[STORE_ID_LEN];
    char name[STORE_NAME_LEN];
    char vsock[STORE_PATH_LEN + 64];
    char snapshot_id[STORE_ID_LEN]; /* what it was made from (its image config) */
    int64_t started_ms;
    int64_t last_touch_ms;          /* monotonic, for dp_touch_maybe */
};

struct dperr {
    int status;
    const char *type;
    char message[512];
};

int dp_fail(struct dperr *e, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An agent errno as an API error (ENOENT 404, EEXIST 409, EACCES 403, ...). */
int dp_fail_errno(struct dperr *e, int neg_errno, const char *agent_msg, const char *what);
/* {"error":{"type","message"}}. New reference. */
json_t *dp_error_json(const struct dperr *e);

/* Looks name (or id) up under the lock; it must be running. Counts as activity. */
int dp_lookup(struct dataplane *dp, const char *name, struct dp_target *t, struct dperr *e);
/* Records activity (under the lock). */
void dp_touch(struct dataplane *dp, struct dp_target *t);
/* dp_touch at most once a second. */
void dp_touch_maybe(struct dataplane *dp, struct dp_target *t);
int64_t dp_mono_ms(void);

/* A fresh agent connection (HELLO done), retried until DP_AGENT_WAIT_MS after
 * the VMM's start; registered so dataplane_shutdown can interrupt it. */
int dp_agent_open(struct dataplane *dp, const struct dp_target *t, struct agent_client *c,
                  struct dperr *e);
void dp_agent_close(struct dataplane *dp, struct agent_client *c);
/* Registers any other socket for interruption (a stream's client socket). */
int dp_fd_add(struct dataplane *dp, int fd);
void dp_fd_del(struct dataplane *dp, int fd);

/* Stream threads: counted so shutdown can wait for them. */
bool dp_stream_enter(struct dataplane *dp);
void dp_stream_leave(struct dataplane *dp);

/* Bytes waiting to be written to a non-blocking socket. */
struct dp_outbuf {
    uint8_t *data;
    size_t len, cap;
};
/* Grows *data (*cap bytes, doubling from 4 KiB) to hold at least need bytes; 0 or
 * -ENOMEM (*data left as it was). */
int dp_reserve(uint8_t **data, size_t *cap, size_t need);
int dp_outbuf_frame(struct dp_outbuf *b, uint16_t type, uint32_t id, const void *p, size_t n);
int dp_outbuf_raw(struct dp_outbuf *b, const void *p, size_t n);
/* Writes what it can; returns 0 or negative errno (-EAGAIN is not an error: 0). */
int dp_outbuf_flush(struct dp_outbuf *b, int fd);
void dp_outbuf_free(struct dp_outbuf *b);

/* ---- handlers (a JSON reply in *out, or an error in e) ---- */

struct dp_call {
    struct dataplane *dp;
    struct MHD_Connection *conn;
    const char *name;
    const char *body;
    size_t body_len;
};

int dp_exec_oneshot(struct dp_call *c, json_t **out, struct dperr *e);
int dp_files_stat(struct dp_call *c, json_t **out, struct dperr *e);
int dp_files_list(struct dp_call *c, json_t **out, struct dperr *e);
int dp_files_mkdir(struct dp_call *c, json_t **out, struct dperr *e);
int dp_files_delete(struct dp_call *c, json_t **out, struct dperr *e);
int dp_service_url(struct dp_call *c, json_t **out, struct dperr *e);
int dp_service_key_load(struct dataplane *dp);

/* Parses a one-shot exec body (stream false) or a WebSocket start message as
 * the handlers do, then drops it: for the fuzzer. 0, or -1 with e filled. */
int dp_exec_parse(const char *body, size_t len, bool stream, struct dperr *e);
/* The bytes as a JSON string, invalid UTF-8 (and NUL) replaced by U+FFFD. */
json_t *dp_utf8_json(const uint8_t *p, size_t n);

/* The path query argument: present and absolute. */
int dp_query_path(struct MHD_Connection *conn, const char **path, struct dperr *e);
/* A 0/1 query flag. */
bool dp_query_flag(struct MHD_Connection *conn, const char *key);
/* Query argument key as a whole number in base, min to max: 0 with *out, 1 when it is
 * absent, -1 when it is not such a number (the caller says what it must be). */
int dp_query_long(struct MHD_Connection *conn, const char *key, int base, long min, long max,
                  long *out);

/* ---- streaming: files ---- */

struct dp_upload;
/* Starts a PUT: checks, connects, sends FILE_WRITE. NULL with e filled on failure. */
struct dp_upload *dp_upload_begin(struct dataplane *dp, struct MHD_Connection *conn,
                                  const char *name, struct dperr *e);
/* A body chunk; on a failure the rest of the body is drained and e reported at the end. */
void dp_upload_data(struct dp_upload *u, const void *p, size_t n);
/* The body ended: finishes the write; returns the reply or fills e. */
int dp_upload_end(struct dp_upload *u, json_t **out, struct dperr *e);
void dp_upload_free(struct dp_upload *u);

/* Queues the GET response (streamed from the agent) or fills e. */
int dp_download(struct dataplane *dp, struct MHD_Connection *conn, const char *name,
                struct dperr *e);

/* ---- streaming: WebSocket upgrades (exec/ws and tunnel) ---- */

enum dp_ws_kind { DP_WS_EXEC, DP_WS_TUNNEL };
/* Checks the sandbox and the upgrade headers and queues the 101 response whose
 * session runs on its own thread. Fills e when it answered nothing. */
int dp_upgrade(struct dataplane *dp, struct MHD_Connection *conn, const char *name,
               enum dp_ws_kind kind, struct dperr *e);

/* The sessions, on their thread, on the upgraded socket fd (not theirs to close)
 * with bytes already read after the request. */
void dp_exec_session(struct dataplane *dp, struct dp_target *t, int fd, const void *extra,
                     size_t extra_len);
void dp_tunnel_session(struct dataplane *dp, struct dp_target *t, int fd, const void *extra,
                       size_t extra_len, unsigned port);

#endif
