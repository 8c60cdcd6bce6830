/* Split virtqueue, device side. Ring layout (all little-endian):
 *   desc:  size x { u64 addr; u32 len; u16 flags; u16 next; }          align 16
 *   avail: u16 flags; u16 idx; u16 ring[size]; u16 used_event;        align 2
 *   used:  u16 flags; u16 idx; {u32 id; u32 len} ring[size]; u16 avail_event; align 4
 * The guest owns this memory and may change it under us: indexes are loaded
 * once with the ordering the spec asks for, descriptors are copied before use. */
#include "virtq.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_ring.h>

#define DESC_SIZE 16u

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static uint16_t load16(const uint8_t *p, int order)
{
    return le16toh(__atomic_load_n((const uint16_t *)p, order));
}

static void store16(uint8_t *p, uint16_t v, int order)
{
    __atomic_store_n((uint16_t *)p, htole16(v), order);
}

static void desc_decode(const uint8_t *raw, struct desc *d)
{
    uint8_t copy[DESC_SIZE];

    memcpy(copy, raw, sizeof(copy)); /* one read of guest memory per field set */
    memcpy(&d->addr, copy, 8);
    memcpy(&d->len, copy + 8, 4);
    memcpy(&d->flags, copy + 12, 2);
    memcpy(&d->next, copy + 14, 2);
    d->addr = le64toh(d->addr);
    d->len = le32toh(d->len);
    d->flags = le16toh(d->flags);
    d->next = le16toh(d->next);
}

static uint8_t *ring_part(const struct guest_mem *mem, uint64_t gpa, uint64_t len, uint64_t align)
{
    uint8_t *p;

    if (gpa & (align - 1))
        return NULL;
    p = gmem_ptr(mem, gpa, len);
    if (p && ((uintptr_t)p & (align - 1)))
        return NULL; /* host mapping must keep the alignment for atomic access */
    return p;
}

int virtq_init(struct virtq *q, const struct guest_mem *mem, unsigned size, uint64_t desc_gpa,
               uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
    memset(q, 0, sizeof(*q));
    if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
        return -EINVAL;
    q->desc = ring_part(mem, desc_gpa, (uint64_t)DESC_SIZE * size, 16);
    q->avail = ring_part(mem, avail_gpa, 6 + 2 * (uint64_t)size, 2);
    q->used = ring_part(mem, used_gpa, 6 + 8 * (uint64_t)size, 4);
    if (!q->desc || !q->avail || !q->used) {
        memset(q, 0, sizeof(*q));
        return -EINVAL;
    }
    q->mem = mem;
    q->size = (uint16_t)size; /* 32768 fits; 65536 is not a valid split size */
    q->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    q->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    return 0;
}

void virtq_reset(struct virtq *q)
{
    memset(q, 0, sizeof(*q));
}

bool virtq_has_avail(struct virtq *q)
{
    if (!q->size || q->broken)
        return false;
    return load16(q->avail + 2, __ATOMIC_ACQUIRE) != q->last_avail;
}

static int add_segment(const struct virtq *q, struct virtq_chain *c, const struct desc *d)
{
    bool writable = d->flags & VRING_DESC_F_WRITE;
    void *host;

    if (!writable && c->nr_in)
        return -EIO; /* readable segments must all come before writable ones */
    if (d->len == 0)
        return 0;
    host = gmem_ptr(q->mem, d->addr, d->len);
    if (!host)
        return -EIO;
    if (c->nr_out + c->nr_in == VIRTQ_CHAIN_MAX_SEGS)
        return -E2BIG;
    c->iov[c->nr_out + c->nr_in] = (struct iovec){ .iov_base = host, .iov_len = d->len };
    if (writable) {
        c->nr_in++;
        c->in_len += d->len;
    } else {
        c->nr_out++;
        c->out_len += d->len;
    }
    return 0;
}

/* Walks the table an indirect descriptor points at; nesting is not allowed. */
static int walk_indirect(const struct virtq *q, struct virtq_chain *c, const struct desc *ind)
{
    const uint8_t *table;
    unsigned n, idx = 0, count = 0;
    struct desc d;
    int rc;

    if (!q->indirect || (ind->flags & VRING_DESC_F_NEXT))
        return -EIO;
    if (ind->len == 0 || ind->len % DESC_SIZE || ind->len / DESC_SIZE > VIRTQ_MAX_SIZE)
        return -EIO;
    n = ind->len / DESC_SIZE;
    table = gmem_ptr(q->mem, ind->addr, ind->len);
    if (!table)
        return -EIO;
    for (;;) {
        if (++count > n)
            return -EIO; /* a loop inside the table */
        desc_decode(table + (size_t)idx * DESC_SIZE, &d);
        if (d.flags & VRING_DESC_F_INDIRECT)
            return -EIO;
        rc = add_segment(q, c, &d);
        if (rc < 0)
            return rc;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        idx = d.next;
        if (idx >= n)
            return -EIO;
    }
}

static int walk_chain(const struct virtq *q, uint16_t head, struct virtq_chain *c)
{
    unsigned idx = head, count = 0;
    struct desc d;
    int rc;

    c->head = head;
    c->nr_out = c->nr_in = 0;
    c->out_len = c->in_len = 0;
    for (;;) {
        if (++count > q->size)
            return -EIO; /* longer than the ring: a loop */
        desc_decode(q->desc + (size_t)idx * DESC_SIZE, &d);
        if (d.flags & VRING_DESC_F_INDIRECT)
            return walk_indirect(q, c, &d);
        rc = add_segment(q, c, &d);
        if (rc < 0)
            return rc;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        idx = d.next;
        if (idx >= q->size)
            return -EIO;
    }
}

static int break_queue(struct virtq *q, int err)
{
    q->broken = true;
    return err;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
    uint16_t avail_idx, pending, head;
    int rc;

    if (!q->size || q->broken)
        return -EIO;
    avail_idx = load16(q->avail + 2, __ATOMIC_ACQUIRE);
    if (avail_idx == q->last_avail) {
        if (!q->event_idx)
            return 0;
        /* Ask for a kick on the next entry, then look again: the driver may have
         * added one while reading the old avail_event, and would not kick. */
        store16(q->used + 4 + 8 * (size_t)q->size, q->last_avail, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        avail_idx = load16(q->avail + 2, __ATOMIC_ACQUIRE);
    }
    pending = (uint16_t)(avail_idx - q->last_avail);
    if (pending == 0)
        return 0;
    if (pending > q->size)
        return break_queue(q, -EIO);
    head = load16(q->avail + 4 + 2 * (size_t)(q->last_avail & (q->size - 1)), __ATOMIC_RELAXED);
    if (head >= q->size)
        return break_queue(q, -EIO);
    rc = walk_chain(q, head, c);
    if (rc < 0)
        return break_queue(q, rc);
    q->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *q)
{
    if (q->size)
        q->last_avail--;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
    uint32_t elem[2] = { htole32(head), htole32(len) };

    if (!q->size || q->broken)
        return -EIO;
    if (head >= q->size)
        return -EINVAL;
    memcpy(q->used + 4 + 8 * (size_t)(q->used_idx & (q->size - 1)), elem, sizeof(elem));
    q->used_idx++;
    store16(q->used + 2, q->used_idx, __ATOMIC_RELEASE);
    return 0;
}

bool virtq_need_interrupt(struct virtq *q)
{
    uint16_t old = q->signalled_used, now = q->used_idx, event;
    bool valid = q->signalled_valid;

    if (!q->size || q->broken)
        return false;
    /* Our used->idx store must be visible before we read the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    q->signalled_used = now;
    q->signalled_valid = true;
    if (!q->event_idx)
        return !(load16(q->avail, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
    if (!valid)
        return true;
    event = load16(q->avail + 4 + 2 * (size_t)q->size, __ATOMIC_RELAXED);
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

size_t virtq_chain_read(const struct virtq_chain *c, size_t off, void *dst, size_t len)
{
    struct iovec parts[VIRTQ_CHAIN_MAX_SEGS];
    unsigned n = virtq_chain_slice(c, false, off, len, parts, VIRTQ_CHAIN_MAX_SEGS);
    size_t done = 0;

    for (unsigned i = 0; i < n; i++) {
        memcpy((uint8_t *)dst + done, parts[i].iov_base, parts[i].iov_len);
        done += parts[i].iov_len;
    }
    return done;
}

size_t virtq_chain_write(const struct virtq_chain *c, size_t off, const void *src, size_t len)
{
    struct iovec parts[VIRTQ_CHAIN_MAX_SEGS];
    unsigned n = virtq_chain_slice(c, true, off, len, parts, VIRTQ_CHAIN_MAX_SEGS);
    size_t done = 0;

    for (unsigned i = 0; i < n; i++) {
        memcpy(parts[i].iov_base, (const uint8_t *)src + done, parts[i].iov_len);
        done += parts[i].iov_len;
    }
    return done;
}

unsigned virtq_chain_slice(const struct virtq_chain *c, bool writable, size_t off, size_t len,
                           struct iovec *out, unsigned max)
{
    unsigned first = writable ? c->nr_out : 0;
    unsigned end = writable ? c->nr_out + c->nr_in : c->nr_out;
    unsigned n = 0;

    for (unsigned i = first; i < end && len && n < max; i++) {
        size_t seg = c->iov[i].iov_len, take;

        if (off >= seg) {
            off -= seg;
            continue;
        }
        take = seg - off < len ? seg - off : len;
        out[n++] = (struct iovec){ .iov_base = (uint8_t *)c->iov[i].iov_base + off,
                                   .iov_len = take };
        len -= take;
        off = 0;
    }
    return n;
}
