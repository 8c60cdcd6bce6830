/* virtio-vsock device bridged to host Unix sockets; see virtio_vsock.h.
 *
 * Queues: 0 rx (device to guest), 1 tx (guest to device), 2 event.
 * Every piece of state here is guarded by the transport's device lock; the
 * connection table and host sockets are only touched on the event loop thread
 * (transport callbacks on vCPUs only flip flags and schedule a kick).
 *
 * Per connection, local_port is the host side's port, peer_port the guest's.
 * Guest-to-host bytes go straight to the host socket; what it cannot take yet
 * waits in a ring of VSOCK_BUF_ALLOC bytes, which the credit we advertise
 * bounds. Host-to-guest bytes are read straight into the guest's rx buffers,
 * and only while the guest has credit, so nothing is buffered that way.
 * Control packets (RESPONSE, RST, SHUTDOWN, CREDIT_UPDATE, REQUEST) wait in a
 * bounded queue for rx buffers; tx processing pauses while that queue is long. */
#include "virtio_vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "log.h"

#define RXQ 0u
#define TXQ 1u
#define EVQ 2u
#define QUEUE_SIZE 256u
#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define MAX_PKT_PAYLOAD (64u << 10)
#define LOCAL_PORT_BASE (1u << 30)
#define NR_BUCKETS 256u
/* tx processing stops while this many control packets wait for rx buffers... */
#define CTRL_TX_GATE 64u
/* ...and host events add at most a few per connection, so this never fills. */
#define CTRL_MAX (4u * VSOCK_MAX_CONNS + 2u * CTRL_TX_GATE)
#define CONNECT_LINE_MAX 32u
#define PKTS_PER_EVENT 16
#define TX_BUDGET 256u

enum conn_state {
    CONN_HOST_CMD,        /* host connected, its CONNECT line not read yet */
    CONN_HOST_CONNECTING, /* REQUEST sent to the guest, awaiting RESPONSE */
    CONN_ESTABLISHED,
};

struct vsock_conn {
    struct vsock_conn *next; /* hash chain */
    struct virtio_vsock *vs;
    int fd;
    enum conn_state state;
    uint32_t local_port, peer_port;
    uint32_t events;        /* evloop registration; 0: not registered */
    /* host to guest */
    uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
    bool host_eof;          /* the host will send nothing more */
    bool peer_no_rcv;       /* the guest will read nothing more */
    /* guest to host */
    uint32_t rx_cnt, fwd_cnt;
    uint32_t fwd_told;      /* fwd_cnt as last sent to the guest */
    uint8_t *pend;          /* ring of VSOCK_BUF_ALLOC, allocated when needed */
    uint32_t pend_head, pend_len;
    bool peer_no_send;      /* guest sent SHUTDOWN(SEND) */
    bool host_wr_shut;
    bool credit_update_queued;
    uint8_t line_len;       /* CONN_HOST_CMD: bytes of the request line so far */
    char line[CONNECT_LINE_MAX];
};

struct ctrl_pkt {
    uint16_t op;
    uint32_t flags, local_port, peer_port;
};

struct virtio_vsock {
    struct virtio_mmio_dev *dev;
    struct evloop *loop;
    uint64_t guest_cid;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd;
    struct vsock_conn *buckets[NR_BUCKETS];
    unsigned nr_conns;
    uint32_t next_local_port;
    struct ctrl_pkt ctrl[CTRL_MAX];
    unsigned ctrl_head, ctrl_len;
    bool active;            /* driver set DRIVER_OK */
    bool rx_starved;        /* rx queue ran dry: host sockets wait for a kick */
    unsigned epoch, conns_epoch; /* reset bumps epoch; the loop then drops conns */
    atomic_bool kick_scheduled;
    struct virtq_chain chain; /* scratch: one chain at a time */
};

static void conn_update_events(struct vsock_conn *c);
static void vsock_process(struct virtio_vsock *vs);
static void schedule_kick(struct virtio_vsock *vs);

/* ---- connection table ---- */

static struct vsock_conn **bucket_of(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
    return &vs->buckets[(local * 2654435761u ^ peer) % NR_BUCKETS];
}

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
    for (struct vsock_conn *c = *bucket_of(vs, local, peer); c; c = c->next)
        if (c->local_port == local && c->peer_port == peer)
            return c;
    return NULL;
}

static void conn_link(struct vsock_conn *c)
{
    struct vsock_conn **b = bucket_of(c->vs, c->local_port, c->peer_port);

    c->next = *b;
    *b = c;
}

static void conn_unlink(struct vsock_conn *c)
{
    struct vsock_conn **p = bucket_of(c->vs, c->local_port, c->peer_port);

    while (*p && *p != c)
        p = &(*p)->next;
    if (*p)
        *p = c->next;
}

static struct vsock_conn *conn_new(struct virtio_vsock *vs, int fd, enum conn_state state,
                                   uint32_t local, uint32_t peer)
{
    struct vsock_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->vs = vs;
    c->fd = fd;
    c->state = state;
    c->local_port = local;
    c->peer_port = peer;
    conn_link(c);
    vs->nr_conns++;
    return c;
}

/* Forgets c and closes its host socket (the host sees EOF). */
static void conn_free(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;

    if (c->events)
        evloop_del(vs->loop, c->fd);
    close(c->fd);
    conn_unlink(c);
    vs->nr_conns--;
    free(c->pend);
    free(c);
}

static void drop_all_conns(struct virtio_vsock *vs)
{
    for (unsigned i = 0; i < NR_BUCKETS; i++)
        while (vs->buckets[i])
            conn_free(vs->buckets[i]);
    vs->ctrl_len = vs->ctrl_head = 0;
}

/* ---- packets to the guest ---- */

static bool ctrl_queue(struct virtio_vsock *vs, uint16_t op, uint32_t flags, uint32_t local,
                       uint32_t peer)
{
    if (vs->ctrl_len == CTRL_MAX) {
        log_warn("virtio-vsock: control queue full, dropping op %u", op);
        return false;
    }
    vs->ctrl[(vs->ctrl_head + vs->ctrl_len++) % CTRL_MAX] = (struct ctrl_pkt){
        .op = op, .flags = flags, .local_port = local, .peer_port = peer,
    };
    return true;
}

static void fill_hdr(struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint16_t op,
                     uint32_t flags, uint32_t local, uint32_t peer, uint32_t len)
{
    struct vsock_conn *c = conn_find(vs, local, peer);

    memset(h, 0, sizeof(*h));
    h->src_cid = htole64(VSOCK_HOST_CID);
    h->dst_cid = htole64(vs->guest_cid);
    h->src_port = htole32(local);
    h->dst_port = htole32(peer);
    h->len = htole32(len);
    h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
    h->op = htole16(op);
    h->flags = htole32(flags);
    h->buf_alloc = htole32(VSOCK_BUF_ALLOC);
    if (c) {
        h->fwd_cnt = htole32(c->fwd_cnt);
        c->fwd_told = c->fwd_cnt;
        if (op == VIRTIO_VSOCK_OP_CREDIT_UPDATE)
            c->credit_update_queued = false;
    }
}

/* Pops an rx chain with room for a header. 1 got one, 0 none (starved), -1 error. */
static int rx_pop(struct virtio_vsock *vs, struct virtq *q)
{
    for (;;) {
        int rc = virtq_pop(q, &vs->chain);
        if (rc < 0) {
            virtio_mmio_device_error(vs->dev, "malformed rx queue");
            return -1;
        }
        if (rc == 0) {
            vs->rx_starved = true;
            return 0;
        }
        if (vs->chain.in_len >= HDR_LEN)
            return 1;
        virtq_push(q, vs->chain.head, 0); /* too small to carry anything */
    }
}

/* Sends waiting control packets while the guest has rx buffers. */
static void rx_send_ctrl(struct virtio_vsock *vs)
{
    struct virtq *q = virtio_mmio_queue(vs->dev, RXQ);
    struct virtio_vsock_hdr h;
    bool pushed = false;

    while (q && vs->ctrl_len && rx_pop(vs, q) > 0) {
        const struct ctrl_pkt *p = &vs->ctrl[vs->ctrl_head];
        fill_hdr(vs, &h, p->op, p->flags, p->local_port, p->peer_port, 0);
        virtq_chain_write(&vs->chain, 0, &h, HDR_LEN);
        virtq_push(q, vs->chain.head, HDR_LEN);
        vs->ctrl_head = (vs->ctrl_head + 1) % CTRL_MAX;
        vs->ctrl_len--;
        pushed = true;
    }
    if (pushed)
        virtio_mmio_signal_used(vs->dev, RXQ);
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* RST to the guest, then forget the connection. */
static void conn_reset(struct vsock_conn *c)
{
    ctrl_queue(c->vs, VIRTIO_VSOCK_OP_RST, 0, c->local_port, c->peer_port);
    conn_free(c);
}

static void conn_host_eof(struct vsock_conn *c)
{
    c->host_eof = true;
    ctrl_queue(c->vs, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND, c->local_port,
               c->peer_port);
}

/* One RW packet read from the host socket into a popped rx chain. Returns 1 if
 * a packet went out, 0 to stop (nothing to read; chain given back), -1 if c was
 * freed. */
static int conn_read_one(struct vsock_conn *c, struct virtq *q, uint32_t credit)
{
    struct virtio_vsock *vs = c->vs;
    struct iovec iov[VIRTQ_CHAIN_MAX_SEGS];
    size_t room = vs->chain.in_len - HDR_LEN;
    struct virtio_vsock_hdr h;
    unsigned n;
    ssize_t got;

    if (room > credit)
        room = credit;
    if (room > MAX_PKT_PAYLOAD)
        room = MAX_PKT_PAYLOAD;
    if (room == 0) { /* a header-sized buffer: fine for control, not for data */
        virtq_push(q, vs->chain.head, 0);
        return 1;
    }
    n = virtq_chain_slice(&vs->chain, true, HDR_LEN, room, iov, VIRTQ_CHAIN_MAX_SEGS);
    got = readv(c->fd, iov, (int)n);
    if (got <= 0) {
        virtq_unpop(q);
        if (got == 0)
            conn_host_eof(c);
        else if (errno != EAGAIN && errno != EINTR) {
            conn_reset(c);
            return -1;
        }
        return 0;
    }
    fill_hdr(vs, &h, VIRTIO_VSOCK_OP_RW, 0, c->local_port, c->peer_port, (uint32_t)got);
    virtq_chain_write(&vs->chain, 0, &h, HDR_LEN);
    virtq_push(q, vs->chain.head, HDR_LEN + (uint32_t)got);
    c->tx_cnt += (uint32_t)got;
    return 1;
}

/* Host socket readable: forward what the guest has credit and buffers for. */
static void conn_host_readable(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;
    struct virtq *q = virtio_mmio_queue(vs->dev, RXQ);
    bool pushed = false;
    int rc = 0;

    rx_send_ctrl(vs); /* control packets go first */
    for (int i = 0; q && !vs->ctrl_len && i < PKTS_PER_EVENT; i++) {
        uint32_t credit = peer_credit(c);
        if (!credit || c->host_eof || c->peer_no_rcv || rx_pop(vs, q) <= 0)
            break;
        rc = conn_read_one(c, q, credit);
        if (rc <= 0)
            break;
        pushed = true;
    }
    if (pushed)
        virtio_mmio_signal_used(vs->dev, RXQ);
    rx_send_ctrl(vs); /* e.g. the SHUTDOWN of an EOF */
    if (rc >= 0)
        conn_update_events(c);
}

/* ---- guest to host data ---- */

/* The guest learns of freed buffer space from fwd_cnt in our headers; tell it
 * once a quarter of the buffer was freed since, so a blocked sender resumes. */
static void maybe_credit_update(struct vsock_conn *c)
{
    if (c->credit_update_queued || c->fwd_cnt - c->fwd_told < VSOCK_BUF_ALLOC / 4)
        return;
    if (ctrl_queue(c->vs, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, c->local_port, c->peer_port))
        c->credit_update_queued = true;
}

static ssize_t send_iov(int fd, struct iovec *iov, unsigned n)
{
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
    ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return w;
}

/* Writes buffered guest data to the host. 0, or -1 if c was freed. */
static int conn_flush(struct vsock_conn *c)
{
    uint32_t first = VSOCK_BUF_ALLOC - c->pend_head;
    struct iovec iov[2];
    ssize_t w;

    if (first > c->pend_len)
        first = c->pend_len;
    iov[0] = (struct iovec){ c->pend + c->pend_head, first };
    iov[1] = (struct iovec){ c->pend, c->pend_len - first };
    w = c->pend_len ? send_iov(c->fd, iov, 2) : 0;
    if (w < 0) {
        conn_reset(c);
        return -1;
    }
    c->pend_head = (c->pend_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
    c->pend_len -= (uint32_t)w;
    c->fwd_cnt += (uint32_t)w;
    if (c->pend_len)
        goto out;
    free(c->pend);
    c->pend = NULL;
    c->pend_head = 0;
    if (c->peer_no_send && c->peer_no_rcv) {
        conn_reset(c); /* the guest closed; all its data is out */
        return -1;
    }
    if (c->peer_no_send && !c->host_wr_shut) {
        shutdown(c->fd, SHUT_WR);
        c->host_wr_shut = true;
    }
out:
    maybe_credit_update(c);
    return 0;
}

/* Keeps [off, off + len) of the tx chain's payload for later. */
static int conn_buffer(struct vsock_conn *c, const struct virtq_chain *ch, size_t off,
                       uint32_t len)
{
    uint32_t tail, first;

    if (!c->pend && !(c->pend = malloc(VSOCK_BUF_ALLOC)))
        return -ENOMEM;
    tail = (c->pend_head + c->pend_len) % VSOCK_BUF_ALLOC;
    first = VSOCK_BUF_ALLOC - tail < len ? VSOCK_BUF_ALLOC - tail : len;
    virtq_chain_read(ch, off, c->pend + tail, first);
    virtq_chain_read(ch, off + first, c->pend, len - first);
    c->pend_len += len;
    return 0;
}

/* An RW packet's payload. 0, or -1 if c was freed. */
static int conn_guest_data(struct vsock_conn *c, const struct virtq_chain *ch, uint32_t len)
{
    struct iovec iov[VIRTQ_CHAIN_MAX_SEGS];
    ssize_t w = 0;

    if (c->state != CONN_ESTABLISHED || c->peer_no_send || ch->out_len - HDR_LEN < len ||
        len > VSOCK_BUF_ALLOC || c->rx_cnt - c->fwd_cnt > VSOCK_BUF_ALLOC - len) {
        conn_reset(c); /* not connected, short packet, or beyond the credit we gave */
        return -1;
    }
    c->rx_cnt += len;
    if (!c->pend_len) {
        unsigned n = virtq_chain_slice(ch, false, HDR_LEN, len, iov, VIRTQ_CHAIN_MAX_SEGS);
        w = send_iov(c->fd, iov, n);
        if (w < 0) {
            conn_reset(c);
            return -1;
        }
        c->fwd_cnt += (uint32_t)w;
    }
    if ((uint32_t)w < len && conn_buffer(c, ch, HDR_LEN + (size_t)w, len - (uint32_t)w) < 0) {
        conn_reset(c);
        return -1;
    }
    maybe_credit_update(c);
    return 0;
}

/* ---- event loop callbacks ---- */

static void conn_host_cmd(struct vsock_conn *c);

static void conn_cb(void *opaque, int fd, uint32_t events)
{
    struct vsock_conn *c = opaque;
    struct virtio_vsock *vs = c->vs;
    struct virtio_mmio_dev *dev = vs->dev;

    (void)fd;
    virtio_mmio_lock(dev);
    if (vs->epoch != vs->conns_epoch) {
        vsock_process(vs); /* drops c */
        goto out;
    }
    if (c->state == CONN_HOST_CMD) {
        conn_host_cmd(c);
        goto out;
    }
    if ((events & (EPOLLOUT | EPOLLERR)) && c->pend_len && conn_flush(c) < 0)
        goto out;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_host_readable(c);
    else
        conn_update_events(c);
    rx_send_ctrl(vs);
out:
    virtio_mmio_unlock(dev);
}

static void conn_update_events(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;
    uint32_t want = 0;
    int rc = 0;

    if (c->state == CONN_HOST_CMD)
        want = EPOLLIN;
    if (c->state == CONN_ESTABLISHED) {
        if (!c->host_eof && !c->peer_no_rcv && peer_credit(c) && !vs->rx_starved &&
            virtio_mmio_queue(vs->dev, RXQ))
            want |= EPOLLIN;
        if (c->pend_len)
            want |= EPOLLOUT;
    }
    if (want == c->events)
        return;
    /* Unregister rather than watch nothing: a hung-up socket would report
     * EPOLLHUP forever. */
    if (!want)
        rc = evloop_del(vs->loop, c->fd);
    else if (!c->events)
        rc = evloop_add(vs->loop, c->fd, want, conn_cb, c);
    else
        rc = evloop_mod(vs->loop, c->fd, want);
    if (rc < 0)
        log_warn("virtio-vsock: watching port %u: %s", c->local_port, strerror(-rc));
    c->events = rc < 0 && want ? c->events : want;
}

static void update_all_events(struct virtio_vsock *vs)
{
    for (unsigned i = 0; i < NR_BUCKETS; i++)
        for (struct vsock_conn *c = vs->buckets[i]; c; c = c->next)
            conn_update_events(c);
}

/* Takes the next piece of the host's request line, never a byte past its
 * '\n' (data after it is the guest's). Returns bytes taken, 0 none yet, -1 error
 * or EOF. */
static int take_line_bytes(struct vsock_conn *c)
{
    char *at = c->line + c->line_len;
    size_t room = sizeof(c->line) - c->line_len;
    ssize_t n = recv(c->fd, at, room, MSG_PEEK | MSG_DONTWAIT);
    const char *nl;
    size_t take;

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    nl = memchr(at, '\n', (size_t)n);
    take = nl ? (size_t)(nl - at) + 1 : (size_t)n;
    if (recv(c->fd, at, take, MSG_DONTWAIT) != (ssize_t)take)
        return -1;
    c->line_len += (uint8_t)take;
    return (int)take;
}

/* Reads the host's "CONNECT <port>\n" and asks the guest to accept. */
static void conn_host_cmd(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;
    uint32_t port;
    int got = take_line_bytes(c), used;

    if (got == 0)
        return;
    used = got < 0 ? -1 : vsock_parse_connect(c->line, c->line_len, &port);
    if (used == -2 && c->line_len < sizeof(c->line))
        return; /* wait for the rest of the line */
    if (used < 0 || !vs->active || conn_find(vs, c->local_port, port) ||
        !ctrl_queue(vs, VIRTIO_VSOCK_OP_REQUEST, 0, c->local_port, port)) {
        conn_free(c);
        return;
    }
    conn_unlink(c);
    c->peer_port = port;
    conn_link(c);
    c->state = CONN_HOST_CONNECTING;
    conn_update_events(c);
    rx_send_ctrl(vs);
}

static uint32_t alloc_local_port(struct virtio_vsock *vs)
{
    uint32_t port = vs->next_local_port++;

    if (vs->next_local_port == 0 || vs->next_local_port >= 2 * LOCAL_PORT_BASE)
        vs->next_local_port = LOCAL_PORT_BASE;
    return port;
}

static void listen_cb(void *opaque, int fd, uint32_t events)
{
    struct virtio_vsock *vs = opaque;
    struct vsock_conn *c;

    (void)events;
    virtio_mmio_lock(vs->dev);
    if (vs->epoch != vs->conns_epoch)
        vsock_process(vs);
    for (int i = 0; i < PKTS_PER_EVENT; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            break;
        if (vs->nr_conns >= VSOCK_MAX_CONNS ||
            !(c = conn_new(vs, cfd, CONN_HOST_CMD, alloc_local_port(vs), 0))) {
            close(cfd);
            continue;
        }
        conn_update_events(c);
    }
    virtio_mmio_unlock(vs->dev);
}

/* ---- packets from the guest ---- */

static void guest_connect(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h)
{
    uint32_t local = le32toh(h->dst_port), peer = le32toh(h->src_port);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct vsock_conn *c = conn_find(vs, local, peer);
    int fd, plen;

    if (c)
        conn_free(c); /* the guest reused a live port pair: start over */
    plen = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vs->path, local);
    fd = plen < (int)sizeof(sa.sun_path) && vs->nr_conns < VSOCK_MAX_CONNS
             ? socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        (c = conn_new(vs, fd, CONN_ESTABLISHED, local, peer))) {
        c->peer_buf_alloc = le32toh(h->buf_alloc);
        c->peer_fwd_cnt = le32toh(h->fwd_cnt);
        ctrl_queue(vs, VIRTIO_VSOCK_OP_RESPONSE, 0, local, peer);
        conn_update_events(c);
        return;
    }
    if (fd >= 0)
        close(fd);
    ctrl_queue(vs, VIRTIO_VSOCK_OP_RST, 0, local, peer);
}

/* The guest accepted a host-initiated connection: tell the host. */
static int conn_established(struct vsock_conn *c)
{
    char ok[24];
    int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

    if (c->state != CONN_HOST_CONNECTING || send(c->fd, ok, (size_t)n, MSG_NOSIGNAL) != n) {
        conn_reset(c);
        return -1;
    }
    c->state = CONN_ESTABLISHED;
    return 0;
}

static int conn_shutdown(struct vsock_conn *c, uint32_t flags)
{
    if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
        c->peer_no_rcv = true;
    if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
        c->peer_no_send = true;
    return conn_flush(c); /* closes the host side once the data is out */
}

/* One packet on a known connection. 0, or -1 if c was freed. */
static int conn_packet(struct vsock_conn *c, const struct virtio_vsock_hdr *h,
                       const struct virtq_chain *ch)
{
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
    switch (le16toh(h->op)) {
    case VIRTIO_VSOCK_OP_RESPONSE:
        return conn_established(c);
    case VIRTIO_VSOCK_OP_RW:
        return conn_guest_data(c, ch, le32toh(h->len));
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        return 0;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        if (!c->credit_update_queued &&
            ctrl_queue(c->vs, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, c->local_port, c->peer_port))
            c->credit_update_queued = true;
        return 0;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        return conn_shutdown(c, le32toh(h->flags));
    case VIRTIO_VSOCK_OP_RST:
        conn_free(c);
        return -1;
    default:
        conn_reset(c);
        return -1;
    }
}

static void tx_packet(struct virtio_vsock *vs, const struct virtq_chain *ch)
{
    struct virtio_vsock_hdr h;
    struct vsock_conn *c;
    uint16_t op;

    if (virtq_chain_read(ch, 0, &h, HDR_LEN) < HDR_LEN)
        return;
    if (le64toh(h.src_cid) != vs->guest_cid || le64toh(h.dst_cid) != VSOCK_HOST_CID)
        return; /* not for us: dropped */
    op = le16toh(h.op);
    if (le16toh(h.type) != VIRTIO_VSOCK_TYPE_STREAM) {
        if (op != VIRTIO_VSOCK_OP_RST)
            ctrl_queue(vs, VIRTIO_VSOCK_OP_RST, 0, le32toh(h.dst_port), le32toh(h.src_port));
        return;
    }
    if (op == VIRTIO_VSOCK_OP_REQUEST) {
        guest_connect(vs, &h);
        return;
    }
    c = conn_find(vs, le32toh(h.dst_port), le32toh(h.src_port));
    if (!c || c->state == CONN_HOST_CMD) {
        if (op != VIRTIO_VSOCK_OP_RST)
            ctrl_queue(vs, VIRTIO_VSOCK_OP_RST, 0, le32toh(h.dst_port), le32toh(h.src_port));
        return;
    }
    if (conn_packet(c, &h, ch) == 0)
        conn_update_events(c);
}

/* Handles up to budget tx packets; returns how many. */
static unsigned tx_process(struct virtio_vsock *vs, unsigned budget)
{
    struct virtq *q = virtio_mmio_queue(vs->dev, TXQ);
    unsigned done = 0;
    bool pushed = false;
    int rc = 0;

    while (q && done < budget && vs->ctrl_len < CTRL_TX_GATE &&
           (rc = virtq_pop(q, &vs->chain)) > 0) {
        done++;
        tx_packet(vs, &vs->chain);
        virtq_push(q, vs->chain.head, 0);
        pushed = true;
    }
    if (rc < 0)
        virtio_mmio_device_error(vs->dev, "malformed tx queue");
    if (pushed)
        virtio_mmio_signal_used(vs->dev, TXQ);
    return done;
}

/* ---- kicks and transport callbacks ---- */

static bool queue_has_avail(struct virtio_vsock *vs, unsigned qi)
{
    struct virtq *q = virtio_mmio_queue(vs->dev, qi);

    return q && virtq_has_avail(q);
}

static void vsock_process(struct virtio_vsock *vs)
{
    bool was_starved = vs->rx_starved;
    unsigned budget = TX_BUDGET;

    if (vs->epoch != vs->conns_epoch) {
        drop_all_conns(vs);
        vs->conns_epoch = vs->epoch;
    }
    if (!vs->active)
        return;
    if (queue_has_avail(vs, RXQ))
        vs->rx_starved = false;
    /* Replies to tx packets need rx buffers; tx waits while many are queued. */
    do {
        rx_send_ctrl(vs);
        budget -= tx_process(vs, budget);
        rx_send_ctrl(vs);
    } while (budget && vs->ctrl_len < CTRL_TX_GATE && queue_has_avail(vs, TXQ));
    if (!budget && queue_has_avail(vs, TXQ))
        schedule_kick(vs); /* more later: let host sockets have a turn */
    if (was_starved && !vs->rx_starved)
        update_all_events(vs);
}

void virtio_vsock_process(struct virtio_vsock *vs)
{
    virtio_mmio_lock(vs->dev);
    vsock_process(vs);
    virtio_mmio_unlock(vs->dev);
}

static void vsock_kick(void *opaque)
{
    struct virtio_vsock *vs = opaque;

    atomic_store(&vs->kick_scheduled, false);
    virtio_vsock_process(vs);
}

static void schedule_kick(struct virtio_vsock *vs)
{
    if (atomic_exchange(&vs->kick_scheduled, true))
        return;
    if (evloop_call(vs->loop, vsock_kick, vs) < 0) {
        atomic_store(&vs->kick_scheduled, false);
        log_warn("virtio-vsock: cannot schedule queue work");
    }
}

static struct virtio_vsock *vsock_of(struct virtio_mmio_dev *dev)
{
    return virtio_mmio_priv(dev);
}

static void vsock_config_read(struct virtio_mmio_dev *dev, uint32_t off, void *data, unsigned len)
{
    uint64_t cid = htole64(vsock_of(dev)->guest_cid);

    if (off < sizeof(cid) && len <= sizeof(cid) - off)
        memcpy(data, (uint8_t *)&cid + off, len);
}

static int vsock_activate(struct virtio_mmio_dev *dev)
{
    struct virtio_vsock *vs = vsock_of(dev);

    vs->active = true;
    schedule_kick(vs);
    return 0;
}

static void vsock_queue_notify(struct virtio_mmio_dev *dev, unsigned q)
{
    (void)q;
    schedule_kick(vsock_of(dev));
}

static void vsock_reset(struct virtio_mmio_dev *dev)
{
    struct virtio_vsock *vs = vsock_of(dev);

    vs->active = false;
    vs->rx_starved = false;
    vs->epoch++; /* the loop thread closes the connections */
    schedule_kick(vs);
}

static const struct virtio_dev_ops vsock_ops = {
    .name = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .queue_max_size = QUEUE_SIZE,
    .config_read = vsock_config_read,
    .activate = vsock_activate,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
};

/* ---- set-up ---- */

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

struct virtio_vsock *virtio_vsock_create(struct bus *bus, uint64_t base, unsigned gsi,
                                         const struct irq_chip *irq,
                                         const struct guest_mem *mem, struct evloop *loop,
                                         uint64_t guest_cid, const char *uds_path)
{
    struct virtio_vsock *vs;
    int err;

    if (strlen(uds_path) + sizeof("_4294967295") > sizeof(vs->path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    vs = calloc(1, sizeof(*vs));
    if (!vs)
        return NULL;
    vs->loop = loop;
    vs->guest_cid = guest_cid;
    vs->next_local_port = LOCAL_PORT_BASE;
    snprintf(vs->path, sizeof(vs->path), "%s", uds_path);
    vs->listen_fd = listen_unix(uds_path);
    if (vs->listen_fd < 0) {
        err = -vs->listen_fd;
        goto fail;
    }
    err = -evloop_add(loop, vs->listen_fd, EPOLLIN, listen_cb, vs);
    if (err)
        goto fail;
    vs->dev = virtio_mmio_create(bus, base, gsi, irq, mem, &vsock_ops, vs);
    if (!vs->dev) {
        err = errno;
        evloop_del(loop, vs->listen_fd);
        goto fail;
    }
    return vs;
fail:
    if (vs->listen_fd >= 0) {
        close(vs->listen_fd);
        unlink(vs->path);
    }
    free(vs);
    errno = err;
    return NULL;
}

void virtio_vsock_destroy(struct virtio_vsock *vs)
{
    if (!vs)
        return;
    drop_all_conns(vs);
    evloop_del(vs->loop, vs->listen_fd);
    close(vs->listen_fd);
    unlink(vs->path);
    virtio_mmio_destroy(vs->dev);
    free(vs);
}

struct virtio_mmio_dev *virtio_vsock_dev(struct virtio_vsock *vs)
{
    return vs->dev;
}

int virtio_vsock_transport_reset(struct virtio_vsock *vs)
{
    struct virtio_vsock_event ev = { .id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) };
    struct virtq *q;
    int rc = -EAGAIN;

    virtio_mmio_lock(vs->dev);
    drop_all_conns(vs);
    q = virtio_mmio_queue(vs->dev, EVQ);
    if (q && virtq_pop(q, &vs->chain) > 0) {
        uint32_t n = (uint32_t)virtq_chain_write(&vs->chain, 0, &ev, sizeof(ev));
        virtq_push(q, vs->chain.head, n);
        virtio_mmio_signal_used(vs->dev, EVQ);
        rc = n == sizeof(ev) ? 0 : -EAGAIN;
    }
    virtio_mmio_unlock(vs->dev);
    return rc;
}

unsigned virtio_vsock_nr_conns(struct virtio_vsock *vs)
{
    return vs->nr_conns;
}

size_t virtio_vsock_buffered(struct virtio_vsock *vs)
{
    size_t total = 0;

    for (unsigned i = 0; i < NR_BUCKETS; i++)
        for (struct vsock_conn *c = vs->buckets[i]; c; c = c->next)
            total += c->pend_len;
    return total;
}

int vsock_parse_connect(const char *buf, size_t len, uint32_t *port)
{
    static const char verb[] = "CONNECT ";
    const size_t vlen = sizeof(verb) - 1;
    uint64_t v = 0;
    size_t i;

    if (memcmp(buf, verb, len < vlen ? len : vlen) != 0)
        return -1;
    if (len <= vlen)
        return -2;
    for (i = vlen; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(buf[i] - '0');
        if (i - vlen >= 10 || v > UINT32_MAX)
            return -1;
    }
    if (i == len)
        return -2;
    if (i == vlen || buf[i] != '\n')
        return -1;
    *port = (uint32_t)v;
    return (int)(i + 1);
}
