/* virtio-blk requests (virtio 1.x section 5.2.6): a chain is checked, then
 * either answered at once (bad request, GET_ID, nothing to transfer) or turned
 * into a blk_io: one snapfs request per data segment, reading and writing guest
 * memory in place (a write of whole blocks on io_uring: one vectored request
 * for all its segments). With io_uring (snapfs_aio_*) many requests are in flight at
 * once and complete in any order on the event loop; without it each runs
 * synchronously where it is started.
 *
 * snapfs's rule for writes in flight together: two that touch the same 4 KiB
 * block without covering it whole must not (each is a read-modify-write of the
 * block). A guest that honours blk_size 4096 never sends such a write; one
 * that does gets it run alone: it waits until no write is in flight, no other
 * write starts until it is done, and its segments run one after the other. */
#include "virtio_blk_int.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct blk_io {
    struct virtio_blk *b;
    uint16_t head;
    uint32_t gen;           /* b->gen when popped: a reset since drops the answer */
    uint8_t *status;        /* the chain's last writable byte, in guest memory */
    uint32_t used_len;      /* data bytes given to the guest, plus the status */
    uint8_t result;         /* VIRTIO_BLK_S_* */
    bool write;
    bool exclusive;         /* runs alone among writes, segments in order */
    unsigned nreq, next;    /* requests, and the next one to start */
    unsigned pending;       /* requests in flight, plus one held by the starter */
    struct iovec *iov;      /* a gathered write's segments, or NULL */
    struct snapfs_req req[];
};

/* [sector, sector + len) in whole sectors inside the disk (no overflow: sector
 * is compared with the capacity before any multiplication). */
static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
    return len % SECTOR == 0 && sector <= b->sectors && len / SECTOR <= b->sectors - sector;
}

static uint8_t *status_byte(const struct virtq_chain *c)
{
    const struct iovec *last = &c->iov[c->nr_out + c->nr_in - 1];

    return (uint8_t *)last->iov_base + last->iov_len - 1;
}

static void answer(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t st,
                   uint32_t used_len)
{
    struct virtq *q = virtio_mmio_queue(b->dev, 0);

    *status = st;
    if (q && virtq_push(q, head, used_len) == 0) /* no queue: needs a reset */
        b->pushed++;
}

/* ---- the engine ---- */

static void io_put(struct blk_io *io);

static void io_finish(struct blk_io *io)
{
    struct virtio_blk *b = io->b;

    b->inflight--;
    if (io->write)
        b->writes_inflight--;
    if (io->exclusive)
        b->exclusive_inflight = false;
    if (!b->closing && io->gen == b->gen)
        answer(b, io->head, io->status,
               io->result, io->result == VIRTIO_BLK_S_OK ? io->used_len : 1);
    free(io->iov);
    free(io);
}

static void req_done(struct snapfs_req *r, int result)
{
    struct blk_io *io = r->opaque;

    if (result < 0) {
        if (!io->b->closing)
            log_warn("virtio-blk: request at byte %llu: %s", (unsigned long long)r->offset,
                     strerror(-result));
        io->result = VIRTIO_BLK_S_IOERR;
    }
    io_put(io);
}

static int run_sync(struct snapfs_disk *d, struct snapfs_req *r)
{
    switch (r->op) {
    case SNAPFS_OP_READ:
        return snapfs_pread(d, r->buf, r->len, r->offset);
    case SNAPFS_OP_WRITE:
        return snapfs_pwrite(d, r->buf, r->len, r->offset);
    case SNAPFS_OP_DISCARD:
        return snapfs_discard(d, r->len, r->offset);
    case SNAPFS_OP_WRITE_ZEROES:
        return snapfs_write_zeroes(d, r->len, r->offset);
    default:
        return snapfs_flush(d);
    }
}

/* Starts request i; its completion (perhaps right here) drops one reference. */
static void submit_req(struct blk_io *io, unsigned i)
{
    struct snapfs_req *r = &io->req[i];
    struct virtio_blk *b = io->b;
    int rc;

    if (io->result != VIRTIO_BLK_S_OK || b->closing) {
        req_done(r, 0);
        return;
    }
    rc = b->use_aio ? snapfs_aio_submit(b->disk, r) : run_sync(b->disk, r);
    if (!b->use_aio || rc < 0) {
        if (rc < 0)
            log_warn("virtio-blk: %s", snapfs_error());
        req_done(r, rc);
    }
}

/* Drops a reference; at zero, an exclusive request starts its next segment
 * (looping rather than recursing when that completes at once), or the request
 * is answered. */
static void io_put(struct blk_io *io)
{
    while (--io->pending == 0) {
        if (!io->exclusive || io->next >= io->nreq || io->result != VIRTIO_BLK_S_OK ||
            io->b->closing) {
            io_finish(io);
            return;
        }
        io->pending = 2; /* this loop's reference and the segment's */
        submit_req(io, io->next++);
    }
}

static void io_start(struct blk_io *io)
{
    struct virtio_blk *b = io->b;
    unsigned n = io->exclusive ? 1 : io->nreq;

    if (io->write)
        b->writes_inflight++;
    if (io->exclusive)
        b->exclusive_inflight = true;
    io->pending = n + 1;
    for (io->next = 0; io->next < n;)
        submit_req(io, io->next++);
    io_put(io);
}

static bool may_start(const struct virtio_blk *b, const struct blk_io *io)
{
    if (!io->write)
        return true;
    if (b->exclusive_inflight)
        return false;
    return !io->exclusive || b->writes_inflight == 0;
}

bool blk_req_resume(struct virtio_blk *b)
{
    struct blk_io *io = b->stalled;

    if (!io)
        return true;
    if (!may_start(b, io))
        return false;
    b->stalled = NULL;
    io_start(io);
    return true;
}

void blk_req_drop_stalled(struct virtio_blk *b)
{
    if (!b->stalled)
        return;
    b->inflight--;
    free(b->stalled->iov);
    free(b->stalled);
    b->stalled = NULL;
}

/* ---- turning a chain into I/O ---- */

static struct blk_io *io_new(struct virtio_blk *b, const struct virtq_chain *c, unsigned nreq)
{
    struct blk_io *io = calloc(1, sizeof(*io) + nreq * sizeof(io->req[0]));

    if (!io)
        return NULL;
    io->b = b;
    io->head = c->head;
    io->gen = b->gen;
    io->status = status_byte(c);
    io->used_len = 1;
    io->result = VIRTIO_BLK_S_OK;
    io->nreq = nreq;
    for (unsigned i = 0; i < nreq; i++)
        io->req[i] = (struct snapfs_req){ .done = req_done, .opaque = io };
    return io;
}

/* True if some segment of a write starting at off does not cover whole blocks. */
static bool partial_blocks(const struct iovec *seg, unsigned n, uint64_t off)
{
    for (unsigned i = 0; i < n; i++) {
        if (off % BLK_SIZE || seg[i].iov_len % BLK_SIZE)
            return true;
        off += seg[i].iov_len;
    }
    return false;
}

/* A write of whole blocks on io_uring: one vectored request over a copy of
 * the segments (it must outlive the chain scratch). */
static struct blk_io *gathered_write(struct virtio_blk *b, const struct virtq_chain *c,
                                     unsigned n, uint64_t off, size_t len)
{
    struct blk_io *io = io_new(b, c, 1);
    struct iovec *iov = malloc(n * sizeof(*iov));

    if (!io || !iov) {
        free(io);
        free(iov);
        return NULL;
    }
    memcpy(iov, b->data, n * sizeof(*iov));
    io->iov = iov;
    io->req[0] = (struct snapfs_req){ .op = SNAPFS_OP_WRITE, .offset = off, .len = len,
                                      .iov = iov, .iovcnt = n, .done = req_done, .opaque = io };
    return io;
}

/* A read (IN, into the writable bytes before the status) or a write (OUT, from
 * the readable bytes after the header) of len bytes at sector: one request a
 * segment, or one vectored request for a write of whole blocks on io_uring. */
static int prepare_rw(struct virtio_blk *b, const struct virtq_chain *c, bool write,
                      uint64_t sector, size_t len, struct blk_io **out)
{
    size_t data_off = write ? sizeof(struct virtio_blk_outhdr) : 0, got = 0;
    unsigned n = virtq_chain_slice(c, !write, data_off, len, b->data, VIRTQ_CHAIN_MAX_SEGS);
    uint64_t off = sector * SECTOR;
    bool partial = write && partial_blocks(b->data, n, off);
    struct blk_io *io;

    for (unsigned i = 0; i < n; i++)
        got += b->data[i].iov_len;
    if (got != len || n > VIRTIO_BLK_SEG_MAX)
        return VIRTIO_BLK_S_IOERR;
    if (write && !partial && b->use_aio && n > 1)
        io = gathered_write(b, c, n, off, len);
    else
        io = io_new(b, c, n);
    if (!io)
        return -ENOMEM;
    io->write = write;
    io->exclusive = partial;
    io->used_len = write ? 1 : (uint32_t)len + 1;
    for (unsigned i = 0; !io->iov && i < n; i++) {
        struct snapfs_req *r = &io->req[i];

        r->op = write ? SNAPFS_OP_WRITE : SNAPFS_OP_READ;
        r->buf = b->data[i].iov_base;
        r->len = b->data[i].iov_len;
        r->offset = off;
        off += r->len;
    }
    *out = io;
    return VIRTIO_BLK_S_OK;
}

/* A DISCARD or WRITE_ZEROES: exactly one segment after the header
 * (max_discard_seg and max_write_zeroes_seg are 1), of at most max sectors
 * inside the disk. Flag bits other than allowed get UNSUPP (virtio 1.2,
 * 5.2.6.2: unmap is not allowed for a discard, reserved bits never). */
static int prepare_ranged(struct virtio_blk *b, const struct virtq_chain *c, enum snapfs_op op,
                          uint32_t max, uint32_t allowed, struct blk_io **out)
{
    struct virtio_blk_discard_write_zeroes seg;
    const size_t hdr = sizeof(struct virtio_blk_outhdr);
    uint64_t sector, len;
    uint32_t count;
    struct blk_io *io;

    if (b->read_only)
        return VIRTIO_BLK_S_IOERR;
    if (c->out_len != hdr + sizeof(seg) || virtq_chain_read(c, hdr, &seg, sizeof(seg)) != sizeof(seg))
        return VIRTIO_BLK_S_IOERR;
    if (le32toh(seg.flags) & ~allowed)
        return VIRTIO_BLK_S_UNSUPP;
    sector = le64toh(seg.sector);
    count = le32toh(seg.num_sectors);
    len = (uint64_t)count * SECTOR;
    if (count > max || !range_ok(b, sector, len))
        return VIRTIO_BLK_S_IOERR;
    io = io_new(b, c, 1);
    if (!io)
        return -ENOMEM;
    io->req[0].op = op;
    io->req[0].len = len;
    io->req[0].offset = sector * SECTOR;
    /* Zeroing a block in part is a read-modify-write, like a partial write. */
    io->write = op == SNAPFS_OP_WRITE_ZEROES;
    io->exclusive = io->write && (io->req[0].offset % BLK_SIZE || len % BLK_SIZE);
    *out = io;
    return VIRTIO_BLK_S_OK;
}

static int prepare_flush(struct virtio_blk *b, const struct virtq_chain *c, struct blk_io **out)
{
    struct blk_io *io;

    if (b->read_only)
        return VIRTIO_BLK_S_OK; /* nothing was written */
    io = io_new(b, c, 1);
    if (!io)
        return -ENOMEM;
    io->req[0].op = SNAPFS_OP_FLUSH;
    *out = io;
    return VIRTIO_BLK_S_OK;
}

/* The image name, NUL-padded (not terminated when it has 20 bytes or more). */
static uint32_t get_id(struct virtio_blk *b, const struct virtq_chain *c, size_t room)
{
    char id[VIRTIO_BLK_ID_BYTES] = { 0 };
    const char *name = snapfs_disk_image(b->disk);
    size_t len = strlen(name);

    memcpy(id, name, len < sizeof(id) ? len : sizeof(id));
    return (uint32_t)virtq_chain_write(c, 0, id, room < sizeof(id) ? room : sizeof(id));
}

/* Checks the request with header h; returns a status to answer now (with
 * *io NULL and *written data bytes), the I/O to start in *io, or -ENOMEM. */
static int prepare(struct virtio_blk *b, const struct virtq_chain *c,
                   const struct virtio_blk_outhdr *h, struct blk_io **io, uint32_t *written)
{
    const size_t room = c->in_len - 1; /* writable bytes before the status */
    const size_t out_data = c->out_len - sizeof(*h);
    uint64_t sector = le64toh(h->sector);

    switch (le32toh(h->type)) {
    case VIRTIO_BLK_T_IN:
        if (!range_ok(b, sector, room))
            return VIRTIO_BLK_S_IOERR;
        return prepare_rw(b, c, false, sector, room, io);
    case VIRTIO_BLK_T_OUT:
        if (b->read_only || !range_ok(b, sector, out_data))
            return VIRTIO_BLK_S_IOERR;
        return prepare_rw(b, c, true, sector, out_data, io);
    case VIRTIO_BLK_T_FLUSH:
        return prepare_flush(b, c, io);
    case VIRTIO_BLK_T_GET_ID:
        *written = get_id(b, c, room);
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_DISCARD:
        return prepare_ranged(b, c, SNAPFS_OP_DISCARD, MAX_DISCARD_SECTORS, 0, io);
    case VIRTIO_BLK_T_WRITE_ZEROES:
        return prepare_ranged(b, c, SNAPFS_OP_WRITE_ZEROES, MAX_WRITE_ZEROES_SECTORS,
                              VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, io);
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

int blk_req_start(struct virtio_blk *b, const struct virtq_chain *c)
{
    struct virtio_blk_outhdr h;
    struct blk_io *io = NULL;
    uint32_t written = 0;
    int st = VIRTIO_BLK_S_IOERR;

    if (virtq_chain_read(c, 0, &h, sizeof(h)) == sizeof(h))
        st = prepare(b, c, &h, &io, &written);
    if (st < 0)
        return st;
    if (!io || io->nreq == 0) {
        answer(b, c->head, status_byte(c), (uint8_t)st, written + 1);
        if (io)
            free(io->iov);
        free(io);
        return 0;
    }
    b->inflight++;
    b->stalled = io;
    blk_req_resume(b);
    return 0;
}
