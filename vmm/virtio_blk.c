/* virtio-blk over a snapfs disk (see virtio_blk.h): the device, its queue
 * processing and life cycle. Requests themselves are in virtio_blk_req.c. */
#include "virtio_blk_int.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <linux/virtio_ids.h>

#include "devices.h"
#include "log.h"
#include "vm.h"

#define DISCARD_ALIGN_SECTORS (BLK_SIZE / SECTOR)

static void schedule_kick(struct virtio_blk *b);

/* ---- the queue ---- */

static void signal_answers(struct virtio_blk *b)
{
    if (!b->pushed)
        return;
    b->pushed = 0;
    virtio_mmio_signal_used(b->dev, 0);
}

/* With the device lock held. Starts at most one queue's worth of requests per
 * call, so that a busy guest cannot hold the loop; the rest is scheduled
 * again. Stops while a write waits for the writes in flight. */
static void blk_process(struct virtio_blk *b)
{
    struct virtq *q = virtio_mmio_queue(b->dev, 0);
    unsigned started = 0;
    int rc = 0;

    if (!q)
        return;
    while (blk_req_resume(b) && started < VIRTIO_BLK_QUEUE_SIZE &&
           (rc = virtq_pop(q, &b->chain)) > 0) {
        if (b->chain.in_len == 0) {
            rc = -EINVAL;
            break;
        }
        if (blk_req_start(b, &b->chain) < 0) {
            virtq_unpop(q); /* out of memory: try again later */
            rc = 0;
            schedule_kick(b);
            break;
        }
        started++;
    }
    signal_answers(b);
    if (rc == -EINVAL)
        virtio_mmio_device_error(b->dev, "request without a status byte");
    else if (rc < 0)
        virtio_mmio_device_error(b->dev, "malformed request queue");
    else if (started == VIRTIO_BLK_QUEUE_SIZE)
        schedule_kick(b);
}

void virtio_blk_process(struct virtio_blk *b)
{
    virtio_mmio_lock(b->dev);
    blk_process(b);
    virtio_mmio_unlock(b->dev);
}

/* Runs the callbacks of finished I/O (which answer the guest), then starts
 * what waited for them. With the device lock held. */
static void blk_complete(struct virtio_blk *b)
{
    if (snapfs_aio_process(b->disk) < 0)
        log_warn("virtio-blk: %s", snapfs_error());
    blk_process(b);
}

static void blk_aio_ready(void *opaque, int fd, uint32_t events)
{
    struct virtio_blk *b = opaque;

    (void)fd, (void)events;
    virtio_mmio_lock(b->dev);
    blk_complete(b);
    virtio_mmio_unlock(b->dev);
}

void virtio_blk_drain(struct virtio_blk *b)
{
    struct pollfd p = { .fd = b->use_aio ? snapfs_aio_fd(b->disk) : -1, .events = POLLIN };

    virtio_mmio_lock(b->dev);
    while (b->inflight) {
        virtio_mmio_unlock(b->dev);
        poll(&p, 1, 100);
        virtio_mmio_lock(b->dev);
        blk_complete(b);
    }
    virtio_mmio_unlock(b->dev);
}

unsigned virtio_blk_inflight(struct virtio_blk *b)
{
    unsigned n;

    virtio_mmio_lock(b->dev);
    n = b->inflight;
    virtio_mmio_unlock(b->dev);
    return n;
}

static void blk_kick(void *opaque)
{
    struct virtio_blk *b = opaque;

    virtio_mmio_lock(b->dev);
    atomic_store(&b->kick_scheduled, false);
    blk_process(b);
    virtio_mmio_unlock(b->dev);
}

static void schedule_kick(struct virtio_blk *b)
{
    if (atomic_exchange(&b->kick_scheduled, true))
        return;
    if (evloop_call(b->loop, blk_kick, b) < 0) {
        atomic_store(&b->kick_scheduled, false);
        log_warn("virtio-blk: cannot schedule queue work");
    }
}

/* ---- transport callbacks ---- */

static struct virtio_blk *blk_of(struct virtio_mmio_dev *dev)
{
    return virtio_mmio_priv(dev);
}

static void blk_config_read(struct virtio_mmio_dev *dev, uint32_t off, void *data, unsigned len)
{
    const struct virtio_blk *b = blk_of(dev);
    size_t n = 0;

    memset(data, 0, len);
    if (off >= sizeof(b->cfg))
        return;
    n = sizeof(b->cfg) - off < len ? sizeof(b->cfg) - off : len;
    memcpy(data, (const uint8_t *)&b->cfg + off, n);
}

static int blk_activate(struct virtio_mmio_dev *dev)
{
    schedule_kick(blk_of(dev));
    return 0;
}

static void blk_queue_notify(struct virtio_mmio_dev *dev, unsigned q)
{
    (void)q;
    schedule_kick(blk_of(dev));
}

/* Requests in flight finish, but their answers are dropped: the rings they
 * belonged to are gone. */
static void blk_reset(struct virtio_mmio_dev *dev)
{
    struct virtio_blk *b = blk_of(dev);

    b->gen++;
    blk_req_drop_stalled(b);
    b->pushed = 0;
}

static const struct virtio_dev_ops blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
                (1ull << VIRTIO_BLK_F_WRITE_ZEROES),
    .num_queues = 1,
    .queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
};

/* ---- life cycle ---- */

static void fill_config(struct virtio_blk *b)
{
    b->cfg.capacity = htole64(b->sectors);
    b->cfg.seg_max = htole32(VIRTIO_BLK_SEG_MAX);
    b->cfg.blk_size = htole32(BLK_SIZE);
    b->cfg.num_queues = htole16(1);
    b->cfg.max_discard_sectors = htole32(MAX_DISCARD_SECTORS);
    b->cfg.max_discard_seg = htole32(1);
    b->cfg.discard_sector_alignment = htole32(DISCARD_ALIGN_SECTORS);
    b->cfg.max_write_zeroes_sectors = htole32(MAX_WRITE_ZEROES_SECTORS);
    b->cfg.max_write_zeroes_seg = htole32(1);
    b->cfg.write_zeroes_may_unmap = 1; /* zeroed blocks may become holes */
}

struct virtio_blk *virtio_blk_create(struct bus *bus, uint64_t base, unsigned gsi,
                                     const struct irq_chip *irq, const struct guest_mem *mem,
                                     struct evloop *loop, struct snapfs_store *store,
                                     struct snapfs_disk *disk, bool read_only, bool sync_io)
{
    struct virtio_blk *b = NULL;
    int err = EINVAL;

    if (!loop || !disk)
        goto fail;
    err = ENOMEM;
    b = calloc(1, sizeof(*b));
    if (!b)
        goto fail;
    *b = (struct virtio_blk){ .ops = blk_ops, .loop = loop, .store = store, .disk = disk,
                              .read_only = read_only,
                              .use_aio = !sync_io && snapfs_aio_available(disk),
                              .sectors = snapfs_disk_size(disk) / SECTOR };
    if (read_only)
        b->ops.features |= 1ull << VIRTIO_BLK_F_RO;
    if (!sync_io && !b->use_aio)
        log_warn("virtio-blk: io_uring is not available; serving requests synchronously");
    fill_config(b);
    b->dev = virtio_mmio_create(bus, base, gsi, irq, mem, &b->ops, b);
    if (!b->dev) {
        err = errno;
        goto fail;
    }
    if (!b->use_aio)
        return b;
    err = -evloop_add(loop, snapfs_aio_fd(disk), EPOLLIN, blk_aio_ready, b);
    if (err == 0)
        return b;
    virtio_mmio_destroy(b->dev);
fail:
    free(b);
    if (disk)
        snapfs_disk_close(disk);
    if (store)
        snapfs_store_close(store);
    errno = err;
    return NULL;
}

static int copy_value(char *dst, size_t size, const char *val, size_t len)
{
    if (len == 0 || len >= size)
        return -EINVAL;
    if (dst[0])
        return -EINVAL; /* given twice */
    memcpy(dst, val, len);
    dst[len] = '\0';
    return 0;
}

/* One "key=value" item of length len at item. */
static int parse_item(const char *item, size_t len, struct virtio_blk_spec *out)
{
    const char *eq = memchr(item, '=', len);
    size_t klen, vlen;

    if (!eq)
        return -EINVAL;
    klen = (size_t)(eq - item);
    vlen = len - klen - 1;
    if (klen == 5 && !memcmp(item, "store", 5))
        return copy_value(out->store, sizeof(out->store), eq + 1, vlen);
    if (klen == 5 && !memcmp(item, "image", 5))
        return copy_value(out->image, sizeof(out->image), eq + 1, vlen);
    if (klen == 7 && !memcmp(item, "overlay", 7))
        return copy_value(out->overlay, sizeof(out->overlay), eq + 1, vlen);
    if (klen == 2 && !memcmp(item, "io", 2))
        return copy_value(out->io, sizeof(out->io), eq + 1, vlen);
    return -EINVAL;
}

int virtio_blk_parse_spec(const char *spec, struct virtio_blk_spec *out, char *err,
                          size_t errlen)
{
    const char *p = spec;

    memset(out, 0, sizeof(*out));
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (parse_item(p, len, out) < 0) {
            snprintf(err, errlen, "bad item '%.*s' (want store=DIR,image=NAME or "
                     "store=DIR,overlay=PATH, and optionally io=uring|sync)",
                     (int)(len > 200 ? 200 : len), p);
            goto bad;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!out->store[0] || !out->image[0] == !out->overlay[0]) {
        snprintf(err, errlen, "want store=DIR and exactly one of image=NAME, overlay=PATH");
        goto bad;
    }
    if (out->io[0] && strcmp(out->io, "uring") && strcmp(out->io, "sync")) {
        snprintf(err, errlen, "io=%s: want io=uring or io=sync", out->io);
        goto bad;
    }
    if (out->image[0] && !snapfs_name_valid(out->image)) {
        snprintf(err, errlen, "invalid image name '%s'", out->image);
        goto bad;
    }
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return -EINVAL;
}

struct virtio_blk *virtio_blk_open(struct bus *bus, uint64_t base, unsigned gsi,
                                   const struct irq_chip *irq, const struct guest_mem *mem,
                                   struct evloop *loop, const char *spec, char *err,
                                   size_t errlen)
{
    struct virtio_blk_spec *s = malloc(sizeof(*s));
    struct snapfs_store *store = NULL;
    struct snapfs_disk *disk = NULL;
    struct virtio_blk *b = NULL;
    int saved = ENOMEM;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    saved = EINVAL;
    if (virtio_blk_parse_spec(spec, s, err, errlen) < 0)
        goto out;
    store = snapfs_store_open(s->store, 0);
    if (store)
        disk = snapfs_disk_open(store, s->image[0] ? s->image : NULL,
                                s->overlay[0] ? s->overlay : NULL, NULL);
    if (!disk) {
        saved = errno;
        snprintf(err, errlen, "%s", snapfs_error());
        if (store)
            snapfs_store_close(store);
        goto out;
    }
    b = virtio_blk_create(bus, base, gsi, irq, mem, loop, store, disk, !s->overlay[0],
                          !strcmp(s->io, "sync"));
    if (!b) {
        saved = errno;
        snprintf(err, errlen, "%s", strerror(saved));
    }
out:
    free(s);
    if (!b)
        errno = saved;
    return b;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
    if (!b)
        return;
    /* Closing the disk runs the callbacks of requests still in flight: they
     * see closing and only free their state. */
    b->closing = true;
    if (b->use_aio)
        evloop_del(b->loop, snapfs_aio_fd(b->disk));
    blk_req_drop_stalled(b);
    snapfs_disk_close(b->disk);
    virtio_mmio_destroy(b->dev);
    if (b->store)
        snapfs_store_close(b->store);
    free(b);
}

struct virtio_mmio_dev *virtio_blk_dev(struct virtio_blk *b)
{
    return b->dev;
}

/* ---- the device table's entry (devices.h) ---- */

int virtio_blk_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    char why[512];
    uint64_t base;
    unsigned gsi;
    int rc;

    if (!opts->disk)
        return 0;
    rc = vm_alloc_mmio_dev(vm, VIRTIO_MMIO_WINDOW, &base, &gsi);
    if (rc < 0) {
        snprintf(err, errlen, "virtio-blk: %s", strerror(-rc));
        return rc;
    }
    vm->blk = virtio_blk_open(&vm->mmio, base, gsi, &vm->irq, &vm->mem, vm->loop, opts->disk,
                              why, sizeof(why));
    if (!vm->blk) {
        rc = -errno;
        snprintf(err, errlen, "--disk %s: %s", opts->disk, why);
    }
    return rc;
}
