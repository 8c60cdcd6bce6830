/* sbx-vmm's one event loop (epoll), run by the main thread.
 *
 * Device back ends (console input, vsock's Unix sockets, block I/O completions,
 * the control socket) register file descriptors here; callbacks run on the loop
 * thread, one at a time. vCPU threads never block on the loop; they wake it with
 * evloop_wake() when they hand it work. */
#ifndef SBX_VMM_EVLOOP_H
#define SBX_VMM_EVLOOP_H

#include <stdint.h>

struct evloop;

/* events is a mask of EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP as returned by epoll. */
typedef void (*evloop_cb)(void *opaque, int fd, uint32_t events);

/* A new loop, or NULL with errno set. */
struct evloop *evloop_new(void);
void evloop_free(struct evloop *loop);

/* Watches fd for events (EPOLLIN and/or EPOLLOUT); the callback fires level-
 * triggered until the condition clears. One registration per fd.
 * Returns 0 or negative errno. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque);
/* Changes the event mask of a registered fd. */
int evloop_mod(struct evloop *loop, int fd, uint32_t events);
/* Stops watching fd (the caller still owns and closes it). Safe from a callback,
 * including the fd's own. */
int evloop_del(struct evloop *loop, int fd);

/* Runs a callback on the loop thread as soon as possible; safe from any thread.
 * Returns 0 or negative errno. */
int evloop_call(struct evloop *loop, void (*fn)(void *), void *opaque);

/* Runs until evloop_stop(); returns the code given to it. */
int evloop_run(struct evloop *loop);
/* Makes evloop_run return code; safe from any thread and from signal context. */
void evloop_stop(struct evloop *loop, int code);

#endif
