/* A tiny virtio-mmio driver for the device tests: the test plays the guest.
 * Guest memory is a flat buffer; the driver talks to the device only through
 * the bus (as a vCPU would) and the rings in guest memory. */
#ifndef SBX_VMM_TEST_VIRTIO_DRIVER_H
#define SBX_VMM_TEST_VIRTIO_DRIVER_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "../bus.h"
#include "../guest_mem.h"
#include "../irq.h"
#include "../evloop.h"
#include "../virtio_mmio.h"

/* Monotonic milliseconds, for the tests' bounded waits. */
static inline long td_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A thread body that runs the event loop given as arg (pthread_create). */
static inline void *td_loop_main(void *arg)
{
    evloop_run(arg);
    return NULL;
}

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

#define TD_MEM_SIZE (32u << 20)
#define TD_BASE 0xd0000000ull
#define TD_GSI 5u
#define TD_MAXQ 4

struct td_queue {
    unsigned size;
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen, next_free;
};

struct td {
    uint8_t *mem_buf;
    struct guest_mem mem;
    struct bus bus;
    struct irq_chip irq;
    atomic_int irq_edges;       /* rising edges seen on TD_GSI */
    uint64_t alloc_next;        /* bump allocator for rings and buffers */
    struct td_queue q[TD_MAXQ];
};

static inline int td_set_level(void *ctx, unsigned gsi, int level)
{
    struct td *t = ctx;

    if (gsi == TD_GSI && level)
        atomic_fetch_add(&t->irq_edges, 1);
    return 0;
}

static inline void td_init(struct td *t)
{
    memset(t, 0, sizeof(*t));
    t->mem_buf = aligned_alloc(4096, TD_MEM_SIZE);
    CHECK(t->mem_buf);
    memset(t->mem_buf, 0, TD_MEM_SIZE);
    gmem_init_flat(&t->mem, t->mem_buf, TD_MEM_SIZE);
    t->irq = (struct irq_chip){ .set_level = td_set_level, .ctx = t };
    t->alloc_next = 0x1000;
}

static inline uint64_t td_alloc(struct td *t, uint64_t len)
{
    uint64_t gpa = t->alloc_next;

    t->alloc_next = (t->alloc_next + len + 4095) & ~4095ull;
    CHECK(t->alloc_next <= TD_MEM_SIZE);
    return gpa;
}

static inline uint32_t td_rd(struct td *t, uint64_t off)
{
    uint32_t v;

    CHECK(bus_read(&t->bus, TD_BASE + off, &v, 4));
    return v;
}

static inline void td_wr(struct td *t, uint64_t off, uint32_t v)
{
    CHECK(bus_write(&t->bus, TD_BASE + off, &v, 4));
}

static inline void td_setup_queue(struct td *t, unsigned qi, unsigned size)
{
    struct td_queue *q = &t->q[qi];

    td_wr(t, VIRTIO_MMIO_QUEUE_SEL, qi);
    CHECK(td_rd(t, VIRTIO_MMIO_QUEUE_READY) == 0);
    CHECK(td_rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX) >= size);
    memset(q, 0, sizeof(*q));
    q->size = size;
    q->desc = td_alloc(t, 16ull * size);
    q->avail = td_alloc(t, 6 + 2ull * size);
    q->used = td_alloc(t, 6 + 8ull * size);
    td_wr(t, VIRTIO_MMIO_QUEUE_NUM, size);
    td_wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
    td_wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc >> 32));
    td_wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)q->avail);
    td_wr(t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(q->avail >> 32));
    td_wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)q->used);
    td_wr(t, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(q->used >> 32));
    td_wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(td_rd(t, VIRTIO_MMIO_QUEUE_READY) == 1);
}

/* The driver initialisation sequence of spec 3.1.1; returns the status read back. */
static inline uint32_t td_probe(struct td *t, uint32_t device_id, uint64_t want, unsigned nq,
                                unsigned qsize)
{
    uint64_t offered;

    CHECK(td_rd(t, VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976);
    CHECK(td_rd(t, VIRTIO_MMIO_VERSION) == 2);
    CHECK(td_rd(t, VIRTIO_MMIO_DEVICE_ID) == device_id);
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    td_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    offered = td_rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
    td_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)td_rd(t, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    want &= offered;
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)want);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(want >> 32));
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                 VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
        return td_rd(t, VIRTIO_MMIO_STATUS);
    for (unsigned i = 0; i < nq; i++)
        td_setup_queue(t, i, qsize);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    return td_rd(t, VIRTIO_MMIO_STATUS);
}

static inline void td_desc(struct td *t, struct td_queue *q, unsigned i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = t->mem_buf + q->desc + 16ull * i;

    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/* Makes the chain starting at descriptor head available (does not kick). */
static inline void td_publish(struct td *t, struct td_queue *q, uint16_t head)
{
    memcpy(t->mem_buf + q->avail + 4 + 2 * (q->avail_idx % q->size), &head, 2);
    q->avail_idx++;
    __atomic_store_n((uint16_t *)(t->mem_buf + q->avail + 2), q->avail_idx, __ATOMIC_RELEASE);
}

/* Posts one single-descriptor buffer; writable if dev_writes. Uses descriptor
 * slots round-robin, so at most size buffers may be outstanding. */
static inline uint16_t td_post(struct td *t, unsigned qi, uint64_t gpa, uint32_t len,
                               bool dev_writes)
{
    struct td_queue *q = &t->q[qi];
    uint16_t slot = q->next_free++ % q->size;

    td_desc(t, q, slot, gpa, len, dev_writes ? VRING_DESC_F_WRITE : 0, 0);
    td_publish(t, q, slot);
    return slot;
}

static inline void td_kick(struct td *t, unsigned qi)
{
    td_wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, qi);
}

/* Takes the next used element; false if the device has not used one yet. */
/* Makes n device-writable buffers of len bytes, from guest address base on, available on
 * queue q (descriptors 0..n-1). */
static inline void td_post_writable(struct td *t, struct td_queue *q, unsigned n, uint64_t base,
                                    uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        td_desc(t, q, i, base + (uint64_t)i * len, len, VRING_DESC_F_WRITE, 0);
        td_publish(t, q, (uint16_t)i);
    }
}

/* Fuzzers' input records { u8 flags; u16 len (LE); u8 bytes[len] }: takes the
 * next one from *data and *size (len cut to what is left and to max), copies its
 * bytes to guest memory at gpa. Returns false when no record is left. */
static inline bool td_fuzz_record(struct td *t, const uint8_t **data, size_t *size, uint64_t gpa,
                                  size_t max, uint8_t *flags, size_t *len)
{
    size_t n;

    if (*size < 3)
        return false;
    *flags = (*data)[0];
    n = (size_t)((*data)[1] | (*data)[2] << 8);
    *data += 3;
    *size -= 3;
    n = n < *size ? n : *size;
    n = n < max ? n : max;
    memcpy(t->mem_buf + gpa, *data, n);
    *data += n;
    *size -= n;
    *len = n;
    return true;
}

/* Publishes the device-readable bytes [gpa, gpa + len) at descriptor slot of q:
 * one descriptor, or when split two (slot and slot + half, the second with
 * flags2). */
static inline void td_post_bytes(struct td *t, struct td_queue *q, unsigned slot, unsigned half,
                                 uint64_t gpa, size_t len, bool split, uint16_t flags2)
{
    if (split && len > 1) {
        td_desc(t, q, slot, gpa, (uint32_t)len / 2, VRING_DESC_F_NEXT, (uint16_t)(slot + half));
        td_desc(t, q, slot + half, gpa + len / 2, (uint32_t)(len - len / 2), flags2, 0);
    } else {
        td_desc(t, q, slot, gpa, (uint32_t)len, 0, 0);
    }
    td_publish(t, q, (uint16_t)slot);
}

static inline bool td_used(struct td *t, unsigned qi, uint32_t *id, uint32_t *len)
{
    struct td_queue *q = &t->q[qi];
    uint16_t idx = __atomic_load_n((uint16_t *)(t->mem_buf + q->used + 2), __ATOMIC_ACQUIRE);
    const uint8_t *e;

    if (idx == q->used_seen)
        return false;
    e = t->mem_buf + q->used + 4 + 8 * (q->used_seen % q->size);
    memcpy(id, e, 4);
    memcpy(len, e + 4, 4);
    q->used_seen++;
    return true;
}

/* Gives every buffer the device used on queue qi (one of n posted by
 * td_post_writable with stride bytes each) back to it, len bytes long; checks
 * the device named a posted buffer and wrote no more than it holds. */
static inline void td_recycle_writable(struct td *t, unsigned qi, unsigned n, uint64_t base,
                                       uint32_t stride, uint32_t len)
{
    uint32_t id, used;

    while (td_used(t, qi, &id, &used)) {
        CHECK(id < n && used <= stride);
        td_desc(t, &t->q[qi], id, base + (uint64_t)id * stride, len, VRING_DESC_F_WRITE, 0);
        td_publish(t, &t->q[qi], (uint16_t)id);
    }
}

#endif
