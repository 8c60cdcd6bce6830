/* virtio-net: the test plays the guest driver (through the bus and the rings in
 * a flat guest memory) and the back end (a callback that records frames). The
 * event loop is not run: the test processes the queues itself, as the loop
 * would. Covers feature negotiation and the MAC/status config, tx frames split
 * over descriptors or not, tx chains too short or too long (dropped, used up),
 * rx into posted buffers with a zero header (num_buffers 1), the rx backlog
 * while no buffer is posted (held in order, bounded, then dropped), an rx
 * buffer too small, device reset, and a malformed tx chain (device error, no
 * crash). */
#include "test_virtio_driver.h"

#include <errno.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "../evloop.h"
#include "../virtio_net.h"

#define QSIZE 16u
#define HDR VIRTIO_NET_HDR_LEN
#define RXBUF (HDR + 1526u)
#define RX_BASE 0x100000ull
#define TX_BASE 0x200000ull
#define TX_SLOT 0x4000u

static struct td t;
static struct evloop *loop;
static struct virtio_net *net;
static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static uint8_t sent[64][VIRTIO_NET_MAX_FRAME];
static size_t sent_len[64];
static unsigned nr_sent;

static void backend_send(void *opaque, const uint8_t *frame, size_t len)
{
    CHECK(opaque == &nr_sent);
    CHECK(len >= 14 && len <= VIRTIO_NET_MAX_FRAME && nr_sent < 64);
    memcpy(sent[nr_sent], frame, len);
    sent_len[nr_sent++] = len;
}

static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
}

/* ---- guest side ---- */

static uint32_t status(void)
{
    return td_rd(&t, VIRTIO_MMIO_STATUS);
}

static void probe(void)
{
    uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) |
                    (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_RING_F_EVENT_IDX);

    memset(t.mem_buf, 0, RX_BASE);
    t.alloc_next = 0x1000;
    CHECK(td_probe(&t, VIRTIO_ID_NET, want, 2, QSIZE) & VIRTIO_CONFIG_S_DRIVER_OK);
    virtio_net_process(net);
}

static void post_rx(unsigned slot, uint32_t len)
{
    td_desc(&t, &t.q[0], slot, RX_BASE + slot * (uint64_t)RXBUF, len, VRING_DESC_F_WRITE, 0);
    td_publish(&t, &t.q[0], (uint16_t)slot);
}

/* Sends one frame as header + frame, in one descriptor or two. */
static void guest_tx(unsigned slot, const uint8_t *frame, size_t len, bool split)
{
    uint64_t gpa = TX_BASE + slot * (uint64_t)TX_SLOT;
    struct td_queue *q = &t.q[1];

    CHECK(HDR + len <= TX_SLOT);
    memset(t.mem_buf + gpa, 0, HDR);
    memcpy(t.mem_buf + gpa + HDR, frame, len);
    if (split) {
        td_desc(&t, q, slot, gpa, HDR, VRING_DESC_F_NEXT, (uint16_t)(slot + QSIZE / 2));
        td_desc(&t, q, slot + QSIZE / 2, gpa + HDR, (uint32_t)len, 0, 0);
    } else {
        td_desc(&t, q, slot, gpa, (uint32_t)(HDR + len), 0, 0);
    }
    td_publish(&t, q, (uint16_t)slot);
}

static void tx_used(unsigned n)
{
    uint32_t id, len;

    for (unsigned i = 0; i < n; i++) {
        CHECK(td_used(&t, 1, &id, &len));
        CHECK(len == 0);
    }
    CHECK(!td_used(&t, 1, &id, &len));
}

/* The next frame the guest got; checks its header. */
static size_t guest_rx(uint8_t *frame)
{
    uint32_t id, len;
    struct virtio_net_hdr_v1 h;

    CHECK(td_used(&t, 0, &id, &len));
    CHECK(id < QSIZE && len > HDR && len <= RXBUF);
    memcpy(&h, t.mem_buf + RX_BASE + id * (uint64_t)RXBUF, HDR);
    CHECK(h.flags == 0 && h.gso_type == 0 && h.num_buffers == 1);
    memcpy(frame, t.mem_buf + RX_BASE + id * (uint64_t)RXBUF + HDR, len - HDR);
    return len - HDR;
}

/* ---- cases ---- */

static void check_config(void)
{
    uint8_t got[6];

    for (unsigned i = 0; i < 6; i++) {
        uint8_t b;
        CHECK(bus_read(&t.bus, TD_BASE + 0x100 + i, &b, 1));
        got[i] = b;
    }
    CHECK(memcmp(got, mac, 6) == 0);
    uint16_t st;
    CHECK(bus_read(&t.bus, TD_BASE + 0x100 + 6, &st, 2));
    CHECK(st == VIRTIO_NET_S_LINK_UP);
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t f = td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES);
    CHECK(f & (1u << VIRTIO_NET_F_MAC));
    CHECK(!(f & (1u << VIRTIO_NET_F_CSUM)) && !(f & (1u << VIRTIO_NET_F_MRG_RXBUF)));
}

static void check_tx(void)
{
    uint8_t f[1514];
    struct virtio_net_stats st;

    nr_sent = 0;
    make_frame(f, sizeof(f), 1);
    guest_tx(0, f, 60, false);
    guest_tx(1, f, sizeof(f), true);
    guest_tx(2, f, 13, false);          /* shorter than an Ethernet header */
    td_kick(&t, 1);
    virtio_net_process(net);
    tx_used(3);
    CHECK(nr_sent == 2);
    CHECK(sent_len[0] == 60 && memcmp(sent[0], f, 60) == 0);
    CHECK(sent_len[1] == sizeof(f) && memcmp(sent[1], f, sizeof(f)) == 0);

    /* Too long: dropped and used up; the queue goes on. */
    static uint8_t big[VIRTIO_NET_MAX_FRAME + 1];
    guest_tx(3, big, sizeof(big), false);
    guest_tx(4, f, 100, true);
    td_kick(&t, 1);
    virtio_net_process(net);
    tx_used(2);
    CHECK(nr_sent == 3 && sent_len[2] == 100);
    virtio_net_get_stats(net, &st);
    CHECK(st.tx_frames == 3 && st.tx_dropped == 2);
    CHECK(!(status() & VIRTIO_CONFIG_S_NEEDS_RESET));
}

static void check_rx(void)
{
    uint8_t f[1514], got[2048];
    struct virtio_net_stats st;

    for (unsigned i = 0; i < 4; i++)
        post_rx(i, RXBUF);
    td_kick(&t, 0);
    virtio_net_process(net);
    make_frame(f, sizeof(f), 9);
    CHECK(virtio_net_receive(net, f, 60) == 0);
    CHECK(virtio_net_receive(net, f, sizeof(f)) == 0);
    CHECK(guest_rx(got) == 60 && memcmp(got, f, 60) == 0);
    CHECK(guest_rx(got) == sizeof(f) && memcmp(got, f, sizeof(f)) == 0);
    CHECK(virtio_net_receive(net, f, 13) == -EMSGSIZE);
    CHECK(virtio_net_receive(net, f, VIRTIO_NET_MAX_FRAME + 1) == -EMSGSIZE);

    /* Two buffers left: then the backlog holds frames, in order, up to its bound. */
    uint32_t id, len;
    for (unsigned i = 0; i < 2 + VIRTIO_NET_RX_BACKLOG; i++) {
        f[0] = (uint8_t)i;
        CHECK(virtio_net_receive(net, f, 64) == 0);
    }
    CHECK(virtio_net_receive(net, f, 64) == -ENOBUFS);
    CHECK(guest_rx(got) == 64 && got[0] == 0);
    CHECK(guest_rx(got) == 64 && got[0] == 1);
    CHECK(!td_used(&t, 0, &id, &len));
    for (unsigned next = 2; next < 2 + VIRTIO_NET_RX_BACKLOG;) {
        for (unsigned i = 0; i < QSIZE; i++)
            post_rx(i, RXBUF);
        td_kick(&t, 0);
        virtio_net_process(net);
        for (unsigned i = 0; i < QSIZE && next < 2 + VIRTIO_NET_RX_BACKLOG; i++, next++)
            CHECK(guest_rx(got) == 64 && got[0] == (uint8_t)next);
        CHECK(!td_used(&t, 0, &id, &len));
    }
    virtio_net_get_stats(net, &st);
    CHECK(st.rx_frames == 4 + VIRTIO_NET_RX_BACKLOG && st.rx_dropped == 1);

    /* A buffer too small for the frame: used up empty, the frame dropped. */
    post_rx(0, HDR + 10);
    CHECK(virtio_net_receive(net, f, 64) == 0);
    CHECK(td_used(&t, 0, &id, &len) && len == 0);
}

static void check_reset(void)
{
    uint8_t f[64] = { 0 };
    struct virtio_net_stats st0, st1;

    /* No buffers: held; a reset drops what is held; before DRIVER_OK: -ENODEV. */
    CHECK(virtio_net_receive(net, f, sizeof(f)) == 0);
    virtio_net_get_stats(net, &st0);
    td_wr(&t, VIRTIO_MMIO_STATUS, 0);
    virtio_net_get_stats(net, &st1);
    CHECK(st1.rx_dropped == st0.rx_dropped + 1);
    CHECK(virtio_net_receive(net, f, sizeof(f)) == -ENODEV);
    probe();
}

static void check_malformed(void)
{
    struct td_queue *q = &t.q[1];
    uint8_t f[64] = { 0 };

    nr_sent = 0;
    td_desc(&t, q, 0, TD_MEM_SIZE - 8, 64, 0, 0);  /* runs past guest memory */
    td_publish(&t, q, 0);
    td_kick(&t, 1);
    virtio_net_process(net);
    CHECK(status() & VIRTIO_CONFIG_S_NEEDS_RESET);
    CHECK(nr_sent == 0);
    CHECK(virtio_net_receive(net, f, sizeof(f)) == -ENODEV);
    probe();
    guest_tx(0, f, sizeof(f), false);
    td_kick(&t, 1);
    virtio_net_process(net);
    CHECK(nr_sent == 1 && !(status() & VIRTIO_CONFIG_S_NEEDS_RESET));

    /* A device-writable descriptor in a tx chain is not a frame either. */
    td_desc(&t, q, 1, TX_BASE, 64, VRING_DESC_F_WRITE, 0);
    td_publish(&t, q, 1);
    td_kick(&t, 1);
    virtio_net_process(net);
    CHECK(nr_sent == 1);
}

int main(void)
{
    uint8_t m[6];

    td_init(&t);
    loop = evloop_new();
    CHECK(loop);
    net = virtio_net_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, loop, mac);
    CHECK(net);
    virtio_net_set_backend(net, backend_send, &nr_sent);
    probe();
    check_config();
    check_tx();
    check_rx();
    check_reset();
    check_malformed();
    virtio_net_mac_from_seed(1234, m);
    CHECK(m[0] == 0x52 && !(m[0] & 1) && (m[0] & 2));
    virtio_net_destroy(net);
    evloop_free(loop);
    free(t.mem_buf);
    printf("virtio-net: ok\n");
    return 0;
}
