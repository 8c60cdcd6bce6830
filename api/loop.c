/* epoll loop with deferred freeing of watchers removed during a dispatch. */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_BATCH 32

struct watcher {
    int fd;
    bool dead;
    loop_fd_cb cb;
    void *arg;
    struct watcher *next;
};

struct loop {
    int epfd;
    bool stopping;
    struct watcher *live;
    struct watcher *graveyard;
    void (*lock)(void), (*unlock)(void);
};

struct loop *loop_new(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));

    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    return loop;
}

static void free_list(struct watcher *w)
{
    while (w) {
        struct watcher *next = w->next;
        free(w);
        w = next;
    }
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    free_list(loop->live);
    free_list(loop->graveyard);
    close(loop->epfd);
    free(loop);
}

int loop_add(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
    struct epoll_event ev = { .events = events };
    struct watcher *w = calloc(1, sizeof(*w));

    if (!w)
        return -ENOMEM;
    *w = (struct watcher){ .fd = fd, .cb = cb, .arg = arg, .next = loop->live };
    ev.data.ptr = w;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        free(w);
        return err;
    }
    loop->live = w;
    return 0;
}

int loop_del(struct loop *loop, int fd)
{
    struct watcher **pp;

    for (pp = &loop->live; *pp; pp = &(*pp)->next) {
        struct watcher *w = *pp;
        if (w->fd != fd)
            continue;
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        *pp = w->next;
        w->dead = true;
        w->next = loop->graveyard;
        loop->graveyard = w;
        return 0;
    }
    return -ENOENT;
}

void loop_set_guard(struct loop *loop, void (*lock)(void), void (*unlock)(void))
{
    loop->lock = lock;
    loop->unlock = unlock;
}

void loop_stop(struct loop *loop)
{
    loop->stopping = true;
}

static int wait_once(struct loop *loop)
{
    struct epoll_event evs[LOOP_BATCH];
    int n, i;

    n = epoll_wait(loop->epfd, evs, LOOP_BATCH, -1);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /* Under the guard, watchers removed by other threads are marked dead
     * before we look at them, and the graveyard is freed only here. */
    if (loop->lock)
        loop->lock();
    for (i = 0; i < n; i++) {
        struct watcher *w = evs[i].data.ptr;
        if (!w->dead)
            w->cb(w->arg, w->fd, evs[i].events);
    }
    free_list(loop->graveyard);
    loop->graveyard = NULL;
    if (loop->unlock)
        loop->unlock();
    return 0;
}

int loop_run(struct loop *loop)
{
    loop->stopping = false;
    while (!loop->stopping) {
        int err = wait_once(loop);
        if (err)
            return err;
    }
    return 0;
}
