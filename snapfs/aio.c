/* Asynchronous I/O on io_uring for one event-loop thread. A request becomes
 * one or more ring operations (overlay reads and writes, chunk record reads,
 * fsyncs); it completes when the last one does. Chunks found in the cache
 * complete without touching the ring. Flushes run one at a time, in three
 * stages: fsync the data file, write the changed map pages to their spare
 * slots, fsync the map. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zstd.h>

#include "internal.h"

enum aop_kind { AOP_READ_DATA, AOP_READ_CHUNK, AOP_WRITE, AOP_WRITEV, AOP_DISCARD, AOP_ZERO,
                 AOP_FLUSH };

struct aop {
    struct snapfs_req *req;
    enum aop_kind kind;
    int fd;
    uint8_t *dst;                  /* READ_DATA/WRITE: buffer; READ_CHUNK: destination */
    const struct iovec *iov;       /* WRITEV: the caller's buffers */
    unsigned iovcnt;
    size_t len;                    /* bytes of the operation */
    uint64_t off;                  /* file offset */
    uint8_t *owned;                /* freed on completion (record, bounce block) */
    struct ref ref;                /* READ_CHUNK: the chunk */
    uint32_t idx, in, ulen, dlen;  /* READ_CHUNK: index, offset in chunk, sizes */
    char image[SNAPFS_NAME_MAX + 1]; /* READ_CHUNK: for error messages */
    uint64_t voff;                 /* READ_CHUNK: disk offset of the chunk */
    int result;                    /* READ_CHUNK: of the decoding */
    char *errmsg;                  /* READ_CHUNK: the decoder's message on failure */
    struct aop *next;              /* decoder queues */
};

#define MAX_DECODERS 4

enum flush_stage { FLUSH_IDLE, FLUSH_DATA, FLUSH_MAP_WRITE, FLUSH_MAP_SYNC };

struct aio_state {
    struct io_uring ring;
    bool ring_ok;
    int efd;
    unsigned inflight;             /* requests not yet completed */
    unsigned writes;               /* of which writes, discards, flushes */
    struct snapfs_req *done_head, *done_tail;
    struct snapfs_req *flushq_head, *flushq_tail;
    struct snapfs_req *flush;      /* the flush running, or NULL */
    enum flush_stage stage;
    uint8_t *pages;
    uint64_t *page_offsets;
    uint32_t npages;
    /* Chunk records read by the ring are checked and decompressed by
     * decoder threads, so the event loop never spends a chunk's
     * decompression time and misses in flight decode in parallel. */
    pthread_t decoders[MAX_DECODERS];
    int ndecoders;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct aop *todo_head, *todo_tail; /* to decode */
    struct aop *decoded;           /* decoded, not yet completed */
    bool stopping;
};

static void *decoder_main(void *arg);

static void list_push(struct snapfs_req **head, struct snapfs_req **tail, struct snapfs_req *r)
{
    r->next_ = NULL;
    if (*tail)
        (*tail)->next_ = r;
    else
        *head = r;
    *tail = r;
}

void aio_wake(struct snapfs_disk *d)
{
    if (d->aio && d->aio->efd >= 0)
        eventfd_write(d->aio->efd, 1);
}

/* io_uring_register(2) itself: Debian 12's liburing 2.3 declares but does not
 * export io_uring_register_restrictions and io_uring_enable_rings. */
static int ring_register(struct io_uring *ring, unsigned op, void *arg, unsigned nr)
{
    return syscall(__NR_io_uring_register, ring->ring_fd, op, arg, nr) < 0 ? -errno : 0;
}

/* The ring is created disabled, told the only operations it will ever carry
 * (those queue_op makes), then enabled: code that takes over the process
 * (a guest escaping into sbx-vmm) cannot use it to open files or sockets,
 * which a seccomp filter could not stop since ring operations are not system
 * calls. Register operations are refused once it is enabled. */
static int ring_start(struct aio_state *a, unsigned entries)
{
    static const uint8_t ops[] = { IORING_OP_READ, IORING_OP_WRITE, IORING_OP_WRITEV,
                                   IORING_OP_FSYNC, IORING_OP_FALLOCATE };
    struct io_uring_restriction res[sizeof(ops)];
    int rc;
    memset(res, 0, sizeof(res));
    for (size_t i = 0; i < sizeof(ops); i++)
        res[i].opcode = IORING_RESTRICTION_SQE_OP, res[i].sqe_op = ops[i];
    rc = io_uring_queue_init(entries, &a->ring, IORING_SETUP_R_DISABLED);
    if (rc < 0)
        return rc;
    rc = io_uring_register_eventfd(&a->ring, a->efd);
    if (rc == 0)
        rc = ring_register(&a->ring, IORING_REGISTER_RESTRICTIONS, res, sizeof(ops));
    if (rc == 0)
        rc = ring_register(&a->ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (rc < 0)
        io_uring_queue_exit(&a->ring);
    return rc;
}

int aio_init(struct snapfs_disk *d)
{
    struct aio_state *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    d->aio = a;
    pthread_mutex_init(&a->qlock, NULL);
    pthread_cond_init(&a->qcond, NULL);
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0)
        return -errno;
    /* Without io_uring (disabled by policy) the synchronous API still works. */
    if (ring_start(a, d->ring_entries) == 0)
        a->ring_ok = true;
    else if (io_uring_queue_init(d->ring_entries, &a->ring, 0) == 0) { /* before 5.10 */
        a->ring_ok = true;
        if (io_uring_register_eventfd(&a->ring, a->efd) < 0)
            return -EIO;
    }
    for (int i = 0; a->ring_ok && i < MAX_DECODERS && i < ncpus(); i++)
        if (pthread_create(&a->decoders[a->ndecoders], NULL, decoder_main, d) == 0)
            a->ndecoders++;
    return a->ring_ok && a->ndecoders == 0 ? -EAGAIN : 0;
}

static void stop_decoders(struct aio_state *a)
{
    pthread_mutex_lock(&a->qlock);
    a->stopping = true;
    pthread_cond_broadcast(&a->qcond);
    pthread_mutex_unlock(&a->qlock);
    for (int i = 0; i < a->ndecoders; i++)
        pthread_join(a->decoders[i], NULL);
    a->ndecoders = 0;
}

void aio_fini(struct snapfs_disk *d)
{
    struct aio_state *a = d->aio;
    if (!a)
        return;
    while (a->ring_ok && a->inflight && snapfs_aio_process(d) >= 0)
        if (a->inflight) {
            struct pollfd p = { .fd = a->efd, .events = POLLIN };
            poll(&p, 1, 100);
        }
    stop_decoders(a);
    if (a->ring_ok)
        io_uring_queue_exit(&a->ring);
    pthread_mutex_destroy(&a->qlock);
    pthread_cond_destroy(&a->qcond);
    if (a->efd >= 0)
        close(a->efd);
    free(a->pages);
    free(a->page_offsets);
    free(a);
    d->aio = NULL;
}

int snapfs_aio_available(const struct snapfs_disk *d) { return d->aio && d->aio->ring_ok; }
int snapfs_aio_fd(struct snapfs_disk *d) { return d->aio ? d->aio->efd : -EINVAL; }
unsigned snapfs_aio_inflight(const struct snapfs_disk *d) { return d->aio ? d->aio->inflight : 0; }
bool aio_idle_writes(struct snapfs_disk *d) { return !d->aio || d->aio->writes == 0; }

static void req_complete(struct snapfs_disk *d, struct snapfs_req *req);

/* Drops one reference of req; completes it at zero. */
static void req_put(struct snapfs_disk *d, struct snapfs_req *req, int result)
{
    if (result < 0 && req->result_ == 0)
        req->result_ = result;
    if (--req->pending_ == 0)
        req_complete(d, req);
}

static struct io_uring_sqe *get_sqe(struct aio_state *a)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    if (!sqe) {
        io_uring_submit(&a->ring);
        sqe = io_uring_get_sqe(&a->ring);
    }
    return sqe;
}

static int queue_op(struct snapfs_disk *d, struct aop *op)
{
    struct io_uring_sqe *sqe = get_sqe(d->aio);
    if (!sqe) {
        free(op->owned);
        free(op);
        return -EAGAIN;
    }
    switch (op->kind) {
    case AOP_READ_DATA:
    case AOP_READ_CHUNK:
        io_uring_prep_read(sqe, op->fd, op->kind == AOP_READ_CHUNK ? op->owned : op->dst,
                           (unsigned)op->len, op->off);
        break;
    case AOP_WRITE:
        io_uring_prep_write(sqe, op->fd, op->dst, (unsigned)op->len, op->off);
        break;
    case AOP_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->iov, op->iovcnt, op->off);
        break;
    case AOP_DISCARD:
    case AOP_ZERO:
        io_uring_prep_fallocate(sqe, op->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                op->off, op->len);
        break;
    case AOP_FLUSH:
        if (op->len)
            io_uring_prep_write(sqe, op->fd, op->dst, (unsigned)op->len, op->off);
        else
            io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    op->req->pending_++;
    return 0;
}

static int new_op(struct snapfs_disk *d, struct snapfs_req *req, enum aop_kind kind, int fd,
                  uint8_t *buf, size_t len, uint64_t off)
{
    struct aop *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    *op = (struct aop){ .req = req, .kind = kind, .fd = fd, .dst = buf, .len = len, .off = off };
    return queue_op(d, op);
}

/* ---- reads ---- */

static int read_chunk_async(struct snapfs_disk *d, struct snapfs_req *req, uint32_t idx,
                            uint32_t in, uint8_t *dst, size_t len)
{
    const struct ref *r = &d->man.refs[idx];
    struct aop *op;
    int fd;
    if (ref_is_zero(r)) {
        memset(dst, 0, len);
        return 0;
    }
    if (cache_copy(d->cache, r, in, dst, len))
        return 0;
    fd = store_pack_fd(d->store, r->pack, d->image);
    if (fd < 0)
        return fd;
    op = calloc(1, sizeof(*op));
    if (!op || !(op->owned = malloc(RECORD_HDR + r->clen))) {
        free(op);
        return -ENOMEM;
    }
    op->req = req, op->kind = AOP_READ_CHUNK, op->fd = fd, op->dst = dst, op->dlen = (uint32_t)len;
    op->len = RECORD_HDR + r->clen, op->off = r->offset, op->ref = *r;
    op->idx = idx, op->in = in, op->ulen = chunk_len(&d->man, idx);
    memcpy(op->image, d->image, sizeof(op->image));
    op->voff = (uint64_t)idx * d->man.chunk_size;
    return queue_op(d, op);
}

static int read_base_async(struct snapfs_disk *d, struct snapfs_req *req, uint8_t *buf,
                           size_t len, uint64_t off)
{
    uint32_t cs = d->man.chunk_size;
    size_t inside = disk_base_len(d, len, off);
    memset(buf + inside, 0, len - inside);        /* a grown disk: zeros past the image */
    len = inside;
    while (len) {
        uint32_t idx = (uint32_t)(off / cs), in = (uint32_t)(off % cs);
        size_t n = cs - in < len ? cs - in : len;
        int rc = read_chunk_async(d, req, idx, in, buf, n);
        if (rc < 0)
            return rc;
        buf += n, off += n, len -= n;
    }
    return 0;
}

static int source_of(const struct snapfs_disk *d, uint64_t block)
{
    if (d->active && layer_test(d->active, block))
        return 1;
    if (d->frozen && layer_test(d->frozen, block))
        return 2;
    return 0;
}

static int submit_read(struct snapfs_disk *d, struct snapfs_req *req)
{
    uint8_t *buf = req->buf;
    uint64_t off = req->offset, end = off + req->len;
    while (off < end) {
        uint64_t block = off / SNAPFS_BLOCK_SIZE, run_end = (block + 1) * SNAPFS_BLOCK_SIZE;
        int src = source_of(d, block), rc;
        while (run_end < end && source_of(d, run_end / SNAPFS_BLOCK_SIZE) == src)
            run_end += SNAPFS_BLOCK_SIZE;
        if (run_end > end)
            run_end = end;
        if (src == 0)
            rc = read_base_async(d, req, buf, run_end - off, off);
        else
            rc = new_op(d, req, AOP_READ_DATA, (src == 1 ? d->active : d->frozen)->data_fd, buf,
                        run_end - off, off);
        if (rc < 0)
            return rc;
        buf += run_end - off;
        off = run_end;
    }
    return 0;
}

/* ---- writes ---- */

/* A block the write covers only in part and the overlay lacks: merged with
 * the block's current content (read synchronously), then written whole. */
static int write_merged(struct snapfs_disk *d, struct snapfs_req *req, const uint8_t *src,
                        size_t len, uint64_t off)
{
    uint64_t block = off / SNAPFS_BLOCK_SIZE, start = block * SNAPFS_BLOCK_SIZE;
    uint64_t bend = start + SNAPFS_BLOCK_SIZE < d->size ? start + SNAPFS_BLOCK_SIZE : d->size;
    struct aop *op = calloc(1, sizeof(*op));
    int rc = -ENOMEM;
    if (!op || !(op->owned = malloc(bend - start)))
        goto fail;
    rc = disk_read(d, op->owned, bend - start, start);
    if (rc < 0)
        goto fail;
    memcpy(op->owned + (off - start), src, len);
    *op = (struct aop){ .req = req, .kind = AOP_WRITE, .fd = d->active->data_fd,
                        .dst = op->owned, .len = bend - start, .off = start, .owned = op->owned };
    return queue_op(d, op);
fail:
    if (op)
        free(op->owned);
    free(op);
    return rc;
}

/* A vectored write must be whole blocks, its buffers holding len bytes. */
static bool writev_ok(struct snapfs_disk *d, const struct snapfs_req *req)
{
    uint64_t end = req->offset + req->len;
    size_t total = 0;
    if (req->offset % SNAPFS_BLOCK_SIZE || (req->len % SNAPFS_BLOCK_SIZE && end != d->size) ||
        req->iovcnt == 0 || req->iovcnt > 1024) {
        seterr("overlay %s: vectored write [%llu, +%zu) in %u buffers: not whole blocks",
               d->ovl_path, (unsigned long long)req->offset, req->len, req->iovcnt);
        return false;
    }
    for (unsigned i = 0; i < req->iovcnt; i++)
        total += req->iov[i].iov_len;
    if (total != req->len)
        seterr("overlay %s: vectored write of %zu bytes in buffers of %zu", d->ovl_path,
               req->len, total);
    return total == req->len;
}

/* A gathered write of whole blocks (checked by writev_ok): one vectored
 * write into the overlay. */
static int submit_writev(struct snapfs_disk *d, struct snapfs_req *req)
{
    struct aop *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    *op = (struct aop){ .req = req, .kind = AOP_WRITEV, .fd = d->active->data_fd,
                        .iov = req->iov, .iovcnt = req->iovcnt, .len = req->len,
                        .off = req->offset };
    return queue_op(d, op);
}

static int submit_write(struct snapfs_disk *d, struct snapfs_req *req)
{
    uint8_t *src = req->buf;
    uint64_t off = req->offset, end = off + req->len;
    int rc = 0;
    if (req->iov)
        return submit_writev(d, req);
    while (off < end && rc == 0) {
        uint64_t block = off / SNAPFS_BLOCK_SIZE, start = block * SNAPFS_BLOCK_SIZE;
        uint64_t bend = start + SNAPFS_BLOCK_SIZE < d->size ? start + SNAPFS_BLOCK_SIZE : d->size;
        uint64_t stop = end < bend ? end : bend;
        bool whole = off == start && stop == bend;
        if (whole || layer_test(d->active, block)) {
            while (stop < end && (end - stop >= SNAPFS_BLOCK_SIZE || end == d->size))
                stop = end - stop >= SNAPFS_BLOCK_SIZE ? stop + SNAPFS_BLOCK_SIZE : end;
            rc = new_op(d, req, AOP_WRITE, d->active->data_fd, src, stop - off, off);
        } else {
            rc = write_merged(d, req, src, stop - off, off);
        }
        src += stop - off;
        off = stop;
    }
    return rc;
}

static int submit_discard(struct snapfs_disk *d, struct snapfs_req *req)
{
    uint64_t first = (req->offset + SNAPFS_BLOCK_SIZE - 1) / SNAPFS_BLOCK_SIZE, end = req->offset + req->len;
    uint64_t last = end == d->size ? disk_blocks(d) : end / SNAPFS_BLOCK_SIZE;
    if (last <= first)
        return 0;
    pthread_mutex_lock(&d->lock);
    layer_set(d->active, first, last - first, false);
    pthread_mutex_unlock(&d->lock);
    return new_op(d, req, AOP_DISCARD, d->active->data_fd, NULL,
                  (last - first) * SNAPFS_BLOCK_SIZE, first * SNAPFS_BLOCK_SIZE);
}

/* Partial end blocks: merged with zeros and written whole. Whole blocks:
 * those that read as zeros below the overlay leave it now (as a discard);
 * the others are punched out of the data file and their bits set when that
 * is done (req_complete), so a bit never names a block not yet zeroed. */
static int submit_write_zeroes(struct snapfs_disk *d, struct snapfs_req *req)
{
    static const uint8_t zeros[SNAPFS_BLOCK_SIZE];
    struct zero_plan p;
    int rc = 0;
    zero_plan_make(d, req->len, req->offset, &p);
    if (p.head_len)
        rc = write_merged(d, req, zeros, p.head_len, req->offset);
    if (rc == 0 && p.tail_len)
        rc = write_merged(d, req, zeros, p.tail_len, p.tail_off);
    if (rc < 0 || p.count == 0)
        return rc;
    disk_zeroed_bits(d, p.first, p.count, true);
    return new_op(d, req, AOP_ZERO, d->active->data_fd, NULL,
                  zero_plan_bytes(d, p.first, p.count), p.first * SNAPFS_BLOCK_SIZE);
}

/* Sets the bits of a finished write-zeroes: its partial end blocks, and the
 * whole blocks it zeroed in the data file. */
static void write_zeroes_done(struct snapfs_disk *d, const struct snapfs_req *req)
{
    struct zero_plan p;
    zero_plan_make(d, req->len, req->offset, &p);
    pthread_mutex_lock(&d->lock);
    if (p.head_len)
        layer_set(d->active, req->offset / SNAPFS_BLOCK_SIZE, 1, true);
    if (p.tail_len)
        layer_set(d->active, p.tail_off / SNAPFS_BLOCK_SIZE, 1, true);
    pthread_mutex_unlock(&d->lock);
    if (p.count)
        disk_zeroed_bits(d, p.first, p.count, false);
}

/* ---- flushes ---- */

static void flush_stage_run(struct snapfs_disk *d);
static void flush_finish(struct snapfs_disk *d, int result);

static void flush_start_next(struct snapfs_disk *d)
{
    struct aio_state *a = d->aio;
    if (a->flush || !a->flushq_head || capture_running(d))
        return;
    a->flush = a->flushq_head;
    a->flushq_head = a->flush->next_;
    if (!a->flushq_head)
        a->flushq_tail = NULL;
    if (d->frozen) {               /* a capture failed: nothing can be made durable */
        flush_finish(d, -EIO);
        return;
    }
    a->stage = FLUSH_DATA;
    flush_stage_run(d);
}

void aio_release_flushes(struct snapfs_disk *d)
{
    if (d->aio && d->aio->ring_ok) {
        flush_start_next(d);
        io_uring_submit(&d->aio->ring);
    }
}

static void flush_finish(struct snapfs_disk *d, int result)
{
    struct aio_state *a = d->aio;
    struct snapfs_req *req = a->flush;
    if (result < 0 && a->pages) {
        pthread_mutex_lock(&d->lock);
        for (uint32_t k = 0; k < a->npages; k++)
            d->active->page_dirty[(a->page_offsets[k] / MAP_PAGE - 1) / 2] = 1;
        pthread_mutex_unlock(&d->lock);
    }
    free(a->pages);
    free(a->page_offsets);
    a->pages = NULL, a->page_offsets = NULL, a->npages = 0;
    a->flush = NULL;
    a->stage = FLUSH_IDLE;
    req->result_ = result;
    req->pending_ = 0;
    req_complete(d, req);
    flush_start_next(d);
}

/* Issues the operations of the current stage; the flush request holds one
 * reference per operation plus one for the stage itself. */
static void flush_stage_run(struct snapfs_disk *d)
{
    struct aio_state *a = d->aio;
    struct snapfs_req *req = a->flush;
    int rc = 0;
    req->pending_ = 1;
    req->result_ = 0;
    if (a->stage == FLUSH_DATA) {
        rc = new_op(d, req, AOP_FLUSH, d->active->data_fd, NULL, 0, 0);
    } else if (a->stage == FLUSH_MAP_WRITE) {
        for (uint32_t k = 0; rc == 0 && k < a->npages; k++)
            rc = new_op(d, req, AOP_FLUSH, d->active->map_fd, a->pages + (size_t)k * MAP_PAGE,
                        MAP_PAGE, a->page_offsets[k]);
    } else {
        rc = new_op(d, req, AOP_FLUSH, d->active->map_fd, NULL, 0, 0);
    }
    req_put(d, req, rc);
}

/* Called when every operation of the current stage has finished. */
static void flush_stage_done(struct snapfs_disk *d)
{
    struct aio_state *a = d->aio;
    int rc = a->flush->result_;
    if (rc < 0 || a->stage == FLUSH_MAP_SYNC) {
        flush_finish(d, rc);
        return;
    }
    if (a->stage == FLUSH_DATA) {
        pthread_mutex_lock(&d->lock);
        rc = layer_snapshot_map(d->active, &a->pages, &a->page_offsets, &a->npages);
        pthread_mutex_unlock(&d->lock);
        if (rc < 0 || a->npages == 0) {
            flush_finish(d, rc);
            return;
        }
        a->stage = FLUSH_MAP_WRITE;
    } else {
        a->stage = FLUSH_MAP_SYNC;
    }
    flush_stage_run(d);
}

/* ---- completion ---- */

static void req_complete(struct snapfs_disk *d, struct snapfs_req *req)
{
    struct aio_state *a = d->aio;
    if (req == a->flush) {
        flush_stage_done(d);
        return;
    }
    if (req->op == SNAPFS_OP_WRITE && req->result_ == 0 && req->len) {
        uint64_t first = req->offset / SNAPFS_BLOCK_SIZE;
        uint64_t last = (req->offset + req->len - 1) / SNAPFS_BLOCK_SIZE;
        pthread_mutex_lock(&d->lock);
        layer_set(d->active, first, last - first + 1, true);
        pthread_mutex_unlock(&d->lock);
    }
    if (req->op == SNAPFS_OP_WRITE_ZEROES && req->result_ == 0 && req->len)
        write_zeroes_done(d, req);
    list_push(&a->done_head, &a->done_tail, req);
}

static int chunk_done(struct snapfs_disk *d, struct aop *op)
{
    uint8_t *tmp = malloc(op->ulen);
    ZSTD_DCtx *dctx;
    int rc;
    if (!tmp)
        return -ENOMEM;
    dctx = disk_dctx_get(d);
    rc = chunk_decode(op->image, &op->ref, op->idx, op->voff, op->ulen, op->owned, tmp, dctx);
    disk_dctx_put(d, dctx);
    if (rc == 0) {
        cache_insert(d->cache, &op->ref, tmp, op->ulen);
        memcpy(op->dst, tmp + op->in, op->dlen);
    }
    free(tmp);
    return rc;
}

/* The rest of a short vectored write, synchronously. */
static int finish_short_vec(struct aop *op, size_t done)
{
    uint64_t off = op->off;
    for (unsigned i = 0; i < op->iovcnt; i++) {
        const struct iovec *v = &op->iov[i];
        int rc = 0;
        if (done < v->iov_len)
            rc = pwrite_full(op->fd, (const uint8_t *)v->iov_base + done, v->iov_len - done,
                             off + done);
        if (rc < 0)
            return rc;
        done = done < v->iov_len ? 0 : done - v->iov_len;
        off += v->iov_len;
    }
    return 0;
}

/* A short transfer is finished synchronously. */
static int finish_short(struct aop *op, int res)
{
    uint8_t *buf = op->kind == AOP_READ_CHUNK ? op->owned : op->dst;
    if (op->kind == AOP_WRITEV)
        return finish_short_vec(op, (size_t)res);
    if (op->kind == AOP_WRITE || (op->kind == AOP_FLUSH && op->len))
        return pwrite_full(op->fd, buf + res, op->len - res, op->off + res);
    return pread_full(op->fd, buf + res, op->len - res, op->off + res);
}

static void *decoder_main(void *arg)
{
    struct snapfs_disk *d = arg;
    struct aio_state *a = d->aio;
    pthread_mutex_lock(&a->qlock);
    for (;;) {
        struct aop *op = a->todo_head;
        if (!op && a->stopping)
            break;
        if (!op) {
            pthread_cond_wait(&a->qcond, &a->qlock);
            continue;
        }
        a->todo_head = op->next;
        if (!a->todo_head)
            a->todo_tail = NULL;
        pthread_mutex_unlock(&a->qlock);
        op->result = chunk_done(d, op);
        if (op->result < 0)
            op->errmsg = strdup(snapfs_error());
        pthread_mutex_lock(&a->qlock);
        op->next = a->decoded;
        a->decoded = op;
        eventfd_write(a->efd, 1);
    }
    pthread_mutex_unlock(&a->qlock);
    return NULL;
}

static void op_free(struct aop *op)
{
    free(op->errmsg);
    free(op->owned);
    free(op);
}

/* Completes the chunk reads the decoders have finished. */
static void reap_decoded(struct snapfs_disk *d)
{
    struct aio_state *a = d->aio;
    struct aop *list;
    pthread_mutex_lock(&a->qlock);
    list = a->decoded;
    a->decoded = NULL;
    pthread_mutex_unlock(&a->qlock);
    while (list) {
        struct aop *op = list;
        list = op->next;
        if (op->errmsg)
            seterr("%s", op->errmsg);
        req_put(d, op->req, op->result);
        op_free(op);
    }
}

static void decode_later(struct aio_state *a, struct aop *op)
{
    pthread_mutex_lock(&a->qlock);
    op->next = NULL;
    if (a->todo_tail)
        a->todo_tail->next = op;
    else
        a->todo_head = op;
    a->todo_tail = op;
    pthread_cond_signal(&a->qcond);
    pthread_mutex_unlock(&a->qlock);
}

static void op_done(struct snapfs_disk *d, struct aop *op, int res)
{
    int rc = res < 0 ? res : 0;
    bool transfer = op->kind != AOP_DISCARD && op->kind != AOP_ZERO &&
                    !(op->kind == AOP_FLUSH && op->len == 0);
    if (rc == 0 && transfer && (size_t)res < op->len)
        rc = finish_short(op, res);
    if (rc == -ENODATA && op->kind == AOP_READ_CHUNK)
        seterr("image %s: chunk %u (disk offset %llu): pack %08x offset %llu: pack truncated",
               op->image, op->idx, (unsigned long long)op->voff, op->ref.pack,
               (unsigned long long)op->off);
    else if (rc == -ENODATA)
        seterr("overlay %s: data file truncated at offset %llu", d->ovl_path,
               (unsigned long long)op->off);
    if (rc == 0 && op->kind == AOP_READ_CHUNK && d->aio->ndecoders) {
        decode_later(d->aio, op);
        return;
    }
    if (rc == 0 && op->kind == AOP_READ_CHUNK)
        rc = chunk_done(d, op);
    if (rc < 0)
        rc = rc == -ENODATA ? -EIO : rc;
    if (op->kind == AOP_DISCARD && rc == -EOPNOTSUPP)
        rc = 0;                     /* discard is advisory */
    if (op->kind == AOP_ZERO && rc == -EOPNOTSUPP)
        rc = zero_fill(op->fd, op->len, op->off);   /* no holes here: write zeros */
    req_put(d, op->req, rc);
    op_free(op);
}

int snapfs_aio_submit(struct snapfs_disk *d, struct snapfs_req *req)
{
    struct aio_state *a = d->aio;
    int rc = 0;
    if (!a || !a->ring_ok) {
        seterr("image %s: io_uring is not available", d->image);
        return -ENOSYS;
    }
    if ((unsigned)req->op > SNAPFS_OP_WRITE_ZEROES) {
        seterr("image %s: unknown request op %d", d->image, (int)req->op);
        return -EINVAL;
    }
    if (req->op != SNAPFS_OP_READ && !d->active) {
        seterr("image %s: read-only (open it through an overlay to write)", d->image);
        return -EROFS;
    }
    if (req->op != SNAPFS_OP_FLUSH && (req->offset > d->size || req->len > d->size - req->offset)) {
        seterr("image %s: request [%llu, +%zu) beyond the disk", d->image,
               (unsigned long long)req->offset, req->len);
        return -EINVAL;
    }
    if (req->op == SNAPFS_OP_WRITE && req->iov && !writev_ok(d, req))
        return -EINVAL;
    req->result_ = 0;
    req->pending_ = 1;
    a->inflight++;
    a->writes += req->op != SNAPFS_OP_READ;
    if (req->op == SNAPFS_OP_FLUSH) {
        list_push(&a->flushq_head, &a->flushq_tail, req);
        flush_start_next(d);
    } else {
        rc = req->op == SNAPFS_OP_READ ? submit_read(d, req)
           : req->op == SNAPFS_OP_WRITE ? submit_write(d, req)
           : req->op == SNAPFS_OP_WRITE_ZEROES ? submit_write_zeroes(d, req)
           : submit_discard(d, req);
        req_put(d, req, rc);
    }
    io_uring_submit(&a->ring);
    if (a->done_head)
        aio_wake(d);
    return 0;
}

int snapfs_aio_process(struct snapfs_disk *d)
{
    struct aio_state *a = d->aio;
    struct io_uring_cqe *cqe;
    struct snapfs_req *list;
    eventfd_t junk;
    int n = 0;
    if (!a || !a->ring_ok)
        return -ENOSYS;
    eventfd_read(a->efd, &junk);
    snapfs_capture_poll(d);
    while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
        struct aop *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&a->ring, cqe);
        op_done(d, op, res);
    }
    reap_decoded(d);
    io_uring_submit(&a->ring);
    list = a->done_head;
    a->done_head = a->done_tail = NULL;
    while (list) {
        struct snapfs_req *req = list;
        list = list->next_;
        a->inflight--;
        a->writes -= req->op != SNAPFS_OP_READ;
        n++;
        req->done(req, req->result_);
    }
    return n;
}
