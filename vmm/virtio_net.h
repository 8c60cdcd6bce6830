/* virtio-net (device id 1, virtio 1.x section 5.1): one rx/tx queue pair, no
 * offloads. Features offered: VIRTIO_NET_F_MAC (the MAC in config space) and
 * VIRTIO_NET_F_STATUS (link always up). Every buffer starts with the 12-byte
 * struct virtio_net_hdr_v1; the device ignores the guest's (nothing offloaded
 * was negotiated, so it carries no work) and writes a zero one, num_buffers 1.
 *
 * The device knows nothing of the network behind it: frames the guest sends go
 * to a back end callback, and the back end hands frames for the guest to
 * virtio_net_receive (net_slirp.c is the one back end).
 *
 * Threads: all queue work and both directions run on the event loop thread;
 * queue kicks from vCPUs are handed to it with evloop_call. */
#ifndef SBX_VMM_VIRTIO_NET_H
#define SBX_VMM_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "virtio_mmio.h"

#define VIRTIO_NET_HDR_LEN 12u
/* Largest frame (Ethernet header on, no FCS) taken from or given to the guest;
 * longer tx chains are dropped. Covers an MTU of 1500 with a VLAN tag and some. */
#define VIRTIO_NET_MAX_FRAME 2048u
/* Frames for the guest held while it has posted no rx buffer; more are dropped. */
#define VIRTIO_NET_RX_BACKLOG 64u

struct virtio_net;

/* Called on the loop thread with each Ethernet frame the guest sent (without
 * the virtio header), 14 <= len <= VIRTIO_NET_MAX_FRAME. */
typedef void (*virtio_net_send_fn)(void *opaque, const uint8_t *frame, size_t len);

struct virtio_net_stats {
    uint64_t tx_frames, tx_dropped;   /* guest to back end */
    uint64_t rx_frames, rx_dropped;   /* back end to guest */
};

/* Creates the device on bus at base/gsi (see virtio_mmio_create) with the given
 * MAC, queue work run through loop. Frames the guest sends are dropped until
 * virtio_net_set_backend. Set-up time. Returns the device, or NULL with errno. */
struct virtio_net *virtio_net_create(struct bus *bus, uint64_t base, unsigned gsi,
                                     const struct irq_chip *irq, const struct guest_mem *mem,
                                     struct evloop *loop, const uint8_t mac[6]);
void virtio_net_set_backend(struct virtio_net *n, virtio_net_send_fn send, void *opaque);

/* Frees the device; only once no vCPU runs and the loop is stopped. */
void virtio_net_destroy(struct virtio_net *n);

struct virtio_mmio_dev *virtio_net_dev(struct virtio_net *n);

/* Gives a frame to the guest: into the next rx buffer, else into the backlog.
 * Loop thread only. Returns 0 if delivered or held, -ENOBUFS if dropped
 * (backlog full), -EMSGSIZE if len is out of [14, VIRTIO_NET_MAX_FRAME],
 * -ENODEV if the driver is not running (dropped). */
int virtio_net_receive(struct virtio_net *n, const void *frame, size_t len);

/* Processes the queues now: the tx queue into the back end, then the rx
 * backlog into posted buffers. Loop thread only; fuzzers and tests that run no
 * loop call it in place of the loop. */
void virtio_net_process(struct virtio_net *n);

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *st);

/* A locally administered unicast MAC 52:54:00:xx:xx:xx from seed (e.g. a pid). */
void virtio_net_mac_from_seed(uint32_t seed, uint8_t mac[6]);

#endif
