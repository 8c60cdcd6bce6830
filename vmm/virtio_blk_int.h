/* virtio-blk internals shared by the device (virtio_blk.c) and its request
 * engine (virtio_blk_req.c). Everything here runs with the device lock held. */
#ifndef SBX_VMM_VIRTIO_BLK_INT_H
#define SBX_VMM_VIRTIO_BLK_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_blk.h>

#include "virtio_blk.h"

#define SECTOR 512u          /* the protocol's unit */
#define BLK_SIZE 4096u       /* offered blk_size: snapfs allocates overlay space in 4 KiB blocks */
/* Discards cost a bitmap update and a hole punch whatever their length. */
#define MAX_DISCARD_SECTORS (1u << 24)
/* Write-zeroes cost the same plus a look at each block's image chunk, on the
 * event loop: a smaller bound (2 GiB) keeps one request short. */
#define MAX_WRITE_ZEROES_SECTORS (1u << 22)

struct blk_io;

struct virtio_blk {
    struct virtio_mmio_dev *dev;
    struct virtio_dev_ops ops;   /* features depend on read_only */
    struct evloop *loop;
    struct snapfs_store *store;
    struct snapfs_disk *disk;
    bool read_only;
    bool use_aio;                /* snapfs on io_uring; else synchronous calls */
    bool closing;                /* in virtio_blk_destroy: complete, answer nothing */
    uint64_t sectors;            /* capacity in 512-byte sectors */
    struct virtio_blk_config cfg;
    atomic_bool kick_scheduled;
    uint32_t gen;                /* bumped by every device reset */
    unsigned inflight;           /* requests started and not answered */
    unsigned writes_inflight;    /* of which writes */
    bool exclusive_inflight;     /* one of them is a write that must run alone */
    struct blk_io *stalled;      /* popped, waiting for writes to drain */
    unsigned pushed;             /* answers since the last interrupt */
    struct virtq_chain chain;    /* scratch for virtq_pop */
    struct iovec data[VIRTQ_CHAIN_MAX_SEGS];
};

/* Starts the request in chain c (popped from the queue, with at least one
 * writable byte): answers it at once when it is bad or needs no I/O, else
 * starts its I/O, or parks it in b->stalled when it must wait for the writes in
 * flight (the caller then stops popping). Returns 0, or -ENOMEM when it could
 * not be started (the caller gives the chain back with virtq_unpop). */
int blk_req_start(struct virtio_blk *b, const struct virtq_chain *c);

/* Starts b->stalled if the writes in flight now allow it; true if it did (or
 * nothing was stalled). */
bool blk_req_resume(struct virtio_blk *b);

/* Forgets the parked request (device reset). */
void blk_req_drop_stalled(struct virtio_blk *b);

#endif
