/* The virtio device models sbx-vmm offers, each on the virtio-mmio transport.
 * vsock has its own header (virtio_vsock.h): it needs the event loop. */
#ifndef SBX_VMM_VIRTIO_DEVICES_H
#define SBX_VMM_VIRTIO_DEVICES_H

#include "virtio_mmio.h"

/* virtio-entropy (device id 4): one queue; every buffer the driver posts is
 * filled from getrandom(). Work runs on the vCPU thread that kicks the queue.
 * Set-up time only; returns the device or NULL with errno set. */
struct virtio_mmio_dev *virtio_rng_create(struct bus *bus, uint64_t base, unsigned gsi,
                                          const struct irq_chip *irq,
                                          const struct guest_mem *mem);

#endif
