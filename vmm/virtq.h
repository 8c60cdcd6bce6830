/* Split virtqueues (virtio 1.x, section 2.7), device side, over guest_mem.
 *
 * The rings live in guest memory that the guest may rewrite at any moment, so
 * every index, address and length read from them is checked, each descriptor is
 * read once, and a malformed queue is reported (-EIO) and the queue marked broken
 * rather than trusted: the transport then sets DEVICE_NEEDS_RESET.
 *
 * A virtq is not locked: its owner (the virtio transport's device lock)
 * serialises every call on one queue. */
#ifndef SBX_VMM_VIRTQ_H
#define SBX_VMM_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "guest_mem.h"

#define VIRTQ_MAX_SIZE 32768u
/* Most segments one popped chain may have; a longer chain is an error (-E2BIG,
 * queue broken). Linux drivers use at most a few dozen. */
#define VIRTQ_CHAIN_MAX_SEGS 256u

struct virtq {
    const struct guest_mem *mem;
    uint16_t size;           /* 0 while not set up; a power of 2 else (32768 fits) */
    bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;           /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    bool broken;             /* a malformed ring was seen: every call fails */
    uint8_t *desc;           /* host views of the three parts, checked at init */
    uint8_t *avail;
    uint8_t *used;
    uint16_t last_avail;     /* next avail->ring entry to consume */
    uint16_t used_idx;       /* our copy of used->idx */
    uint16_t signalled_used; /* used_idx when the driver was last interrupted */
    bool signalled_valid;
};

/* One popped descriptor chain: device-readable segments iov[0, nr_out) first,
 * then device-writable ones iov[nr_out, nr_out + nr_in). The iovecs point into
 * guest memory; zero-length descriptors are dropped. */
struct virtq_chain {
    uint16_t head;           /* give back to virtq_push */
    unsigned nr_out, nr_in;
    size_t out_len, in_len;  /* byte totals of each kind */
    struct iovec iov[VIRTQ_CHAIN_MAX_SEGS];
};

/* Sets q up over the rings at desc_gpa / avail_gpa / used_gpa with size entries;
 * features is the negotiated feature word (for EVENT_IDX and INDIRECT_DESC).
 * Checks size is a power of 2 in [1, VIRTQ_MAX_SIZE], each part's alignment
 * (16 / 2 / 4) and that each part lies wholly in guest memory.
 * Starts at ring index 0, as on a freshly set-up ring. Returns 0 or -EINVAL
 * (q then has size 0). */
int virtq_init(struct virtq *q, const struct guest_mem *mem, unsigned size, uint64_t desc_gpa,
               uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);

/* Forgets the queue (size 0): later calls fail with -EIO. */
void virtq_reset(struct virtq *q);

/* True if the driver has made a chain available that virtq_pop would return
 * (or a malformed index that it would report). */
bool virtq_has_avail(struct virtq *q);

/* Pops the next available chain into c. Returns 1 with c filled, 0 if none is
 * available, or -EIO / -E2BIG if the ring or the chain is malformed (bad index,
 * address outside guest memory, length overflow, loop, readable after writable
 * segment, nested or unnegotiated indirect table, more than the queue size or
 * VIRTQ_CHAIN_MAX_SEGS descriptors); the queue is then broken.
 * With EVENT_IDX, finding the ring empty sets avail_event so that the driver
 * kicks for its next buffer (and re-checks, closing the race with it). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Gives back the chain most recently popped without using it (it will be popped
 * again). Only valid right after a successful virtq_pop. */
void virtq_unpop(struct virtq *q);

/* Returns chain head to the driver as used, with len bytes written into its
 * writable segments. Returns 0, or -EIO if the queue is broken or not set up. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* After one or more pushes: true if the driver wants an interrupt now (honours
 * VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). Records the
 * decision, so call it once per batch and interrupt when it says so. */
bool virtq_need_interrupt(struct virtq *q);

/* Copies up to len bytes from the chain's readable segments starting at byte
 * offset off into dst; returns the number copied (short at the end). */
size_t virtq_chain_read(const struct virtq_chain *c, size_t off, void *dst, size_t len);
/* Copies up to len bytes into the chain's writable segments starting at byte
 * offset off (counted over writable segments only); returns the number copied. */
size_t virtq_chain_write(const struct virtq_chain *c, size_t off, const void *src, size_t len);

/* Fills out (at most max entries) with the part [off, off + len) of the chain's
 * readable (writable if writable is true) segments; returns the entries used.
 * The range is clipped to the segments' total length. */
unsigned virtq_chain_slice(const struct virtq_chain *c, bool writable, size_t off, size_t len,
                           struct iovec *out, unsigned max);

#endif
