/* One client connection and the backend connection serving it: buffers, state, and
 * the steps that move bytes between them. Driven by the event loop in proxy.c. */
#ifndef ROUTER_CONN_H
#define ROUTER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy.h"

/* Shared by the event loop and the connections. */
struct relay_env {
    const struct proxy_config *cfg;
    int epfd;
    uint64_t now_ms;     /* monotonic, updated once per loop turn */
    struct conn *conns;  /* all live connections (for timeouts) */
    struct conn *again;  /* connections to drive again without an event (TLS bytes
                          * already decrypted but not yet taken) */
    int n_conns;
    struct conn *freed;  /* closed this turn, freed by conn_reap: an event for them may
                          * still sit later in the same epoll batch */
};

/* Bytes of memory a connection holds at most (buffers and parser state). */
extern const size_t conn_size;

/* Takes over the accepted client socket fd (non-blocking). Returns 0 or -errno
 * (fd closed either way on failure). */
int conn_new(struct relay_env *env, int fd, const char *peer);

/* Handles epoll events for a connection; `tag` is the low bits of the epoll data
 * (CONN_TAG_CLIENT or CONN_TAG_BACKEND). May free the connection. */
void conn_event(struct conn *c, int tag, uint32_t events);

#define CONN_TAG_CLIENT  0
#define CONN_TAG_BACKEND 1
#define CONN_TAG_MASK    ((uintptr_t)3)

/* Frees the connections closed since the last call; call once the epoll batch that
 * may still name them has been handled. */
void conn_reap(struct relay_env *env);

/* Drives the connections that asked to run again; call after each batch of events. */
void conn_run_again(struct relay_env *env);

/* Closes every connection whose deadline passed (answering 408 to a slow head). */
void conn_sweep(struct relay_env *env);

/* Closes every connection. */
void conn_close_all(struct relay_env *env);

#endif
