/* virtio-vsock (device id 19, virtio 1.x section 5.10) bridged to the host
 * through Unix sockets, Firecracker-style ("hybrid vsock"):
 *
 *  - host to guest: the VMM listens on uds_path. A host process connects,
 *    writes "CONNECT <port>\n"; the VMM opens a guest connection to vsock port
 *    <port> and, once the guest accepts, replies "OK <local-port>\n". Then bytes
 *    flow both ways. If the guest refuses, the host socket is closed.
 *  - guest to host: a guest connection to host (CID 2) port P is connected to
 *    the Unix socket "<uds_path>_P"; if nothing listens there the guest gets RST.
 *
 * Stream sockets only. Credit-based flow control per the spec: the VMM reads a
 * host socket only while the guest has credit (and rx buffers) for it, and
 * buffers at most VSOCK_BUF_ALLOC bytes per connection of guest data the host
 * is slow to take, so a guest or host that stops reading cannot make the VMM
 * buffer without bound.
 *
 * Threads: host socket I/O and all queue processing run on the event loop
 * thread; queue kicks from vCPUs are handed to it with evloop_call. */
#ifndef SBX_VMM_VIRTIO_VSOCK_H
#define SBX_VMM_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "virtio_mmio.h"

#define VSOCK_GUEST_CID 3u
#define VSOCK_HOST_CID 2u
/* Receive buffer the VMM advertises per connection (guest-to-host direction). */
#define VSOCK_BUF_ALLOC (64u << 10)
/* Most live connections per device; more are refused (RST / host socket closed). */
#define VSOCK_MAX_CONNS 512u

struct virtio_vsock;

/* Creates the device on bus at base/gsi (see virtio_mmio_create), guest CID
 * guest_cid, listening on the Unix socket uds_path (a stale socket file there is
 * replaced) through loop. Set-up time, before loop runs. Returns the device or
 * NULL with errno set (ENAMETOOLONG if "<uds_path>_4294967295" does not fit
 * sun_path). */
struct virtio_vsock *virtio_vsock_create(struct bus *bus, uint64_t base, unsigned gsi,
                                         const struct irq_chip *irq,
                                         const struct guest_mem *mem, struct evloop *loop,
                                         uint64_t guest_cid, const char *uds_path);

/* Closes every connection and the listener, removes uds_path, frees the device.
 * Only once no vCPU runs and the loop is stopped (or on the loop thread). */
void virtio_vsock_destroy(struct virtio_vsock *vs);

/* The transport handle (base/size/gsi for ACPI). */
struct virtio_mmio_dev *virtio_vsock_dev(struct virtio_vsock *vs);

/* Processes the queues now (takes the device lock). Loop thread only; fuzzers
 * and tests that run no loop call it in place of the loop. */
void virtio_vsock_process(struct virtio_vsock *vs);

/* Drops every connection and tells the guest with a TRANSPORT_RESET event (as
 * after a snapshot restore). Loop thread only. Returns 0, or -EAGAIN if the
 * driver posted no event buffer (connections are dropped anyway). */
int virtio_vsock_transport_reset(struct virtio_vsock *vs);

/* Live connections and bytes of guest data held for slow host sockets
 * (for tests and stats). Loop thread only. */
unsigned virtio_vsock_nr_conns(struct virtio_vsock *vs);
size_t virtio_vsock_buffered(struct virtio_vsock *vs);

/* Parses the host's request line "CONNECT <port>\n" (decimal port, no leading
 * zeros needed, at most 10 digits, value <= UINT32_MAX) at the start of buf.
 * Returns the bytes consumed (through the '\n'), -2 if buf is a valid but
 * incomplete prefix, -1 if it is not a request line. */
int vsock_parse_connect(const char *buf, size_t len, uint32_t *port);

#endif
