/* virtio-vsock: the test plays the guest driver (rx buffers, tx packets through
 * the bus and the rings) and the host (Unix socket peers), with the device's
 * event loop running in a thread as in sbx-vmm. Covers host- and guest-
 * initiated connections, data both ways, credit exhaustion in both directions
 * (the VMM must stop reading / refuse, not buffer), SHUTDOWN/RST, many streams,
 * device reset and malformed packets. */
#include "test_virtio_driver.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "../evloop.h"
#include "../virtio_vsock.h"

#define HDR 44u
#define NQ 64u
#define RXBUF (HDR + 4096u)
#define TXBUF (HDR + 65536u)

static struct td t;
static struct evloop *loop;
static struct virtio_vsock *vs;
static char path[108];
static uint64_t rx_base, tx_base;
static unsigned tx_next;
static bool rx_hold; /* guest_recv leaves buffers used (an rx queue running dry) */
static unsigned rx_held[NQ], nr_held;

struct pkt {
    struct virtio_vsock_hdr h;
    uint8_t data[4096];
};

/* ---- guest side ---- */

static void rx_post(unsigned slot)
{
    td_desc(&t, &t.q[0], slot, rx_base + (uint64_t)slot * RXBUF, RXBUF, VRING_DESC_F_WRITE, 0);
    td_publish(&t, &t.q[0], (uint16_t)slot);
}

/* Next packet the device sent to the guest, within timeout_ms; its buffer is
 * posted again at once. */
static bool guest_recv(struct pkt *p, int timeout_ms)
{
    long end = td_now_ms() + timeout_ms;
    uint32_t id, len;

    while (!td_used(&t, 0, &id, &len)) {
        if (td_now_ms() > end)
            return false;
        usleep(200);
    }
    CHECK(id < NQ && len >= HDR && len <= RXBUF);
    memcpy(&p->h, t.mem_buf + rx_base + (uint64_t)id * RXBUF, HDR);
    CHECK(p->h.len == len - HDR);
    memcpy(p->data, t.mem_buf + rx_base + (uint64_t)id * RXBUF + HDR, len - HDR);
    CHECK(p->h.src_cid == VSOCK_HOST_CID && p->h.dst_cid == VSOCK_GUEST_CID);
    CHECK(p->h.type == VIRTIO_VSOCK_TYPE_STREAM);
    if (rx_hold) {
        rx_held[nr_held++] = id;
        return true;
    }
    rx_post(id);
    td_kick(&t, 0);
    return true;
}

struct gconn {
    uint32_t gport, hport;      /* guest's and host's port */
    uint32_t buf_alloc, fwd;    /* what the guest advertises */
    uint32_t sent, peer_buf_alloc, peer_fwd;
};

static void guest_send_raw(const struct virtio_vsock_hdr *h, const void *data, uint32_t len)
{
    unsigned slot = tx_next++ % NQ;
    uint64_t gpa = tx_base + (uint64_t)slot * TXBUF;
    uint32_t id, ulen;
    long end = td_now_ms() + 5000;

    CHECK(len <= TXBUF - HDR);
    memcpy(t.mem_buf + gpa, h, HDR);
    if (len)
        memcpy(t.mem_buf + gpa + HDR, data, len);
    td_desc(&t, &t.q[1], slot, gpa, HDR + len, 0, 0);
    td_publish(&t, &t.q[1], (uint16_t)slot);
    td_kick(&t, 1);
    while (!td_used(&t, 1, &id, &ulen)) { /* the device has taken it */
        CHECK(td_now_ms() < end);
        usleep(100);
    }
    CHECK(id == slot);
}

static void guest_send(struct gconn *g, uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
    struct virtio_vsock_hdr h = {
        .src_cid = VSOCK_GUEST_CID, .dst_cid = VSOCK_HOST_CID, .src_port = g->gport,
        .dst_port = g->hport, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
        .flags = flags, .buf_alloc = g->buf_alloc, .fwd_cnt = g->fwd,
    };

    guest_send_raw(&h, data, len);
    if (op == VIRTIO_VSOCK_OP_RW)
        g->sent += len;
}

static uint32_t guest_credit(const struct gconn *g)
{
    uint32_t in_flight = g->sent - g->peer_fwd;

    return in_flight >= g->peer_buf_alloc ? 0 : g->peer_buf_alloc - in_flight;
}

static void expect_pkt(struct pkt *p, uint16_t op, uint32_t src, uint32_t dst)
{
    CHECK(guest_recv(p, 5000));
    if (p->h.op != op || p->h.src_port != src || p->h.dst_port != dst)
        fprintf(stderr, "got op %u %u->%u, want op %u %u->%u\n", p->h.op, p->h.src_port,
                p->h.dst_port, op, src, dst);
    CHECK(p->h.op == op && p->h.src_port == src && p->h.dst_port == dst);
}

static void note_credit(struct gconn *g, const struct pkt *p)
{
    g->peer_buf_alloc = p->h.buf_alloc;
    g->peer_fwd = p->h.fwd_cnt;
}

/* ---- host side ---- */

static int unix_connect(const char *p)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    CHECK(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

static int unix_listen(const char *p)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    CHECK(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
    unlink(p);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 16) == 0);
    return fd;
}

/* Reads exactly len bytes (5 s at most). */
static void host_read(int fd, void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        CHECK(poll(&pfd, 1, 5000) == 1);
        ssize_t n = recv(fd, (char *)buf + done, len - done, MSG_DONTWAIT);
        CHECK(n > 0);
        done += (size_t)n;
    }
}

static void host_expect_eof(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char c;

    CHECK(poll(&pfd, 1, 5000) == 1);
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    /* A peer closing with our bytes unread makes it a reset rather than EOF. */
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void host_write_all(int fd, const void *buf, size_t len)
{
    CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
}

static size_t buffered(void)
{
    size_t n;

    virtio_mmio_lock(virtio_vsock_dev(vs));
    n = virtio_vsock_buffered(vs);
    virtio_mmio_unlock(virtio_vsock_dev(vs));
    return n;
}

static unsigned nr_conns(void)
{
    unsigned n;

    virtio_mmio_lock(virtio_vsock_dev(vs));
    n = virtio_vsock_nr_conns(vs);
    virtio_mmio_unlock(virtio_vsock_dev(vs));
    return n;
}

/* Host connects to guest port gport; the guest accepts with buf_alloc. */
static int host_initiated(struct gconn *g, uint32_t gport, uint32_t buf_alloc)
{
    char line[32], want[32];
    struct pkt p;
    int fd = unix_connect(path);

    snprintf(line, sizeof(line), "CONNECT %u\n", gport);
    host_write_all(fd, line, strlen(line));
    CHECK(guest_recv(&p, 5000));
    CHECK(p.h.op == VIRTIO_VSOCK_OP_REQUEST && p.h.dst_port == gport);
    CHECK(p.h.src_port >= (1u << 30));
    *g = (struct gconn){ .gport = gport, .hport = p.h.src_port, .buf_alloc = buf_alloc };
    note_credit(g, &p);
    guest_send(g, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0);
    int n = snprintf(want, sizeof(want), "OK %u\n", g->hport);
    host_read(fd, line, (size_t)n);
    CHECK(memcmp(line, want, (size_t)n) == 0);
    return fd;
}

/* ---- tests ---- */

static void test_parse(void)
{
    uint32_t port;

    CHECK(vsock_parse_connect("CONNECT 52\n", 11, &port) == 11 && port == 52);
    CHECK(vsock_parse_connect("CONNECT 4294967295\nxx", 21, &port) == 19 && port == UINT32_MAX);
    CHECK(vsock_parse_connect("CONNECT 4294967296\n", 19, &port) == -1);
    CHECK(vsock_parse_connect("CONNECT 00000000001\n", 20, &port) == -1);
    CHECK(vsock_parse_connect("CONN", 4, &port) == -2);
    CHECK(vsock_parse_connect("CONNECT ", 8, &port) == -2);
    CHECK(vsock_parse_connect("CONNECT 12", 10, &port) == -2);
    CHECK(vsock_parse_connect("CONNECT \n", 9, &port) == -1);
    CHECK(vsock_parse_connect("CONNECT 1x\n", 11, &port) == -1);
    CHECK(vsock_parse_connect("connect 1\n", 10, &port) == -1);
    CHECK(vsock_parse_connect("", 0, &port) == -2);
}

/* Host connects, data both ways, then the host floods a guest that stops
 * reading: the VMM must stop at the guest's credit. */
static void test_host_initiated_and_credit(void)
{
    static uint8_t big[1 << 20], got[1 << 20];
    struct gconn g;
    struct pkt p;
    char buf[8];
    size_t written = 0, received = 0;
    int fd = host_initiated(&g, 1234, 4096);

    host_write_all(fd, "hello", 5);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RW, g.hport, 1234);
    CHECK(p.h.len == 5 && memcmp(p.data, "hello", 5) == 0);
    g.fwd += 5;
    guest_send(&g, VIRTIO_VSOCK_OP_RW, 0, "world", 5);
    host_read(fd, buf, 5);
    CHECK(memcmp(buf, "world", 5) == 0);

    /* Flood: the host writes until its socket is full. */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 251);
    for (;;) {
        ssize_t n = send(fd, big + written, sizeof(big) - written, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
        written += (size_t)n;
        CHECK(written < sizeof(big)); /* the VMM must not swallow a whole MiB */
        usleep(1000);
    }
    /* The guest got exactly its 4096 bytes of credit, no more. */
    while (guest_recv(&p, 300)) {
        CHECK(p.h.op == VIRTIO_VSOCK_OP_RW && p.h.dst_port == 1234);
        memcpy(got + received, p.data, p.h.len);
        received += p.h.len;
    }
    CHECK(received == 4096);
    printf("host flood: host socket took %zu bytes, guest got its 4096 of credit\n", written);
    /* Credit updates let the rest through, in order. */
    while (received < written) {
        g.fwd = 5 + (uint32_t)received;
        guest_send(&g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
        size_t before = received;
        while (received - before < 4096 && received < written) {
            expect_pkt(&p, VIRTIO_VSOCK_OP_RW, g.hport, 1234);
            memcpy(got + received, p.data, p.h.len);
            received += p.h.len;
            CHECK(received - before <= 4096);
        }
    }
    CHECK(memcmp(got, big, written) == 0);
    g.fwd = 5 + (uint32_t)received; /* all consumed: credit again, so EOF is seen */
    guest_send(&g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
    /* The host closes: the guest hears SHUTDOWN(SEND), closes too, gets RST. */
    close(fd);
    expect_pkt(&p, VIRTIO_VSOCK_OP_SHUTDOWN, g.hport, 1234);
    CHECK(p.h.flags == VIRTIO_VSOCK_SHUTDOWN_SEND);
    guest_send(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 3, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RST, g.hport, 1234);
    CHECK(nr_conns() == 0);
}

/* The guest connects to host port 5000; the host stops reading: the guest runs
 * out of credit and the VMM holds at most VSOCK_BUF_ALLOC bytes. */
/* Sends a byte pattern while the guest has credit, taking credit updates, until
 * none comes for a second. */
static void fill_until_stalled(struct gconn *g, size_t *total)
{
    static uint8_t chunk[4096];
    struct pkt p;

    for (;;) {
        uint32_t credit = guest_credit(g), n = credit < sizeof(chunk) ? credit : sizeof(chunk);
        if (n) {
            for (uint32_t i = 0; i < n; i++)
                chunk[i] = (uint8_t)((*total + i) % 253);
            guest_send(g, VIRTIO_VSOCK_OP_RW, 0, chunk, n);
            *total += n;
            continue;
        }
        if (!guest_recv(&p, 1000))
            return;
        CHECK(p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE);
        note_credit(g, &p);
    }
}

static void test_guest_initiated_and_backpressure(void)
{
    static uint8_t sink[1 << 16], over[65536];
    char lpath[108];
    struct gconn g = { .gport = 7777, .hport = 5000, .buf_alloc = 65536 };
    struct pkt p;
    size_t total = 0, read_back = 0;
    int lfd, fd;

    CHECK(snprintf(lpath, sizeof(lpath), "%s_5000", path) < (int)sizeof(lpath));
    lfd = unix_listen(lpath);
    guest_send(&g, VIRTIO_VSOCK_OP_REQUEST, 0, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RESPONSE, 5000, 7777);
    note_credit(&g, &p);
    CHECK(g.peer_buf_alloc == VSOCK_BUF_ALLOC);
    fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    host_write_all(fd, "ping", 4);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RW, 5000, 7777);
    CHECK(p.h.len == 4 && memcmp(p.data, "ping", 4) == 0);
    g.fwd += 4;

    /* The host reads nothing: the guest runs dry of credit and the VMM holds
     * at most VSOCK_BUF_ALLOC bytes. Then the host drains it all, in order. */
    fill_until_stalled(&g, &total);
    CHECK(total < (8u << 20));
    CHECK(buffered() > 0 && buffered() <= VSOCK_BUF_ALLOC);
    printf("guest flood: stalled after %zu bytes, VMM holds %zu\n", total, buffered());
    while (read_back < total) {
        size_t want = total - read_back < sizeof(sink) ? total - read_back : sizeof(sink);
        host_read(fd, sink, want);
        for (size_t i = 0; i < want; i++)
            CHECK(sink[i] == (uint8_t)((read_back + i) % 253));
        read_back += want;
    }
    /* Again, and this time the guest oversteps its credit: RST. */
    fill_until_stalled(&g, &total);
    CHECK(buffered() > 0);
    guest_send(&g, VIRTIO_VSOCK_OP_RW, 0, over, sizeof(over));
    do
        CHECK(guest_recv(&p, 5000));
    while (p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    CHECK(p.h.op == VIRTIO_VSOCK_OP_RST && p.h.src_port == 5000 && p.h.dst_port == 7777);
    close(fd);
    /* Nothing listens on 5001: RST. */
    g = (struct gconn){ .gport = 7778, .hport = 5001, .buf_alloc = 65536 };
    guest_send(&g, VIRTIO_VSOCK_OP_REQUEST, 0, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RST, 5001, 7778);
    /* Guest SHUTDOWN on a live connection: host sees EOF, guest gets RST. */
    g = (struct gconn){ .gport = 7779, .hport = 5000, .buf_alloc = 65536 };
    guest_send(&g, VIRTIO_VSOCK_OP_REQUEST, 0, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RESPONSE, 5000, 7779);
    note_credit(&g, &p);
    fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    guest_send(&g, VIRTIO_VSOCK_OP_RW, 0, "bye", 3);
    guest_send(&g, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0);
    char bye[3];
    host_read(fd, bye, 3);
    CHECK(memcmp(bye, "bye", 3) == 0);
    host_expect_eof(fd);
    guest_send(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 3, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RST, 5000, 7779);
    close(fd);
    close(lfd);
    unlink(lpath);
    CHECK(nr_conns() == 0);
}

/* The request line arrives in pieces, with data right behind its '\n'; a bad
 * line gets the host socket closed. */
static void test_split_request_line(void)
{
    struct gconn g;
    struct pkt p;
    char line[32], want[32];
    int fd = unix_connect(path);

    host_write_all(fd, "CONN", 4);
    CHECK(!guest_recv(&p, 100));
    host_write_all(fd, "ECT 77\nabc", 10);
    CHECK(guest_recv(&p, 5000) && p.h.op == VIRTIO_VSOCK_OP_REQUEST && p.h.dst_port == 77);
    g = (struct gconn){ .gport = 77, .hport = p.h.src_port, .buf_alloc = 65536 };
    note_credit(&g, &p);
    guest_send(&g, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0);
    int n = snprintf(want, sizeof(want), "OK %u\n", g.hport);
    host_read(fd, line, (size_t)n);
    CHECK(memcmp(line, want, (size_t)n) == 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RW, g.hport, 77);
    CHECK(p.h.len == 3 && memcmp(p.data, "abc", 3) == 0);
    guest_send(&g, VIRTIO_VSOCK_OP_RST, 0, NULL, 0);
    host_expect_eof(fd);
    close(fd);
    /* Garbage, and a line that never ends. */
    fd = unix_connect(path);
    host_write_all(fd, "HELLO\n", 6);
    host_expect_eof(fd);
    close(fd);
    fd = unix_connect(path);
    host_write_all(fd, "CONNECT 1111111111111111111111111111111111111", 45);
    host_expect_eof(fd);
    close(fd);
    CHECK(!guest_recv(&p, 100));
    CHECK(nr_conns() == 0);
}

static double cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void transport_reset_on_loop(void *arg)
{
    *(int *)arg = virtio_vsock_transport_reset(vs) == 0 ? 1 : -1;
}

/* The guest stops giving rx buffers: the VMM fills what it has, then stops
 * reading the host (no spinning), and resumes when buffers come back. Then a
 * transport reset event drops the connection. */
static void test_rx_starvation_and_transport_reset(void)
{
    static uint8_t big[1 << 20];
    struct gconn g;
    struct pkt p;
    size_t written = 0, received = 0;
    int fd = host_initiated(&g, 4321, 1u << 30), done = 0;
    uint64_t evbuf = td_alloc(&t, 4096);
    uint32_t id, len;

    rx_hold = true;
    nr_held = 0;
    for (;;) {
        ssize_t n = send(fd, big, sizeof(big), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
        written += (size_t)n;
        CHECK(written < (16u << 20));
        usleep(2000);
    }
    while (guest_recv(&p, 300)) {
        CHECK(p.h.op == VIRTIO_VSOCK_OP_RW);
        received += p.h.len;
    }
    CHECK(nr_held == NQ && received < written);
    double cpu = cpu_seconds();
    usleep(300000);
    cpu = cpu_seconds() - cpu;
    printf("rx starved: %zu of %zu bytes delivered, %.3f s CPU in 0.3 s idle\n", received,
           written, cpu);
    CHECK(cpu < 0.15);
    /* Buffers back: the rest flows. */
    rx_hold = false;
    for (unsigned i = 0; i < nr_held; i++)
        rx_post(rx_held[i]);
    td_kick(&t, 0);
    while (received < written) {
        CHECK(guest_recv(&p, 5000) && p.h.op == VIRTIO_VSOCK_OP_RW);
        received += p.h.len;
    }
    CHECK(received == written);
    /* Transport reset: one event to the guest, the host socket closed. */
    td_desc(&t, &t.q[2], 0, evbuf, 4096, VRING_DESC_F_WRITE, 0);
    td_publish(&t, &t.q[2], 0);
    CHECK(evloop_call(loop, transport_reset_on_loop, &done) == 0);
    long end = td_now_ms() + 5000;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE) && td_now_ms() < end)
        usleep(1000);
    CHECK(done == 1);
    CHECK(td_used(&t, 2, &id, &len) && id == 0 && len == 4);
    uint32_t ev;
    memcpy(&ev, t.mem_buf + evbuf, 4);
    CHECK(ev == VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
    host_expect_eof(fd);
    close(fd);
    CHECK(nr_conns() == 0);
}

/* 32 host connections at once, each echoed by the guest. */
static void test_many_streams(void)
{
    enum { N = 32 };
    int fds[N];
    struct gconn g[N];
    struct pkt p;
    char msg[32], back[32];

    for (int i = 0; i < N; i++)
        fds[i] = host_initiated(&g[i], 2000 + (uint32_t)i, 65536);
    CHECK(nr_conns() == N);
    for (int i = 0; i < N; i++) {
        int n = snprintf(msg, sizeof(msg), "stream %d", i);
        host_write_all(fds[i], msg, (size_t)n);
    }
    for (int k = 0; k < N; k++) {
        CHECK(guest_recv(&p, 5000));
        CHECK(p.h.op == VIRTIO_VSOCK_OP_RW && p.h.dst_port >= 2000 && p.h.dst_port < 2000 + N);
        struct gconn *c = &g[p.h.dst_port - 2000];
        CHECK(p.h.src_port == c->hport);
        c->fwd += p.h.len;
        guest_send(c, VIRTIO_VSOCK_OP_RW, 0, p.data, p.h.len);
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(msg, sizeof(msg), "stream %d", i);
        host_read(fds[i], back, (size_t)n);
        CHECK(memcmp(back, msg, (size_t)n) == 0);
    }
    /* A device reset drops every connection: the host sees EOF. */
    td_wr(&t, VIRTIO_MMIO_STATUS, 0);
    for (int i = 0; i < N; i++) {
        host_expect_eof(fds[i]);
        close(fds[i]);
    }
    CHECK(nr_conns() == 0);
}

static void test_malformed(void)
{
    struct virtio_vsock_hdr h = { .src_cid = 9, .dst_cid = VSOCK_HOST_CID, .src_port = 1,
                                  .dst_port = 5000, .type = VIRTIO_VSOCK_TYPE_STREAM,
                                  .op = VIRTIO_VSOCK_OP_REQUEST };
    struct pkt p;
    uint32_t id, len;

    guest_send_raw(&h, NULL, 0);                 /* wrong source CID: dropped */
    h.src_cid = VSOCK_GUEST_CID;
    h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;         /* not offered: RST */
    guest_send_raw(&h, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RST, 5000, 1);
    h.type = VIRTIO_VSOCK_TYPE_STREAM;
    h.op = VIRTIO_VSOCK_OP_RW;                   /* no such connection: RST */
    h.len = 100;
    guest_send_raw(&h, "x", 1);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RST, 5000, 1);
    h.op = 99;
    guest_send_raw(&h, NULL, 0);
    expect_pkt(&p, VIRTIO_VSOCK_OP_RST, 5000, 1);
    /* A header cut short. */
    td_desc(&t, &t.q[1], 0, tx_base, 10, 0, 0);
    td_publish(&t, &t.q[1], 0);
    td_kick(&t, 1);
    usleep(50000);
    CHECK(!(td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
    /* A tx buffer outside guest memory: device error, not a crash. */
    td_desc(&t, &t.q[1], 1, TD_MEM_SIZE - 8, 64, 0, 0);
    td_publish(&t, &t.q[1], 1);
    td_kick(&t, 1);
    long end = td_now_ms() + 5000;
    while (!(td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        CHECK(td_now_ms() < end);
        usleep(1000);
    }
    (void)id;
    (void)len;
}

static void probe(void)
{
    const uint32_t ok = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                        VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
    uint64_t cid = 0;

    CHECK(td_probe(&t, VIRTIO_ID_VSOCK, (1ull << VIRTIO_F_VERSION_1) |
                   (1ull << VIRTIO_RING_F_EVENT_IDX), 3, NQ) == ok);
    CHECK(bus_read(&t.bus, TD_BASE + 0x100, &cid, 8) && cid == VSOCK_GUEST_CID);
    for (unsigned i = 0; i < NQ; i++)
        rx_post(i);
    td_kick(&t, 0);
    tx_next = 0;
}

int main(void)
{
    char dir[] = "/tmp/sbx-vsock-XXXXXX";
    pthread_t thread;

    test_parse();
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/v.sock", dir);
    td_init(&t);
    loop = evloop_new();
    CHECK(loop);
    vs = virtio_vsock_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, loop, VSOCK_GUEST_CID, path);
    CHECK(vs);
    CHECK(pthread_create(&thread, NULL, td_loop_main, loop) == 0);
    rx_base = td_alloc(&t, (uint64_t)NQ * RXBUF);
    tx_base = td_alloc(&t, (uint64_t)NQ * TXBUF);
    probe();
    test_host_initiated_and_credit();
    test_guest_initiated_and_backpressure();
    test_split_request_line();
    test_rx_starvation_and_transport_reset();
    test_many_streams();
    probe();
    test_malformed();
    evloop_stop(loop, 0);
    pthread_join(thread, NULL);
    virtio_vsock_destroy(vs);
    evloop_free(loop);
    rmdir(dir);
    free(t.mem_buf);
    printf("test_virtio_vsock: ok\n");
    return 0;
}
