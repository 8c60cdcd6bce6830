/* virtio-mmio transport, version 2 (virtio 1.x, section 4.2.2).
 *
 * One bus range of VIRTIO_MMIO_WINDOW bytes per device; a device type plugs in
 * through a struct virtio_dev_ops table. The transport offers VIRTIO_F_VERSION_1
 * (and requires the driver to accept it), VIRTIO_RING_F_INDIRECT_DESC and
 * VIRTIO_RING_F_EVENT_IDX on top of the device's own features.
 *
 * Locking: each device has one mutex. Register accesses (vCPU threads) take it;
 * every ops callback is called with it held. A back end that works on its
 * queues from another thread (the event loop) takes it with virtio_mmio_lock()
 * around virtio_mmio_queue() / virtio_mmio_signal_used(). */
#ifndef SBX_VMM_VIRTIO_MMIO_H
#define SBX_VMM_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "evloop.h"
#include "guest_mem.h"
#include "irq.h"
#include "virtq.h"

#define VIRTIO_MMIO_WINDOW 0x200u
#define VIRTIO_MMIO_MAX_QUEUES 8u
#define VIRTIO_MMIO_VENDOR 0x00584253u /* "SBX" */

struct virtio_mmio_dev;

struct virtio_dev_ops {
    const char *name;
    uint32_t device_id;        /* VIRTIO_ID_* */
    uint64_t features;         /* device-specific feature bits offered */
    unsigned num_queues;       /* <= VIRTIO_MMIO_MAX_QUEUES */
    unsigned queue_max_size;   /* power of 2, <= VIRTQ_MAX_SIZE */
    /* Device config space accesses at offset off (from 0x100), len 1/2/4/8 and
     * inside the window. NULL: reads are zeros, writes are dropped. */
    void (*config_read)(struct virtio_mmio_dev *dev, uint32_t off, void *data, unsigned len);
    void (*config_write)(struct virtio_mmio_dev *dev, uint32_t off, const void *data,
                         unsigned len);
    /* The driver set DRIVER_OK; the ready queues are set up. Return 0, or a
     * negative errno to put the device in DEVICE_NEEDS_RESET. */
    int (*activate)(struct virtio_mmio_dev *dev);
    /* The driver kicked queue q (only while active). */
    void (*queue_notify)(struct virtio_mmio_dev *dev, unsigned q);
    /* The driver reset the device (status 0); forget all queue state. */
    void (*reset)(struct virtio_mmio_dev *dev);
};

/* Creates a device of type ops over guest memory mem, registers its window at
 * [base, base + VIRTIO_MMIO_WINDOW) on bus, interrupting on GSI gsi of irq.
 * priv is the back end's state (virtio_mmio_priv). Set-up time only.
 * Returns the handle, or NULL with errno set (EINVAL bad ops, EEXIST/ENOSPC from
 * the bus, ENOMEM). ops, mem, bus and irq must outlive the device. */
struct virtio_mmio_dev *virtio_mmio_create(struct bus *bus, uint64_t base, unsigned gsi,
                                           const struct irq_chip *irq,
                                           const struct guest_mem *mem,
                                           const struct virtio_dev_ops *ops, void *priv);

/* Frees a device that no thread can reach any more (after the VM stopped).
 * Does not unregister the bus range (the bus is static after set-up). */
void virtio_mmio_destroy(struct virtio_mmio_dev *dev);

/* The function that asks the hypervisor to signal eventfd fd when the guest
 * writes the 32-bit value datamatch at guest-physical address gpa, instead of
 * an MMIO exit (KVM_IOEVENTFD), or with assign false to stop doing so.
 * Returns 0 or negative errno. */
typedef int (*virtio_mmio_kick_register)(void *ctx, uint64_t gpa, uint32_t datamatch, int fd,
                                         bool assign);

/* Lets the driver's queue kicks (QueueNotify writes of a queue index) reach
 * the device through one eventfd per queue, watched by loop, so a vCPU does
 * not leave the guest for them. Writes that match none still take the MMIO
 * path. Set-up time only. Returns 0, or negative errno with nothing bound. */
int virtio_mmio_bind_kicks(struct virtio_mmio_dev *dev, struct evloop *loop,
                           virtio_mmio_kick_register reg, void *ctx);

/* The device behind a bus range, or NULL if it is not a virtio-mmio device. */
struct virtio_mmio_dev *virtio_mmio_of_range(const struct bus_range *range);

/* Where the device lives, for ACPI (LNRO0005) or the kernel command line. */
uint64_t virtio_mmio_base(const struct virtio_mmio_dev *dev);
uint64_t virtio_mmio_size(const struct virtio_mmio_dev *dev);
unsigned virtio_mmio_gsi(const struct virtio_mmio_dev *dev);
const char *virtio_mmio_name(const struct virtio_mmio_dev *dev);

/* Writes "virtio_mmio.device=512@0xBASE:GSI" into buf (NUL-terminated);
 * returns the length snprintf would, like snprintf. */
int virtio_mmio_cmdline(const struct virtio_mmio_dev *dev, char *buf, size_t size);

void *virtio_mmio_priv(const struct virtio_mmio_dev *dev);
const struct guest_mem *virtio_mmio_mem(const struct virtio_mmio_dev *dev);

/* The device mutex (see the top of this file). Not recursive: ops callbacks
 * already hold it. */
void virtio_mmio_lock(struct virtio_mmio_dev *dev);
void virtio_mmio_unlock(struct virtio_mmio_dev *dev);

/* --- With the lock held: --- */

/* Queue q if the device is live (DRIVER_OK, not NEEDS_RESET) and q was set
 * ready by the driver; NULL otherwise. */
struct virtq *virtio_mmio_queue(struct virtio_mmio_dev *dev, unsigned q);
/* The negotiated feature bits. */
uint64_t virtio_mmio_features(const struct virtio_mmio_dev *dev);
/* Raises the used-buffer interrupt for queue q if the driver wants one. */
void virtio_mmio_signal_used(struct virtio_mmio_dev *dev, unsigned q);
/* The device's config space changed: bumps the generation, config interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio_dev *dev);
/* A device error (malformed queue, back end failure): sets DEVICE_NEEDS_RESET,
 * stops all queues and raises the config interrupt. The driver must reset. */
void virtio_mmio_device_error(struct virtio_mmio_dev *dev, const char *why);
/* The driver status register (VIRTIO_CONFIG_S_* bits). */
uint32_t virtio_mmio_status(const struct virtio_mmio_dev *dev);

#endif
