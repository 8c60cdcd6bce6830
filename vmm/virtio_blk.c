/* virtio-blk over a snapfs disk (see virtio_blk.h). Requests are served one
 * after the other on the event loop thread with the synchronous snapfs calls,
 * reading and writing guest memory in place through the chain's iovecs. */
#include "virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "devices.h"
#include "log.h"
#include "vm.h"

#define SECTOR 512u
#define BLK_SIZE 4096u
/* Discards cost a bitmap update and a hole punch whatever their length. */
#define MAX_DISCARD_SECTORS (1u << 24)
#define DISCARD_ALIGN_SECTORS (BLK_SIZE / SECTOR)

struct virtio_blk {
    struct virtio_mmio_dev *dev;
    struct virtio_dev_ops ops;   /* features depend on read_only */
    struct evloop *loop;
    struct snapfs_store *store;
    struct snapfs_disk *disk;
    bool read_only;
    uint64_t sectors;            /* capacity in 512-byte sectors */
    struct virtio_blk_config cfg;
    atomic_bool kick_scheduled;
    struct virtq_chain chain;    /* scratch: one request at a time */
    struct iovec data[VIRTQ_CHAIN_MAX_SEGS];
};

static void schedule_kick(struct virtio_blk *b);

/* ---- requests ---- */

/* [sector, sector + len) in whole sectors inside the disk (no overflow: sector
 * is compared with the capacity before any multiplication). */
static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
    return len % SECTOR == 0 && sector <= b->sectors && len / SECTOR <= b->sectors - sector;
}

/* Reads or writes len bytes at sector between the disk and the chain's data
 * bytes (writable ones before the status for a read, readable ones after the
 * header for a write). */
static uint8_t do_rw(struct virtio_blk *b, const struct virtq_chain *c, bool write,
                     uint64_t sector, size_t len)
{
    size_t data_off = write ? sizeof(struct virtio_blk_outhdr) : 0, got = 0;
    unsigned n = virtq_chain_slice(c, !write, data_off, len, b->data, VIRTQ_CHAIN_MAX_SEGS);
    uint64_t off = sector * SECTOR;

    for (unsigned i = 0; i < n; i++)
        got += b->data[i].iov_len;
    if (got != len || n > VIRTIO_BLK_SEG_MAX)
        return VIRTIO_BLK_S_IOERR;
    for (unsigned i = 0; i < n; i++) {
        const struct iovec *v = &b->data[i];
        int rc = write ? snapfs_pwrite(b->disk, v->iov_base, v->iov_len, off)
                       : snapfs_pread(b->disk, v->iov_base, v->iov_len, off);
        if (rc < 0) {
            log_warn("virtio-blk: %s", snapfs_error());
            return VIRTIO_BLK_S_IOERR;
        }
        off += v->iov_len;
    }
    return VIRTIO_BLK_S_OK;
}

static uint8_t do_discard(struct virtio_blk *b, const struct virtq_chain *c)
{
    struct virtio_blk_discard_write_zeroes seg;
    const size_t hdr = sizeof(struct virtio_blk_outhdr);
    uint64_t sector;
    uint32_t count;

    if (b->read_only)
        return VIRTIO_BLK_S_IOERR;
    /* max_discard_seg is 1: exactly one segment after the header. */
    if (c->out_len != hdr + sizeof(seg) || virtq_chain_read(c, hdr, &seg, sizeof(seg)) != sizeof(seg))
        return VIRTIO_BLK_S_IOERR;
    if (seg.flags)
        return VIRTIO_BLK_S_UNSUPP; /* unmap or reserved bits */
    sector = le64toh(seg.sector);
    count = le32toh(seg.num_sectors);
    if (count > MAX_DISCARD_SECTORS || !range_ok(b, sector, (uint64_t)count * SECTOR))
        return VIRTIO_BLK_S_IOERR;
    if (snapfs_discard(b->disk, (uint64_t)count * SECTOR, sector * SECTOR) < 0) {
        log_warn("virtio-blk: %s", snapfs_error());
        return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

/* The image name, NUL-padded (not terminated when it has 20 bytes or more). */
static size_t do_get_id(struct virtio_blk *b, const struct virtq_chain *c, size_t room)
{
    char id[VIRTIO_BLK_ID_BYTES] = { 0 };
    const char *name = snapfs_disk_image(b->disk);
    size_t len = strlen(name);

    memcpy(id, name, len < sizeof(id) ? len : sizeof(id));
    return virtq_chain_write(c, 0, id, room < sizeof(id) ? room : sizeof(id));
}

static int do_flush(struct virtio_blk *b)
{
    int rc = snapfs_flush(b->disk);

    if (rc < 0)
        log_warn("virtio-blk: %s", snapfs_error());
    return rc;
}

/* Serves one request whose header is h; *written gets the data bytes written
 * to the guest (before the status byte). Returns the status. */
static uint8_t do_request(struct virtio_blk *b, const struct virtq_chain *c,
                          const struct virtio_blk_outhdr *h, size_t *written)
{
    const size_t room = c->in_len - 1; /* writable bytes before the status */
    const size_t out_data = c->out_len - sizeof(*h);
    uint64_t sector = le64toh(h->sector);
    uint8_t st;

    switch (le32toh(h->type)) {
    case VIRTIO_BLK_T_IN:
        if (!range_ok(b, sector, room))
            return VIRTIO_BLK_S_IOERR;
        st = do_rw(b, c, false, sector, room);
        *written = st == VIRTIO_BLK_S_OK ? room : 0;
        return st;
    case VIRTIO_BLK_T_OUT:
        if (b->read_only || !range_ok(b, sector, out_data))
            return VIRTIO_BLK_S_IOERR;
        return do_rw(b, c, true, sector, out_data);
    case VIRTIO_BLK_T_FLUSH:
        return do_flush(b) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID:
        *written = do_get_id(b, c, room);
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_DISCARD:
        return do_discard(b, c);
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

/* Serves chain c (which has at least one writable byte) and writes its status
 * into the last writable byte; returns the used length. */
static uint32_t serve_chain(struct virtio_blk *b, const struct virtq_chain *c)
{
    struct virtio_blk_outhdr h;
    size_t written = 0;
    uint8_t status = VIRTIO_BLK_S_IOERR;

    if (virtq_chain_read(c, 0, &h, sizeof(h)) == sizeof(h))
        status = do_request(b, c, &h, &written);
    virtq_chain_write(c, c->in_len - 1, &status, 1);
    return (uint32_t)(written + 1);
}

/* With the device lock held. At most one queue's worth of requests per call,
 * so that a busy guest cannot hold the loop; the rest is scheduled again. */
static void blk_process(struct virtio_blk *b)
{
    struct virtq *q = virtio_mmio_queue(b->dev, 0);
    unsigned served = 0;
    int rc = 0;

    if (!q)
        return;
    while (served < VIRTIO_BLK_QUEUE_SIZE && (rc = virtq_pop(q, &b->chain)) > 0) {
        if (b->chain.in_len == 0) {
            rc = -EINVAL;
            break;
        }
        virtq_push(q, b->chain.head, serve_chain(b, &b->chain));
        served++;
    }
    if (served)
        virtio_mmio_signal_used(b->dev, 0);
    if (rc == -EINVAL)
        virtio_mmio_device_error(b->dev, "request without a status byte");
    else if (rc < 0)
        virtio_mmio_device_error(b->dev, "malformed request queue");
    else if (served == VIRTIO_BLK_QUEUE_SIZE)
        schedule_kick(b);
}

void virtio_blk_process(struct virtio_blk *b)
{
    virtio_mmio_lock(b->dev);
    blk_process(b);
    virtio_mmio_unlock(b->dev);
}

static void blk_kick(void *opaque)
{
    struct virtio_blk *b = opaque;

    atomic_store(&b->kick_scheduled, false);
    virtio_blk_process(b);
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

static const struct virtio_dev_ops blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD),
    .num_queues = 1,
    .queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
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
}

struct virtio_blk *virtio_blk_create(struct bus *bus, uint64_t base, unsigned gsi,
                                     const struct irq_chip *irq, const struct guest_mem *mem,
                                     struct evloop *loop, struct snapfs_store *store,
                                     struct snapfs_disk *disk, bool read_only)
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
                              .sectors = snapfs_disk_size(disk) / SECTOR };
    if (read_only)
        b->ops.features |= 1ull << VIRTIO_BLK_F_RO;
    fill_config(b);
    b->dev = virtio_mmio_create(bus, base, gsi, irq, mem, &b->ops, b);
    if (b->dev)
        return b;
    err = errno;
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
                     "store=DIR,overlay=PATH)", (int)(len > 200 ? 200 : len), p);
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
    b = virtio_blk_create(bus, base, gsi, irq, mem, loop, store, disk, !s->overlay[0]);
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
    virtio_mmio_destroy(b->dev);
    snapfs_disk_close(b->disk);
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
