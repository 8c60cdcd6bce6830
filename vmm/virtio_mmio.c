/* virtio-mmio version 2 register file and device status machine. */
#include "virtio_mmio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "log.h"

#define MMIO_MAGIC 0x74726976u /* "virt" */
#define MMIO_VERSION 2u
#define TRANSPORT_FEATURES ((1ull << VIRTIO_F_VERSION_1) | \
                            (1ull << VIRTIO_RING_F_INDIRECT_DESC) | \
                            (1ull << VIRTIO_RING_F_EVENT_IDX))

struct mmio_queue {
    uint32_t num;
    bool ready;
    uint64_t desc, avail, used;
    struct virtq vq;
};

/* A queue's kick eventfd (virtio_mmio_bind_kicks). */
struct mmio_kick {
    struct virtio_mmio_dev *dev;
    unsigned q;
    int fd;
    bool registered;            /* the hypervisor signals fd */
};

struct virtio_mmio_dev {
    pthread_mutex_t lock;
    const struct virtio_dev_ops *ops;
    void *priv;
    const struct guest_mem *mem;
    const struct irq_chip *irq;
    uint64_t base;
    unsigned gsi;
    uint64_t offered, driver_features;
    uint32_t dev_features_sel, drv_features_sel, queue_sel;
    uint32_t status, interrupt_status, config_generation;
    bool active; /* DRIVER_OK reached and activate() succeeded */
    struct mmio_queue queues[VIRTIO_MMIO_MAX_QUEUES];
    struct evloop *kick_loop;   /* where the kick eventfds are watched, or NULL */
    struct mmio_kick kicks[VIRTIO_MMIO_MAX_QUEUES];
};

static void raise_interrupt(struct virtio_mmio_dev *dev, uint32_t why)
{
    dev->interrupt_status |= why;
    if (irq_pulse(dev->irq, dev->gsi) < 0)
        log_warn("virtio-%s: raising GSI %u failed", dev->ops->name, dev->gsi);
}

void virtio_mmio_device_error(struct virtio_mmio_dev *dev, const char *why)
{
    if (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET)
        return;
    log_warn("virtio-%s: device error: %s; needs reset", dev->ops->name, why);
    dev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (dev->status & VIRTIO_CONFIG_S_DRIVER_OK)
        raise_interrupt(dev, VIRTIO_MMIO_INT_CONFIG);
}

static void device_reset(struct virtio_mmio_dev *dev)
{
    if (dev->ops->reset)
        dev->ops->reset(dev);
    dev->driver_features = 0;
    dev->dev_features_sel = dev->drv_features_sel = dev->queue_sel = 0;
    dev->status = dev->interrupt_status = 0;
    dev->active = false;
    memset(dev->queues, 0, sizeof(dev->queues));
}

static struct mmio_queue *selected_queue(struct virtio_mmio_dev *dev)
{
    return dev->queue_sel < dev->ops->num_queues ? &dev->queues[dev->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_mmio_dev *dev, uint64_t off)
{
    struct mmio_queue *q = selected_queue(dev);

    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE: return MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION: return MMIO_VERSION;
    case VIRTIO_MMIO_DEVICE_ID: return dev->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return dev->dev_features_sel < 2 ? (uint32_t)(dev->offered >> (32 * dev->dev_features_sel))
                                         : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? dev->ops->queue_max_size : 0;
    case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return dev->interrupt_status;
    case VIRTIO_MMIO_STATUS: return dev->status;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH: return UINT32_MAX; /* no shared memory regions */
    case VIRTIO_MMIO_CONFIG_GENERATION: return dev->config_generation;
    default: return 0;
    }
}

static bool features_acceptable(const struct virtio_mmio_dev *dev)
{
    if (dev->driver_features & ~dev->offered)
        return false;
    return dev->driver_features & (1ull << VIRTIO_F_VERSION_1);
}

static void queue_set_ready(struct virtio_mmio_dev *dev, struct mmio_queue *q, uint32_t v)
{
    if (!v) {
        q->ready = false;
        virtq_reset(&q->vq);
        return;
    }
    if (q->ready || !(dev->status & VIRTIO_CONFIG_S_FEATURES_OK))
        return;
    if (q->num > dev->ops->queue_max_size ||
        virtq_init(&q->vq, dev->mem, q->num, q->desc, q->avail, q->used,
                   dev->driver_features) < 0) {
        virtio_mmio_device_error(dev, "bad queue size or ring address");
        return;
    }
    q->ready = true;
}

static void set_status(struct virtio_mmio_dev *dev, uint32_t v)
{
    uint32_t added = v & ~dev->status;

    if (v == 0) {
        device_reset(dev);
        return;
    }
    if ((added & VIRTIO_CONFIG_S_FEATURES_OK) && !features_acceptable(dev))
        v &= ~VIRTIO_CONFIG_S_FEATURES_OK; /* the driver reads it back and gives up */
    if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK))
        v &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    dev->status = v | (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    if ((dev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !dev->active &&
        !(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        dev->active = true;
        if (dev->ops->activate && dev->ops->activate(dev) < 0)
            virtio_mmio_device_error(dev, "activation failed");
    }
}

static void set_addr_half(uint64_t *addr, bool high, uint32_t v)
{
    if (high)
        *addr = (*addr & 0xffffffffull) | ((uint64_t)v << 32);
    else
        *addr = (*addr & ~0xffffffffull) | v;
}

static void queue_reg_write(struct virtio_mmio_dev *dev, uint64_t off, uint32_t v)
{
    struct mmio_queue *q = selected_queue(dev);

    if (!q)
        return;
    if (off == VIRTIO_MMIO_QUEUE_READY) {
        queue_set_ready(dev, q, v);
        return;
    }
    if (q->ready)
        return; /* the layout of a live queue is fixed */
    switch (off) {
    case VIRTIO_MMIO_QUEUE_NUM: q->num = v; break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: set_addr_half(&q->desc, false, v); break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_addr_half(&q->desc, true, v); break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW: set_addr_half(&q->avail, false, v); break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: set_addr_half(&q->avail, true, v); break;
    case VIRTIO_MMIO_QUEUE_USED_LOW: set_addr_half(&q->used, false, v); break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH: set_addr_half(&q->used, true, v); break;
    }
}

static void queue_notify(struct virtio_mmio_dev *dev, uint32_t v)
{
    if (!dev->active || (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET))
        return;
    if (v >= dev->ops->num_queues || !dev->queues[v].ready || !dev->ops->queue_notify)
        return;
    dev->ops->queue_notify(dev, v);
}

static void driver_features_write(struct virtio_mmio_dev *dev, uint32_t v)
{
    if (dev->drv_features_sel >= 2 || (dev->status & VIRTIO_CONFIG_S_FEATURES_OK))
        return;
    set_addr_half(&dev->driver_features, dev->drv_features_sel == 1, v);
}

static void reg_write(struct virtio_mmio_dev *dev, uint64_t off, uint32_t v)
{
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: dev->dev_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES: driver_features_write(dev, v); break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: dev->drv_features_sel = v; break;
    case VIRTIO_MMIO_QUEUE_SEL: dev->queue_sel = v; break;
    case VIRTIO_MMIO_QUEUE_NOTIFY: queue_notify(dev, v); break;
    case VIRTIO_MMIO_INTERRUPT_ACK: dev->interrupt_status &= ~v; break;
    case VIRTIO_MMIO_STATUS: set_status(dev, v); break;
    default: queue_reg_write(dev, off, v); break;
    }
}

static void mmio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct virtio_mmio_dev *dev = opaque;
    uint32_t v;

    memset(data, 0, len);
    if (off >= VIRTIO_MMIO_WINDOW || len > VIRTIO_MMIO_WINDOW - off)
        return;
    pthread_mutex_lock(&dev->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (dev->ops->config_read)
            dev->ops->config_read(dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
    } else if (len == 4 && !(off & 3)) {
        v = reg_read(dev, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&dev->lock);
}

static void mmio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct virtio_mmio_dev *dev = opaque;
    uint32_t v;

    if (off >= VIRTIO_MMIO_WINDOW || len > VIRTIO_MMIO_WINDOW - off)
        return;
    pthread_mutex_lock(&dev->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (dev->ops->config_write)
            dev->ops->config_write(dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
    } else if (len == 4 && !(off & 3)) {
        memcpy(&v, data, 4);
        reg_write(dev, off, v);
    }
    pthread_mutex_unlock(&dev->lock);
}

static const struct bus_ops mmio_bus_ops = { .read = mmio_read, .write = mmio_write };

static bool ops_valid(const struct virtio_dev_ops *ops)
{
    unsigned qmax = ops->queue_max_size;

    return ops->name && ops->num_queues <= VIRTIO_MMIO_MAX_QUEUES && qmax &&
           qmax <= VIRTQ_MAX_SIZE && !(qmax & (qmax - 1));
}

struct virtio_mmio_dev *virtio_mmio_create(struct bus *bus, uint64_t base, unsigned gsi,
                                           const struct irq_chip *irq,
                                           const struct guest_mem *mem,
                                           const struct virtio_dev_ops *ops, void *priv)
{
    struct virtio_mmio_dev *dev;
    int rc;

    if (!ops_valid(ops)) {
        errno = EINVAL;
        return NULL;
    }
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    dev->ops = ops;
    dev->priv = priv;
    dev->mem = mem;
    dev->irq = irq;
    dev->base = base;
    dev->gsi = gsi;
    dev->offered = ops->features | TRANSPORT_FEATURES;
    pthread_mutex_init(&dev->lock, NULL);
    rc = bus_register(bus, base, VIRTIO_MMIO_WINDOW, &mmio_bus_ops, dev, ops->name);
    if (rc < 0) {
        virtio_mmio_destroy(dev);
        errno = -rc;
        return NULL;
    }
    return dev;
}

/* With reg (a failed bind), the hypervisor is told to forget the eventfds
 * first, so that kicks go back to the MMIO path. */
static void unbind_kicks(struct virtio_mmio_dev *dev, virtio_mmio_kick_register reg, void *ctx)
{
    for (unsigned q = 0; dev->kick_loop && q < dev->ops->num_queues; q++) {
        struct mmio_kick *k = &dev->kicks[q];

        if (k->fd < 0)
            continue;
        if (reg && k->registered)
            reg(ctx, dev->base + VIRTIO_MMIO_QUEUE_NOTIFY, q, k->fd, false);
        evloop_del(dev->kick_loop, k->fd);
        close(k->fd);
        k->fd = -1;
    }
    dev->kick_loop = NULL;
}

/* A kick eventfd fired: the same as the driver writing QueueNotify. */
static void kick_ready(void *opaque, int fd, uint32_t events)
{
    struct mmio_kick *k = opaque;
    eventfd_t n;

    (void)events;
    if (eventfd_read(fd, &n) < 0)
        return;
    pthread_mutex_lock(&k->dev->lock);
    queue_notify(k->dev, k->q);
    pthread_mutex_unlock(&k->dev->lock);
}

int virtio_mmio_bind_kicks(struct virtio_mmio_dev *dev, struct evloop *loop,
                           virtio_mmio_kick_register reg, void *ctx)
{
    int rc = 0;

    for (unsigned q = 0; q < dev->ops->num_queues; q++)
        dev->kicks[q] = (struct mmio_kick){ .dev = dev, .q = q, .fd = -1 };
    dev->kick_loop = loop;
    for (unsigned q = 0; rc == 0 && q < dev->ops->num_queues; q++) {
        struct mmio_kick *k = &dev->kicks[q];

        k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (k->fd < 0)
            rc = -errno;
        else if ((rc = evloop_add(loop, k->fd, EPOLLIN, kick_ready, k)) < 0)
            close(k->fd), k->fd = -1;
        else if ((rc = reg(ctx, dev->base + VIRTIO_MMIO_QUEUE_NOTIFY, q, k->fd, true)) == 0)
            k->registered = true;
    }
    if (rc < 0)
        unbind_kicks(dev, reg, ctx);
    return rc;
}

struct virtio_mmio_dev *virtio_mmio_of_range(const struct bus_range *range)
{
    return range->ops == &mmio_bus_ops ? range->opaque : NULL;
}

void virtio_mmio_destroy(struct virtio_mmio_dev *dev)
{
    if (!dev)
        return;
    unbind_kicks(dev, NULL, NULL); /* the VM is gone or going: no need to deassign */
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

uint64_t virtio_mmio_base(const struct virtio_mmio_dev *dev) { return dev->base; }
uint64_t virtio_mmio_size(const struct virtio_mmio_dev *dev) { (void)dev; return VIRTIO_MMIO_WINDOW; }
unsigned virtio_mmio_gsi(const struct virtio_mmio_dev *dev) { return dev->gsi; }
const char *virtio_mmio_name(const struct virtio_mmio_dev *dev) { return dev->ops->name; }
void *virtio_mmio_priv(const struct virtio_mmio_dev *dev) { return dev->priv; }
const struct guest_mem *virtio_mmio_mem(const struct virtio_mmio_dev *dev) { return dev->mem; }
void virtio_mmio_lock(struct virtio_mmio_dev *dev) { pthread_mutex_lock(&dev->lock); }
void virtio_mmio_unlock(struct virtio_mmio_dev *dev) { pthread_mutex_unlock(&dev->lock); }
uint64_t virtio_mmio_features(const struct virtio_mmio_dev *dev) { return dev->driver_features; }
uint32_t virtio_mmio_status(const struct virtio_mmio_dev *dev) { return dev->status; }

int virtio_mmio_cmdline(const struct virtio_mmio_dev *dev, char *buf, size_t size)
{
    return snprintf(buf, size, "virtio_mmio.device=%u@0x%" PRIx64 ":%u", VIRTIO_MMIO_WINDOW,
                    dev->base, dev->gsi);
}

struct virtq *virtio_mmio_queue(struct virtio_mmio_dev *dev, unsigned q)
{
    if (!dev->active || (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET))
        return NULL;
    if (q >= dev->ops->num_queues || !dev->queues[q].ready)
        return NULL;
    return &dev->queues[q].vq;
}

void virtio_mmio_signal_used(struct virtio_mmio_dev *dev, unsigned q)
{
    struct virtq *vq = virtio_mmio_queue(dev, q);

    if (vq && virtq_need_interrupt(vq))
        raise_interrupt(dev, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio_dev *dev)
{
    dev->config_generation++;
    if (dev->status & VIRTIO_CONFIG_S_DRIVER_OK)
        raise_interrupt(dev, VIRTIO_MMIO_INT_CONFIG);
}
