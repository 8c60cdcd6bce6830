/* sbx-api's event loop (epoll) on the main thread: VMM exit notifications
 * (pidfds), signals (signalfd) and the retention sweep (timerfd). HTTP runs on
 * libmicrohttpd's own threads; callbacks run under the guard (the service
 * lock), and loop_add/loop_del from other threads must hold it too. */
#ifndef SBX_API_LOOP_H
#define SBX_API_LOOP_H

#include <stdint.h>

struct loop;

/* events: the EPOLL* mask epoll reported. */
typedef void (*loop_fd_cb)(void *arg, int fd, uint32_t events);

/* A new loop, or NULL with errno set. */
struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Watches fd (level-triggered) for events. One registration per fd.
 * Returns 0 or negative errno. */
int loop_add(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *arg);
/* Stops watching fd; safe from any callback, including fd's own. The caller
 * still owns fd. Returns 0 or negative errno. */
int loop_del(struct loop *loop, int fd);

/* Callbacks run between lock() and unlock() (either may be NULL). */
void loop_set_guard(struct loop *loop, void (*lock)(void), void (*unlock)(void));

/* Runs until loop_stop(). Returns 0, or negative errno if epoll failed. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
