/* virtio-blk (device id 2, virtio 1.x section 5.2) backed by a snapfs disk.
 *
 * One request queue. Offers FLUSH, DISCARD (one segment per request, 4 KiB
 * aligned), WRITE_ZEROES (one segment; zeroed blocks become holes in the
 * overlay, so a guest's zeroing, e.g. ext4's lazy inode-table init on a grown
 * disk, costs no space), BLK_SIZE (4096: snapfs allocates overlay space in 4 KiB
 * blocks), SEG_MAX, and RO when the disk is an image opened without an overlay.
 * Requests: IN, OUT, FLUSH, DISCARD, WRITE_ZEROES, GET_ID (the image name, cut
 * to 20 bytes); any other type is answered UNSUPP.
 *
 * Every field of a request comes from the guest and is checked: the header must
 * be 16 readable bytes, the status is the last writable byte, data lengths are
 * whole sectors and sector ranges lie inside the disk (overflow-checked); a bad
 * request gets IOERR. A chain with no writable byte cannot carry a status: the
 * device then asks for a reset (DEVICE_NEEDS_RESET).
 *
 * Threads: a vCPU's queue kick is handed to the event loop with evloop_call;
 * the loop pops requests and starts them on snapfs's io_uring path (many in
 * flight, completions reaped when snapfs_aio_fd is readable), or, with
 * io=sync or where io_uring is not available, serves each synchronously. All
 * of it runs with the device lock held. */
#ifndef SBX_VMM_VIRTIO_BLK_H
#define SBX_VMM_VIRTIO_BLK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../snapfs/snapfs.h"
#include "evloop.h"
#include "virtio_mmio.h"

#define VIRTIO_BLK_QUEUE_SIZE 256u
/* Data segments one request may have (the header and status take two more:
 * 256 descriptors, the queue size, which Linux reaches through indirect
 * tables). */
#define VIRTIO_BLK_SEG_MAX 254u

struct virtio_blk;

/* The parts of a --disk SPEC: "store=DIR,image=NAME" (the image, read-only) or
 * "store=DIR,overlay=PATH" (the overlay read-write, on its own base image),
 * plus "io=uring" (the default) or "io=sync". */
struct virtio_blk_spec {
    char store[PATH_MAX];
    char image[SNAPFS_NAME_MAX + 1];  /* "" with an overlay */
    char overlay[PATH_MAX];           /* "" for a read-only image */
    char io[8];                       /* "", "uring" or "sync" */
};

/* Parses spec (keys in any order, each at most once; values must not be empty
 * and cannot contain ','). Returns 0, or -EINVAL with a one-line reason in err. */
int virtio_blk_parse_spec(const char *spec, struct virtio_blk_spec *out, char *err,
                          size_t errlen);

/* Creates the device on bus at base/gsi (see virtio_mmio_create) over disk,
 * served through loop. Takes ownership of disk and of store (may be NULL),
 * closing them in virtio_blk_destroy, also when this fails. read_only adds
 * VIRTIO_BLK_F_RO. sync_io serves requests with the synchronous snapfs calls
 * even where io_uring works. Set-up time only. Returns the device or NULL with
 * errno set. */
struct virtio_blk *virtio_blk_create(struct bus *bus, uint64_t base, unsigned gsi,
                                     const struct irq_chip *irq, const struct guest_mem *mem,
                                     struct evloop *loop, struct snapfs_store *store,
                                     struct snapfs_disk *disk, bool read_only, bool sync_io);

/* Parses spec, opens its store and disk and creates the device on them.
 * Returns the device, or NULL with errno set and a reason in err. */
struct virtio_blk *virtio_blk_open(struct bus *bus, uint64_t base, unsigned gsi,
                                   const struct irq_chip *irq, const struct guest_mem *mem,
                                   struct evloop *loop, const char *spec, char *err,
                                   size_t errlen);

/* Frees the device and closes its disk and store (unflushed writes may be lost,
 * as on a power cut). Only once no vCPU runs and the loop is stopped. */
void virtio_blk_destroy(struct virtio_blk *blk);

/* The transport handle (base/size/gsi, status). */
struct virtio_mmio_dev *virtio_blk_dev(struct virtio_blk *blk);

/* Starts the requests on the queue now (takes the device lock). Tests and
 * fuzzers call it in place of a queue kick. */
void virtio_blk_process(struct virtio_blk *blk);

/* Waits until no request is in flight, reaping completions itself (so it
 * works whether or not the loop runs). Tests and fuzzers. */
void virtio_blk_drain(struct virtio_blk *blk);

/* Requests started and not yet answered. */
unsigned virtio_blk_inflight(struct virtio_blk *blk);

#endif
