/* virtio-net device model; see virtio_net.h.
 *
 * Queues: 0 rx (device to guest), 1 tx (guest to device). The rx backlog, the
 * scratch chain and the stats are guarded by the transport's device lock. The
 * lock is never held while calling the back end: a frame the guest sends may
 * make the back end answer at once (an ARP reply) through virtio_net_receive,
 * which takes the lock itself. */
#include "virtio_net.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "log.h"

#define RXQ 0u
#define TXQ 1u
#define QUEUE_SIZE 256u
#define ETH_HDR_LEN 14u
/* Frames taken from the tx queue per loop turn, so that other work gets a turn. */
#define TX_BUDGET 256u

struct rx_frame {
    uint16_t len;
    uint8_t data[VIRTIO_NET_MAX_FRAME];
};

struct virtio_net {
    struct virtio_mmio_dev *dev;
    struct evloop *loop;
    uint8_t mac[6];
    virtio_net_send_fn send;
    void *send_opaque;
    atomic_bool kick_scheduled;
    struct virtio_net_stats stats;
    struct rx_frame backlog[VIRTIO_NET_RX_BACKLOG];  /* ring */
    unsigned backlog_head, backlog_len;
    uint8_t txbuf[VIRTIO_NET_MAX_FRAME];              /* loop thread only */
    struct virtq_chain chain;                         /* scratch */
};

static void schedule_kick(struct virtio_net *n);

static struct virtio_net *net_of(struct virtio_mmio_dev *dev)
{
    return virtio_mmio_priv(dev);
}

/* ---- device to guest (lock held) ---- */

/* Writes one frame into the next rx buffer. 1 done (or dropped for a buffer too
 * small, which is used up with length 0), 0 no buffer posted, -EIO broken ring. */
static int rx_put(struct virtio_net *n, struct virtq *q, const void *frame, size_t len)
{
    struct virtq_chain *c = &n->chain;
    struct virtio_net_hdr_v1 hdr = { .num_buffers = htole16(1) };
    int rc = virtq_pop(q, c);

    if (rc <= 0)
        return rc;
    if (c->in_len < VIRTIO_NET_HDR_LEN + len) {
        n->stats.rx_dropped++;
        virtq_push(q, c->head, 0);
        return 1;
    }
    virtq_chain_write(c, 0, &hdr, VIRTIO_NET_HDR_LEN);
    virtq_chain_write(c, VIRTIO_NET_HDR_LEN, frame, len);
    virtq_push(q, c->head, (uint32_t)(VIRTIO_NET_HDR_LEN + len));
    n->stats.rx_frames++;
    return 1;
}

/* Moves held frames into posted buffers, oldest first. 0, or -EIO. */
static int rx_flush_backlog(struct virtio_net *n, struct virtq *q)
{
    while (n->backlog_len) {
        struct rx_frame *f = &n->backlog[n->backlog_head];
        int rc = rx_put(n, q, f->data, f->len);
        if (rc <= 0)
            return rc;
        n->backlog_head = (n->backlog_head + 1) % VIRTIO_NET_RX_BACKLOG;
        n->backlog_len--;
    }
    return 0;
}

static int rx_hold(struct virtio_net *n, const void *frame, size_t len)
{
    if (n->backlog_len == VIRTIO_NET_RX_BACKLOG) {
        n->stats.rx_dropped++;
        return -ENOBUFS;
    }
    struct rx_frame *f =
        &n->backlog[(n->backlog_head + n->backlog_len++) % VIRTIO_NET_RX_BACKLOG];
    f->len = (uint16_t)len;
    memcpy(f->data, frame, len);
    return 0;
}

static int rx_locked(struct virtio_net *n, const void *frame, size_t len)
{
    struct virtq *q = virtio_mmio_queue(n->dev, RXQ);
    int rc;

    if (!q) {
        n->stats.rx_dropped++;
        return -ENODEV;
    }
    rc = rx_flush_backlog(n, q);  /* keep the order */
    if (rc == 0 && !n->backlog_len)
        rc = rx_put(n, q, frame, len);
    if (rc < 0) {
        n->stats.rx_dropped++;
        virtio_mmio_device_error(n->dev, "malformed rx queue");
        return -ENODEV;
    }
    virtio_mmio_signal_used(n->dev, RXQ);
    return rc == 1 ? 0 : rx_hold(n, frame, len);
}

int virtio_net_receive(struct virtio_net *n, const void *frame, size_t len)
{
    int rc;

    if (len < ETH_HDR_LEN || len > VIRTIO_NET_MAX_FRAME)
        return -EMSGSIZE;
    virtio_mmio_lock(n->dev);
    rc = rx_locked(n, frame, len);
    virtio_mmio_unlock(n->dev);
    return rc;
}

/* ---- guest to device ---- */

/* Takes one frame off the tx queue into txbuf. Returns its length, 0 for a
 * chain that was used up but dropped (too short or too long, or no back
 * end), -1 when the
 * queue is empty, stopped or broken. */
static ssize_t tx_take(struct virtio_net *n)
{
    struct virtq *q;
    struct virtq_chain *c = &n->chain;
    ssize_t len = -1;
    int rc;

    virtio_mmio_lock(n->dev);
    q = virtio_mmio_queue(n->dev, TXQ);
    rc = q ? virtq_pop(q, c) : 0;
    if (rc < 0)
        virtio_mmio_device_error(n->dev, "malformed tx queue");
    if (rc > 0) {
        size_t flen = c->out_len >= VIRTIO_NET_HDR_LEN ? c->out_len - VIRTIO_NET_HDR_LEN : 0;
        len = 0;
        if (n->send && flen >= ETH_HDR_LEN && flen <= VIRTIO_NET_MAX_FRAME) {
            len = (ssize_t)virtq_chain_read(c, VIRTIO_NET_HDR_LEN, n->txbuf, flen);
            n->stats.tx_frames++;
        } else {
            n->stats.tx_dropped++;
        }
        virtq_push(q, c->head, 0);
    }
    if (rc <= 0 && q)
        virtio_mmio_signal_used(n->dev, TXQ);
    virtio_mmio_unlock(n->dev);
    return len;
}

static void tx_process(struct virtio_net *n)
{
    for (unsigned i = 0; i < TX_BUDGET; i++) {
        ssize_t len = tx_take(n);
        if (len < 0)
            return;
        if (len > 0)
            n->send(n->send_opaque, n->txbuf, (size_t)len);
    }
    virtio_mmio_lock(n->dev);
    virtio_mmio_signal_used(n->dev, TXQ);
    virtio_mmio_unlock(n->dev);
    schedule_kick(n);  /* more later */
}

void virtio_net_process(struct virtio_net *n)
{
    struct virtq *q;

    tx_process(n);
    virtio_mmio_lock(n->dev);
    q = virtio_mmio_queue(n->dev, RXQ);
    if (q && n->backlog_len) {
        if (rx_flush_backlog(n, q) < 0)
            virtio_mmio_device_error(n->dev, "malformed rx queue");
        else
            virtio_mmio_signal_used(n->dev, RXQ);
    }
    virtio_mmio_unlock(n->dev);
}

static void net_kick(void *opaque)
{
    struct virtio_net *n = opaque;

    atomic_store(&n->kick_scheduled, false);
    virtio_net_process(n);
}

static void schedule_kick(struct virtio_net *n)
{
    if (atomic_exchange(&n->kick_scheduled, true))
        return;
    if (evloop_call(n->loop, net_kick, n) < 0) {
        atomic_store(&n->kick_scheduled, false);
        log_warn("virtio-net: cannot schedule queue work");
    }
}

/* ---- transport callbacks (device lock held) ---- */

static void net_config_read(struct virtio_mmio_dev *dev, uint32_t off, void *data, unsigned len)
{
    struct virtio_net *n = net_of(dev);
    uint8_t cfg[10];  /* mac, status, max_virtqueue_pairs */
    uint16_t status = htole16(VIRTIO_NET_S_LINK_UP), pairs = htole16(1);

    memcpy(cfg, n->mac, 6);
    memcpy(cfg + 6, &status, 2);
    memcpy(cfg + 8, &pairs, 2);
    if (off < sizeof(cfg) && len <= sizeof(cfg) - off)
        memcpy(data, cfg + off, len);
}

static int net_activate(struct virtio_mmio_dev *dev)
{
    schedule_kick(net_of(dev));
    return 0;
}

static void net_queue_notify(struct virtio_mmio_dev *dev, unsigned q)
{
    (void)q;
    schedule_kick(net_of(dev));
}

static void net_reset(struct virtio_mmio_dev *dev)
{
    struct virtio_net *n = net_of(dev);

    n->stats.rx_dropped += n->backlog_len;
    n->backlog_len = n->backlog_head = 0;
}

static const struct virtio_dev_ops net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS),
    .num_queues = 2,
    .queue_max_size = QUEUE_SIZE,
    .config_read = net_config_read,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
};

struct virtio_net *virtio_net_create(struct bus *bus, uint64_t base, unsigned gsi,
                                     const struct irq_chip *irq, const struct guest_mem *mem,
                                     struct evloop *loop, const uint8_t mac[6])
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    int err;

    if (!n)
        return NULL;
    n->loop = loop;
    memcpy(n->mac, mac, 6);
    n->dev = virtio_mmio_create(bus, base, gsi, irq, mem, &net_ops, n);
    if (!n->dev) {
        err = errno;
        free(n);
        errno = err;
        return NULL;
    }
    return n;
}

void virtio_net_set_backend(struct virtio_net *n, virtio_net_send_fn send, void *opaque)
{
    n->send = send;
    n->send_opaque = opaque;
}

void virtio_net_destroy(struct virtio_net *n)
{
    if (!n)
        return;
    log_info("virtio-net: tx %llu frames (%llu dropped), rx %llu frames (%llu dropped)",
             (unsigned long long)n->stats.tx_frames, (unsigned long long)n->stats.tx_dropped,
             (unsigned long long)n->stats.rx_frames, (unsigned long long)n->stats.rx_dropped);
    virtio_mmio_destroy(n->dev);
    free(n);
}

struct virtio_mmio_dev *virtio_net_dev(struct virtio_net *n)
{
    return n->dev;
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *st)
{
    virtio_mmio_lock(n->dev);
    *st = n->stats;
    virtio_mmio_unlock(n->dev);
}

void virtio_net_mac_from_seed(uint32_t seed, uint8_t mac[6])
{
    uint32_t h = seed * 2654435761u;

    mac[0] = 0x52;  /* locally administered, unicast */
    mac[1] = 0x54;
    mac[2] = 0x00;
    mac[3] = (uint8_t)(h >> 24);
    mac[4] = (uint8_t)(h >> 16);
    mac[5] = (uint8_t)(h >> 8);
}
