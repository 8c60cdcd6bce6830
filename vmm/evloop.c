/* epoll event loop; see evloop.h for the contract.
 *
 * Registrations live in a small table indexed by fd. Cross-thread calls go
 * through a mutex-protected list and an eventfd that wakes epoll_wait; a call
 * made on the loop thread itself (a device kicked through its ioeventfd hands
 * work to itself) skips the eventfd and runs once the current batch of events
 * is dispatched. */
#include "evloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct evloop_watch {
    evloop_cb cb;
    void *opaque;
    int fd;
    unsigned generation;  /* bumped on delete so stale events are dropped */
};

struct evloop_call {
    void (*fn)(void *);
    void *opaque;
    struct evloop_call *next;
};

struct evloop {
    int epfd, wakefd;
    struct evloop_watch *watches;
    int nr_watches;       /* table size: valid fds are < nr_watches */
    pthread_mutex_t lock; /* protects calls */
    struct evloop_call *calls, **calls_tail;
    volatile int stopped, code;
    pthread_t thread;     /* the thread in evloop_run, while running */
    atomic_bool running;  /* read by any thread in evloop_call */
};

struct evloop *evloop_new(void)
{
    struct evloop *loop = calloc(1, sizeof(*loop));

    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&loop->lock, NULL);
    loop->calls_tail = &loop->calls;
    if (loop->epfd < 0 || loop->wakefd < 0)
        goto fail;
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = -1 };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
        goto fail;
    return loop;
fail:
    evloop_free(loop);
    return NULL;
}

void evloop_free(struct evloop *loop)
{
    if (!loop)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    while (loop->calls) {
        struct evloop_call *c = loop->calls;
        loop->calls = c->next;
        free(c);
    }
    free(loop->watches);
    free(loop);
}

static int evloop_grow(struct evloop *loop, int fd)
{
    if (fd < loop->nr_watches)
        return 0;
    int n = fd + 64;
    struct evloop_watch *w = realloc(loop->watches, n * sizeof(*w));
    if (!w)
        return -ENOMEM;
    for (int i = loop->nr_watches; i < n; i++)
        w[i] = (struct evloop_watch){ .fd = -1 };
    loop->watches = w;
    loop->nr_watches = n;
    return 0;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
    if (fd < 0 || !cb)
        return -EINVAL;
    int rc = evloop_grow(loop, fd);
    if (rc < 0)
        return rc;
    struct evloop_watch *w = &loop->watches[fd];
    if (w->fd >= 0)
        return -EEXIST;
    struct epoll_event ev = { .events = events, .data.fd = fd };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    w->cb = cb;
    w->opaque = opaque;
    w->fd = fd;
    return 0;
}

int evloop_mod(struct evloop *loop, int fd, uint32_t events)
{
    if (fd < 0 || fd >= loop->nr_watches || loop->watches[fd].fd < 0)
        return -ENOENT;
    struct epoll_event ev = { .events = events, .data.fd = fd };
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_del(struct evloop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nr_watches || loop->watches[fd].fd < 0)
        return -ENOENT;
    struct evloop_watch *w = &loop->watches[fd];
    w->fd = -1;
    w->cb = NULL;
    w->generation++;
    return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

static void evloop_wake(struct evloop *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wakefd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

static bool on_loop_thread(const struct evloop *loop)
{
    return atomic_load(&loop->running) && pthread_equal(pthread_self(), loop->thread);
}

int evloop_call(struct evloop *loop, void (*fn)(void *), void *opaque)
{
    struct evloop_call *c = malloc(sizeof(*c));

    if (!c)
        return -ENOMEM;
    *c = (struct evloop_call){ .fn = fn, .opaque = opaque };
    pthread_mutex_lock(&loop->lock);
    *loop->calls_tail = c;
    loop->calls_tail = &c->next;
    pthread_mutex_unlock(&loop->lock);
    if (!on_loop_thread(loop))
        evloop_wake(loop);
    return 0;
}

/* Runs the calls queued so far, not those they queue: for those the loop
 * wakes itself, so that a call that keeps queueing itself again cannot starve
 * the file descriptors. */
static void evloop_drain_calls(struct evloop *loop)
{
    bool more;

    pthread_mutex_lock(&loop->lock);
    struct evloop_call *c = loop->calls;
    loop->calls = NULL;
    loop->calls_tail = &loop->calls;
    pthread_mutex_unlock(&loop->lock);
    while (c) {
        struct evloop_call *next = c->next;
        c->fn(c->opaque);
        free(c);
        c = next;
    }
    pthread_mutex_lock(&loop->lock);
    more = loop->calls != NULL;
    pthread_mutex_unlock(&loop->lock);
    if (more)
        evloop_wake(loop);
}

static void evloop_run_calls(struct evloop *loop)
{
    uint64_t count;
    ssize_t n = read(loop->wakefd, &count, sizeof(count));

    (void)n;
    evloop_drain_calls(loop);
}

static void evloop_dispatch(struct evloop *loop, const struct epoll_event *evs, int n)
{
    unsigned gens[n];

    /* Snapshot generations so a callback that deletes (and maybe re-adds) another
     * fd in this batch does not get that fd's stale event delivered. */
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        gens[i] = fd >= 0 ? loop->watches[fd].generation : 0;
    }
    for (int i = 0; i < n && !loop->stopped; i++) {
        int fd = evs[i].data.fd;
        if (fd < 0) {
            evloop_run_calls(loop);
            continue;
        }
        struct evloop_watch *w = &loop->watches[fd];
        if (w->fd < 0 || w->generation != gens[i])
            continue;
        w->cb(w->opaque, fd, evs[i].events);
    }
}

int evloop_run(struct evloop *loop)
{
    struct epoll_event evs[64];

    loop->thread = pthread_self();
    atomic_store(&loop->running, true);
    while (!loop->stopped) {
        int n = epoll_wait(loop->epfd, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            atomic_store(&loop->running, false);
            return -errno;
        }
        evloop_dispatch(loop, evs, n);
        if (!loop->stopped)
            evloop_drain_calls(loop); /* those this thread queued itself */
    }
    atomic_store(&loop->running, false);
    return loop->code;
}

void evloop_stop(struct evloop *loop, int code)
{
    loop->code = code;
    loop->stopped = 1;
    evloop_wake(loop);
}
