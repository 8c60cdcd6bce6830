/* Fuzzes virtio-net with guest-written tx chains, driving the device as a
 * guest would (virtio-mmio initialisation through the bus, rx buffers posted).
 * The back end runs each frame through net_slirp's filter and echoes it into
 * the rx queue, so both directions run; no libslirp stack is made (random
 * frames would open real connections). The event loop is not run: the fuzzer
 * processes the queues itself (virtio_net_process), so runs are deterministic.
 * Input: chains of { u8 flags; u16 len (LE); u8 bytes[len] }; flags bit 0
 * splits the chain over two descriptors, bit 1 processes the queue after it,
 * bit 2 makes the second descriptor device-writable, bit 3 takes the rx
 * buffers back and posts fewer (and shorter) ones. */
#include "../tests/test_virtio_driver.h"

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "../evloop.h"
#include "../net_slirp.h"
#include "../virtio_net.h"

#define QSIZE 16u
#define RX_BASE 0x100000ull
#define RX_LEN 0x800u
#define TX_BASE 0x200000ull
#define TX_MAX 0x1000u

static struct td t;
static struct virtio_net *net;
static struct evloop *loop;
static uint32_t rx_len = RX_LEN;

static void echo(void *opaque, const uint8_t *frame, size_t len)
{
    (void)opaque;
    CHECK(len >= 14 && len <= VIRTIO_NET_MAX_FRAME);
    struct net_slirp_config cfg = { .enabled = true, .host_loopback = len & 1, .lan = len & 2 };

    net_slirp_frame_allowed(frame, len, &cfg);
    virtio_net_receive(net, frame, len);
}

static void cleanup(void)
{
    virtio_net_destroy(net);
    evloop_free(loop);
}

static void setup_once(void)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };

    td_init(&t);
    loop = evloop_new();
    CHECK(loop);
    net = virtio_net_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, loop, mac);
    CHECK(net);
    virtio_net_set_backend(net, echo, NULL);
    atexit(cleanup);
}

static void process(void)
{
    virtio_net_process(net);
    td_recycle_writable(&t, 0, QSIZE, RX_BASE, RX_LEN, rx_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned slot = 0;

    if (!net)
        setup_once();
    td_wr(&t, VIRTIO_MMIO_STATUS, 0);
    memset(t.mem_buf, 0, RX_BASE);
    t.alloc_next = 0x1000;
    rx_len = RX_LEN;
    if (td_probe(&t, VIRTIO_ID_NET, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) |
                 (1ull << VIRTIO_RING_F_EVENT_IDX), 2, QSIZE) & VIRTIO_CONFIG_S_NEEDS_RESET)
        return 0;
    td_post_writable(&t, &t.q[0], QSIZE, RX_BASE, RX_LEN);
    for (;;) {
        uint64_t gpa = TX_BASE + (uint64_t)slot * TX_MAX;
        uint8_t flags;
        size_t len;

        if (!td_fuzz_record(&t, &data, &size, gpa, TX_MAX, &flags, &len))
            break;
        if (flags & 8)
            rx_len = 12 + (uint32_t)(len & 0x7ff);
        td_post_bytes(&t, &t.q[1], slot, QSIZE / 2, gpa, len, flags & 1,
                      (flags & 4) ? VRING_DESC_F_WRITE : 0);
        if (++slot == QSIZE / 2 || (flags & 2)) {
            td_kick(&t, 1);
            process();
            slot = 0;
        }
    }
    td_kick(&t, 1);
    process();
    return 0;
}
