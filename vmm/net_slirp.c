/* libslirp glue; see net_slirp.h.
 *
 * libslirp wants a poll() loop: before each wait it lists its sockets and the
 * events it wants (slirp_pollfds_fill, which also says how soon its TCP timers
 * need it), after the wait it takes the results (slirp_pollfds_poll). sbx-vmm
 * has one epoll loop instead, so after anything slirp did ("pump"):
 *   - its fd list is filled into pfds, and each fd's epoll registration is made
 *     to match (added, changed, removed);
 *   - a timerfd is armed for the fill's timeout or the earliest slirp timer.
 * When any of those fds or the timerfd fires, one poll(2) with no wait over pfds
 * collects every fd's events, slirp_pollfds_poll takes them (and runs its TCP
 * timers), due timers run, and it pumps again. */
#include "net_slirp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "log.h"

#define ETH_HDR_LEN 14u
#define ETHERTYPE_IPV4 0x0800u
#define IPV4_MIN_HDR 20u
/* slirp asks to be polled again within this even when idle (TCP timers). */
#define IDLE_TIMEOUT_MS 1000u

struct ns_timer {
    struct ns_timer *next;
    SlirpTimerCb cb;          /* timer_new; NULL for timer_new_opaque */
    SlirpTimerId id;          /* timer_new_opaque */
    void *cb_opaque;
    int64_t expire_ms;        /* -1: not armed */
};

struct net_slirp {
    Slirp *slirp;
    struct evloop *loop;
    struct net_slirp_config cfg;
    net_slirp_to_guest_fn to_guest;
    void *opaque;
    int timerfd;
    int64_t deadline_ms;      /* when timerfd fires; 0: not armed */
    struct ns_timer *timers;
    struct pollfd *pfds;      /* the last fill */
    unsigned nr_pfds, cap_pfds;
    uint32_t *watched;        /* by fd: epoll events registered, 0 if none */
    unsigned nr_watched;      /* table size */
    uint32_t *wanted;         /* by fd: what the last fill asked for (scratch) */
    uint64_t filtered;
    unsigned max_flows;
    uint8_t *is_socket;       /* by fd: slirp registered it and has not closed it */
    unsigned nr_sockets;      /* set entries of is_socket */
};

static void ns_pump(struct net_slirp *ns);

/* ---- the guest-side filter ---- */

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Private and multicast destinations (see net_slirp.h), slirp's own 10.0.2.0/24
 * aside. */
static bool is_lan(uint32_t dst)
{
    if ((dst >> 8) == 0x0a0002)
        return false;
    return (dst >> 24) == 10 || (dst >> 20) == 0xac1 || (dst >> 16) == 0xc0a8 ||
           (dst >> 22) == (0x64400000u >> 22) || (dst >> 28) == 0xe;
}

bool net_slirp_frame_allowed(const uint8_t *frame, size_t len,
                             const struct net_slirp_config *cfg)
{
    if (len < ETH_HDR_LEN)
        return false;
    if (((unsigned)frame[12] << 8 | frame[13]) != ETHERTYPE_IPV4)
        return true;  /* ARP (slirp answers it itself); IPv6 is off in slirp */
    if (len < ETH_HDR_LEN + IPV4_MIN_HDR)
        return false;
    uint32_t dst = be32_at(frame + ETH_HDR_LEN + 16);
    if ((dst >> 24) == 0 || (dst >> 16) == 0xa9fe)  /* 0.0.0.0/8, 169.254.0.0/16 */
        return false;
    /* 10.0.2.x is left to slirp: it maps those to 127.0.0.1 and, without
     * host-loopback, refuses them (the guest gets an error, not a timeout). */
    if (!cfg->lan && is_lan(dst))
        return false;
    return cfg->host_loopback || (dst >> 24) != 127;
}

/* ---- slirp callbacks ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *ns = opaque;

    ns->to_guest(ns->opaque, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    log_debug("net: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ms(void)
{
    return cb_clock_get_ns(NULL) / 1000000;
}

static struct ns_timer *timer_add(struct net_slirp *ns)
{
    struct ns_timer *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;  /* slirp then runs without that timer (IPv6 RA only) */
    t->expire_ms = -1;
    t->next = ns->timers;
    ns->timers = t;
    return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct ns_timer *t = timer_add(opaque);

    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct ns_timer *t = timer_add(opaque);

    if (t) {
        t->id = id;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct net_slirp *ns = opaque;

    for (struct ns_timer **p = &ns->timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = (*p)->next;
            free(timer);
            return;
        }
    }
}

static void cb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
    struct ns_timer *t = timer;

    (void)opaque;
    if (t)
        t->expire_ms = expire_time;
}

static int grow_watched(struct net_slirp *ns, int fd);

/* slirp made a host socket (the next pump watches it): counted for the cap by
 * fd, so that a close slirp did not report is forgotten when the number is
 * used again. */
static void cb_register_poll_fd(int fd, void *opaque)
{
    struct net_slirp *ns = opaque;

    if (fd < 0 || grow_watched(ns, fd) < 0 || ns->is_socket[fd])
        return;
    ns->is_socket[fd] = 1;
    ns->nr_sockets++;
}

/* slirp is about to close fd: stop watching it while it is still ours. */
static void cb_unregister_poll_fd(int fd, void *opaque)
{
    struct net_slirp *ns = opaque;

    if (fd < 0 || (unsigned)fd >= ns->nr_watched)
        return;
    if (ns->is_socket[fd]) {
        ns->is_socket[fd] = 0;
        ns->nr_sockets--;
    }
    if (!ns->watched[fd])
        return;
    evloop_del(ns->loop, fd);
    ns->watched[fd] = 0;
}

static void cb_notify(void *opaque)
{
    (void)opaque;  /* we pump after every slirp call anyway */
}

static const SlirpCb callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* ---- driving slirp from the event loop ---- */

static int grow_watched(struct net_slirp *ns, int fd)
{
    if ((unsigned)fd < ns->nr_watched)
        return 0;
    unsigned n = (unsigned)fd + 64;
    uint32_t *w = realloc(ns->watched, n * sizeof(*w));
    if (!w)
        return -ENOMEM;
    ns->watched = w;
    uint32_t *x = realloc(ns->wanted, n * sizeof(*x));
    if (!x)
        return -ENOMEM;
    ns->wanted = x;
    uint8_t *y = realloc(ns->is_socket, n);
    if (!y)
        return -ENOMEM;
    ns->is_socket = y;
    memset(w + ns->nr_watched, 0, (n - ns->nr_watched) * sizeof(*w));
    memset(x + ns->nr_watched, 0, (n - ns->nr_watched) * sizeof(*x));
    memset(y + ns->nr_watched, 0, n - ns->nr_watched);
    ns->nr_watched = n;
    return 0;
}

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct net_slirp *ns = opaque;
    short pev = 0;

    if (fd < 0 || grow_watched(ns, fd) < 0)
        return -1;
    if (ns->nr_pfds == ns->cap_pfds) {
        unsigned cap = ns->cap_pfds ? 2 * ns->cap_pfds : 32;
        struct pollfd *p = realloc(ns->pfds, cap * sizeof(*p));
        if (!p)
            return -1;
        ns->pfds = p;
        ns->cap_pfds = cap;
    }
    if (events & SLIRP_POLL_IN)
        pev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        pev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        pev |= POLLPRI;
    ns->pfds[ns->nr_pfds] = (struct pollfd){ .fd = fd, .events = pev };
    ns->wanted[fd] |= (pev & POLLIN ? EPOLLIN : 0) | (pev & POLLOUT ? EPOLLOUT : 0) |
                      (pev & POLLPRI ? EPOLLPRI : 0);
    return (int)ns->nr_pfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
    struct net_slirp *ns = opaque;
    int ev = 0;

    if (idx < 0 || (unsigned)idx >= ns->nr_pfds)
        return 0;
    short r = ns->pfds[idx].revents;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & (POLLERR | POLLNVAL))
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

static void ns_wake(struct net_slirp *ns);

static void on_fd(void *opaque, int fd, uint32_t events)
{
    (void)fd;
    (void)events;
    ns_wake(opaque);
}

/* Makes fd's epoll registration ask for want (0: none). */
static void sync_fd(struct net_slirp *ns, int fd, uint32_t want)
{
    uint32_t have = ns->watched[fd];
    int rc = 0;

    if (want == have)
        return;
    if (!want)
        evloop_del(ns->loop, fd);
    else if (!have)
        rc = evloop_add(ns->loop, fd, want, on_fd, ns);
    else if ((rc = evloop_mod(ns->loop, fd, want)) < 0) {
        /* slirp closed the fd and a new socket got its number */
        evloop_del(ns->loop, fd);
        rc = evloop_add(ns->loop, fd, want, on_fd, ns);
    }
    if (rc < 0) {
        log_warn("net: cannot watch socket %d: %s", fd, strerror(-rc));
        want = 0;
    }
    ns->watched[fd] = want;
}

static void arm_timer(struct net_slirp *ns, uint32_t timeout_ms)
{
    int64_t now = now_ms(), wait = timeout_ms;

    for (struct ns_timer *t = ns->timers; t; t = t->next)
        if (t->expire_ms >= 0 && t->expire_ms - now < wait)
            wait = t->expire_ms - now;
    if (wait < 1)
        wait = 1;  /* 0 would disarm */
    /* Armed to fire no later than needed: leave it (one system call less a frame);
     * firing early costs only a poll. */
    if (ns->deadline_ms > now && ns->deadline_ms <= now + wait)
        return;
    ns->deadline_ms = now + wait;
    struct itimerspec its = {
        .it_value = { .tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000 },
    };
    if (timerfd_settime(ns->timerfd, 0, &its, NULL) < 0)
        log_warn("net: cannot arm the timer: %s", strerror(errno));
}

static void ns_pump(struct net_slirp *ns)
{
    uint32_t timeout = IDLE_TIMEOUT_MS;

    if (ns->nr_watched)
        memset(ns->wanted, 0, ns->nr_watched * sizeof(*ns->wanted));
    ns->nr_pfds = 0;
    slirp_pollfds_fill(ns->slirp, &timeout, cb_add_poll, ns);
    for (unsigned fd = 0; fd < ns->nr_watched; fd++)
        sync_fd(ns, (int)fd, ns->wanted[fd]);
    arm_timer(ns, timeout);
}

static void run_due_timers(struct net_slirp *ns)
{
    int64_t now = now_ms();
    struct ns_timer *t = ns->timers;

    /* One due timer per pass: a callback may free or add timers. */
    while (t) {
        if (t->expire_ms < 0 || t->expire_ms > now) {
            t = t->next;
            continue;
        }
        t->expire_ms = -1;
        if (t->cb)
            t->cb(t->cb_opaque);
        else
            slirp_handle_timer(ns->slirp, t->id, t->cb_opaque);
        t = ns->timers;
    }
}

/* Something may have happened: give slirp every fd's events, then pump. */
static void ns_wake(struct net_slirp *ns)
{
    int rc = 0;

    if (ns->nr_pfds) {
        rc = poll(ns->pfds, ns->nr_pfds, 0);
        if (rc < 0)
            for (unsigned i = 0; i < ns->nr_pfds; i++)
                ns->pfds[i].revents = 0;
    }
    slirp_pollfds_poll(ns->slirp, rc < 0, cb_get_revents, ns);
    run_due_timers(ns);
    ns_pump(ns);
}

static void on_timer(void *opaque, int fd, uint32_t events)
{
    uint64_t ticks;
    ssize_t n = read(fd, &ticks, sizeof(ticks));

    (void)n;
    (void)events;
    ((struct net_slirp *)opaque)->deadline_ms = 0;
    ns_wake(opaque);
}

/* True for a frame that may make slirp open a host socket: a TCP SYN or a UDP
 * datagram (IPv4; the filter has checked the header is there). */
static bool opens_flow(const uint8_t *frame, size_t len)
{
    const uint8_t *ip = frame + ETH_HDR_LEN;

    if (((unsigned)frame[12] << 8 | frame[13]) != ETHERTYPE_IPV4)
        return false;
    if (ip[9] == 17)  /* UDP */
        return true;
    size_t ihl = (ip[0] & 15u) * 4u;
    if (ip[9] != 6 || ihl < IPV4_MIN_HDR || len < ETH_HDR_LEN + ihl + 14)
        return false;
    uint8_t flags = ip[ihl + 13];
    return (flags & 0x02) && !(flags & 0x10);  /* SYN without ACK */
}

void net_slirp_input(struct net_slirp *ns, const uint8_t *frame, size_t len)
{
    if (!net_slirp_frame_allowed(frame, len, &ns->cfg) ||
        (ns->nr_sockets >= ns->max_flows && opens_flow(frame, len))) {
        ns->filtered++;
        return;
    }
    if (len > (size_t)INT32_MAX)
        return;
    slirp_input(ns->slirp, frame, (int)len);
    ns_pump(ns);
}

uint64_t net_slirp_filtered(const struct net_slirp *ns)
{
    return ns->filtered;
}

/* ---- set-up ---- */

static SlirpConfig make_config(const struct net_slirp_config *cfg)
{
    SlirpConfig c = {
        .version = 4,
        .in_enabled = true,
        .vnetwork = { htonl(0x0a000200u) },    /* 10.0.2.0 */
        .vnetmask = { htonl(0xffffff00u) },
        .vhost = { htonl(0x0a000202u) },       /* 10.0.2.2 */
        .vdhcp_start = { htonl(0x0a00020fu) }, /* 10.0.2.15 */
        .vnameserver = { htonl(0x0a000203u) }, /* 10.0.2.3 */
        .vhostname = "sandbox",
        .if_mtu = 1500,
        .if_mru = 1500,
        .disable_host_loopback = !cfg->host_loopback,
    };
    return c;
}

struct net_slirp *net_slirp_new(struct evloop *loop, const struct net_slirp_config *cfg,
                                net_slirp_to_guest_fn to_guest, void *opaque)
{
    struct net_slirp *ns = calloc(1, sizeof(*ns));
    SlirpConfig sc = make_config(cfg);
    int err = ENOMEM;

    if (!ns)
        return NULL;
    ns->loop = loop;
    ns->cfg = *cfg;
    ns->to_guest = to_guest;
    ns->opaque = opaque;
    ns->max_flows = cfg->max_flows ? cfg->max_flows : NET_SLIRP_MAX_FLOWS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 2 < ns->max_flows)
        ns->max_flows = (unsigned)(rl.rlim_cur / 2);
    ns->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ns->timerfd < 0) {
        err = errno;
        goto fail;
    }
    ns->slirp = slirp_new(&sc, &callbacks, ns);
    if (!ns->slirp)
        goto fail;
    err = -evloop_add(loop, ns->timerfd, EPOLLIN, on_timer, ns);
    if (err)
        goto fail;
    ns_pump(ns);
    log_info("net: user-mode networking (libslirp %s), host loopback %s, LAN %s",
             slirp_version_string(), cfg->host_loopback ? "reachable" : "blocked",
             cfg->lan ? "reachable" : "blocked");
    return ns;
fail:
    if (ns->slirp)
        slirp_cleanup(ns->slirp);
    if (ns->timerfd >= 0)
        close(ns->timerfd);
    free(ns);
    errno = err;
    return NULL;
}

void net_slirp_free(struct net_slirp *ns)
{
    if (!ns)
        return;
    log_info("net: %llu frames from the guest filtered or over the flow cap",
             (unsigned long long)ns->filtered);
    for (unsigned fd = 0; fd < ns->nr_watched; fd++)
        if (ns->watched[fd])
            evloop_del(ns->loop, (int)fd);
    slirp_cleanup(ns->slirp);  /* closes its sockets, frees its timers */
    while (ns->timers) {
        struct ns_timer *t = ns->timers;
        ns->timers = t->next;
        free(t);
    }
    evloop_del(ns->loop, ns->timerfd);
    close(ns->timerfd);
    free(ns->pfds);
    free(ns->watched);
    free(ns->wanted);
    free(ns->is_socket);
    free(ns);
}

/* ---- --net SPEC ---- */

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    int used = 0;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &used) != 6 || s[used] != '\0' || used != 17)
        return -EINVAL;
    if (v[0] & 1)
        return -EINVAL;  /* multicast */
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

static int parse_key(const char *kv, size_t len, struct net_slirp_config *cfg)
{
    char buf[64];

    if (len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, kv, len);
    buf[len] = '\0';
    if (strcmp(buf, "host-loopback=on") == 0)
        cfg->host_loopback = true;
    else if (strcmp(buf, "host-loopback=off") == 0)
        cfg->host_loopback = false;
    else if (strcmp(buf, "lan=on") == 0)
        cfg->lan = true;
    else if (strcmp(buf, "lan=off") == 0)
        cfg->lan = false;
    else if (strncmp(buf, "mac=", 4) == 0 && parse_mac(buf + 4, cfg->mac) == 0)
        cfg->mac_set = true;
    else
        return -EINVAL;
    return 0;
}

int net_slirp_parse(const char *spec, struct net_slirp_config *cfg)
{
    struct net_slirp_config c = { 0 };

    if (!spec)
        return -EINVAL;
    if (strcmp(spec, "none") == 0) {
        *cfg = c;
        return 0;
    }
    if (strncmp(spec, "user", 4) != 0 || (spec[4] != '\0' && spec[4] != ','))
        return -EINVAL;
    c.enabled = true;
    for (const char *p = spec + 4; *p == ',';) {
        const char *kv = p + 1, *end = strchr(kv, ',');
        size_t len = end ? (size_t)(end - kv) : strlen(kv);
        if (parse_key(kv, len, &c) < 0)
            return -EINVAL;
        p = kv + len;
    }
    *cfg = c;
    return 0;
}
