/* virtq: the test plays the driver over a flat guest memory buffer: random queue
 * sizes and ring placements, direct and indirect chains, and every kind of
 * malformed ring it can think of (loops, out-of-range addresses, overflow). */
#include "../virtq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#define MEM_SIZE (16u << 20)
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

static uint8_t *mem_buf;
static struct guest_mem mem;

struct ring {
    unsigned size;
    uint64_t desc, avail, used;
    uint16_t avail_idx;
};

static void put16(uint64_t gpa, uint16_t v) { memcpy(mem_buf + gpa, &v, 2); }
static uint16_t get16(uint64_t gpa) { uint16_t v; memcpy(&v, mem_buf + gpa, 2); return v; }
static uint32_t get32(uint64_t gpa) { uint32_t v; memcpy(&v, mem_buf + gpa, 4); return v; }

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    uint8_t *p = mem_buf + table + 16 * (uint64_t)i;

    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static void make_avail(struct ring *r, uint16_t head)
{
    put16(r->avail + 4 + 2 * (r->avail_idx % r->size), head);
    r->avail_idx++;
    put16(r->avail + 2, r->avail_idx);
}

/* Places a ring of size entries at the given spot (rings are laid out back to back). */
static void ring_at(struct ring *r, unsigned size, uint64_t base)
{
    memset(r, 0, sizeof(*r));
    r->size = size;
    r->desc = base;
    r->avail = base + 16ull * size;
    r->used = (r->avail + 6 + 2ull * size + 3) & ~3ull;
    memset(mem_buf + base, 0, r->used + 6 + 8ull * size - base);
}

static void setup(struct virtq *q, struct ring *r, unsigned size, uint64_t base, uint64_t features)
{
    ring_at(r, size, base);
    CHECK(virtq_init(q, &mem, size, r->desc, r->avail, r->used, features) == 0);
}

/* Data buffers live from 8 MiB up. */
#define DATA 0x800000ull

static void test_init_checks(void)
{
    struct virtq q;

    CHECK(virtq_init(&q, &mem, 0, 0, 0x1000, 0x2000, 0) == -EINVAL);
    CHECK(virtq_init(&q, &mem, 3, 0, 0x1000, 0x2000, 0) == -EINVAL);
    CHECK(virtq_init(&q, &mem, 65536, 0, 0x100000, 0x200000, 0) == -EINVAL);
    CHECK(virtq_init(&q, &mem, 8, 8, 0x1000, 0x2000, 0) == -EINVAL);      /* desc align */
    CHECK(virtq_init(&q, &mem, 8, 0, 0x1001, 0x2000, 0) == -EINVAL);      /* avail align */
    CHECK(virtq_init(&q, &mem, 8, 0, 0x1000, 0x2002, 0) == -EINVAL);      /* used align */
    CHECK(virtq_init(&q, &mem, 8, MEM_SIZE - 64, 0x1000, 0x2000, 0) == -EINVAL);
    CHECK(virtq_init(&q, &mem, 8, 0, 0x1000, UINT64_MAX - 3, 0) == -EINVAL);
    CHECK(virtq_init(&q, &mem, 32768, 0, 0x80000, 0x90000, 0) == 0);
    CHECK(virtq_pop(&q, &(struct virtq_chain){ 0 }) == 0);
    virtq_reset(&q);
    CHECK(virtq_pop(&q, &(struct virtq_chain){ 0 }) == -EIO);
    CHECK(virtq_push(&q, 0, 0) == -EIO);
}

/* Random chains on random queues, direct or indirect, checked segment by segment. */
static void test_random_chains(void)
{
    static struct virtq_chain c;

    for (int round = 0; round < 300; round++) {
        unsigned size = 1u << (rand() % 16), nseg, nout;
        bool indirect = size > 1 && rand() % 2;
        uint64_t base = (uint64_t)(rand() % 256) * 16, table = 0x700000;
        uint64_t addrs[64];
        uint32_t lens[64];
        struct virtq q;
        struct ring r;

        setup(&q, &r, size, base, 1ull << VIRTIO_RING_F_INDIRECT_DESC);
        nseg = 1 + rand() % (indirect ? 64 : (size < 64 ? size : 64));
        nout = rand() % (nseg + 1);
        for (unsigned i = 0; i < nseg; i++) {
            addrs[i] = DATA + (uint64_t)(rand() % 0x700000);
            lens[i] = 1 + rand() % 4096;
        }
        /* Chain descriptors in a scrambled order to exercise next links. */
        unsigned slot0 = indirect ? 0 : (unsigned)rand() % (size - nseg + 1);
        for (unsigned i = 0; i < nseg; i++) {
            uint16_t flags = (i + 1 < nseg ? VRING_DESC_F_NEXT : 0) |
                             (i >= nout ? VRING_DESC_F_WRITE : 0);
            put_desc(indirect ? table : r.desc, slot0 + i, addrs[i], lens[i], flags,
                     (uint16_t)(slot0 + i + 1));
        }
        unsigned head = slot0;
        if (indirect) {
            head = rand() % size;
            put_desc(r.desc, head, table, 16 * nseg, VRING_DESC_F_INDIRECT, 0);
        }
        uint16_t start = (uint16_t)rand();
        /* Start the ring at a random index so wrap-around is exercised. */
        q.last_avail = q.used_idx = start;
        r.avail_idx = start;
        put16(r.used + 2, start);
        make_avail(&r, (uint16_t)head);
        CHECK(virtq_has_avail(&q));
        CHECK(virtq_pop(&q, &c) == 1);
        CHECK(c.head == head && c.nr_out == nout && c.nr_in == nseg - nout);
        for (unsigned i = 0; i < nseg; i++) {
            CHECK(c.iov[i].iov_base == mem_buf + addrs[i]);
            CHECK(c.iov[i].iov_len == lens[i]);
        }
        CHECK(virtq_pop(&q, &c) == 0);
        CHECK(virtq_push(&q, (uint16_t)head, 77) == 0);
        CHECK(get16(r.used + 2) == (uint16_t)(start + 1));
        CHECK(get32(r.used + 4 + 8 * (start % size)) == head);
        CHECK(get32(r.used + 8 + 8 * (start % size)) == 77);
    }
}

static struct virtq q;
static struct ring r;
static struct virtq_chain c;

/* One bad chain: pop must fail with err and break the queue. */
static void expect_bad(int err)
{
    make_avail(&r, 0);
    CHECK(virtq_pop(&q, &c) == err);
    CHECK(q.broken);
    CHECK(virtq_pop(&q, &c) == -EIO);
    CHECK(virtq_push(&q, 0, 0) == -EIO);
}

static void test_malformed(void)
{
    uint64_t feat = 1ull << VIRTIO_RING_F_INDIRECT_DESC, t = 0x600000;

    /* A loop 0 -> 1 -> 0. */
    setup(&q, &r, 8, 0, 0);
    put_desc(r.desc, 0, DATA, 8, VRING_DESC_F_NEXT, 1);
    put_desc(r.desc, 1, DATA, 8, VRING_DESC_F_NEXT, 0);
    expect_bad(-EIO);
    /* A self-loop on a queue of 1. */
    setup(&q, &r, 1, 0, 0);
    put_desc(r.desc, 0, DATA, 8, VRING_DESC_F_NEXT, 0);
    expect_bad(-EIO);
    /* next out of range. */
    setup(&q, &r, 8, 0, 0);
    put_desc(r.desc, 0, DATA, 8, VRING_DESC_F_NEXT, 8);
    expect_bad(-EIO);
    /* Address past the end of memory, and addr + len overflowing. */
    setup(&q, &r, 8, 0, 0);
    put_desc(r.desc, 0, MEM_SIZE - 4, 8, 0, 0);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, 0);
    put_desc(r.desc, 0, UINT64_MAX - 2, 16, 0, 0);
    expect_bad(-EIO);
    /* Readable after writable. */
    setup(&q, &r, 8, 0, 0);
    put_desc(r.desc, 0, DATA, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    put_desc(r.desc, 1, DATA, 8, 0, 0);
    expect_bad(-EIO);
    /* Indirect without the feature. */
    setup(&q, &r, 8, 0, 0);
    put_desc(t, 0, DATA, 8, 0, 0);
    put_desc(r.desc, 0, t, 16, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    /* Nested indirect; bad table length; INDIRECT|NEXT; table out of memory; loop in table. */
    setup(&q, &r, 8, 0, feat);
    put_desc(t, 0, t, 16, VRING_DESC_F_INDIRECT, 0);
    put_desc(r.desc, 0, t, 16, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, feat);
    put_desc(r.desc, 0, t, 24, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, feat);
    put_desc(r.desc, 0, t, 0, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, feat);
    put_desc(t, 0, DATA, 8, 0, 0);
    put_desc(r.desc, 0, t, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, feat);
    put_desc(r.desc, 0, MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, feat);
    put_desc(t, 0, DATA, 8, VRING_DESC_F_NEXT, 1);
    put_desc(t, 1, DATA, 8, VRING_DESC_F_NEXT, 0);
    put_desc(r.desc, 0, t, 32, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    setup(&q, &r, 8, 0, feat);
    put_desc(t, 0, DATA, 8, VRING_DESC_F_NEXT, 2);
    put_desc(r.desc, 0, t, 32, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-EIO);
    /* Head index out of range. */
    setup(&q, &r, 8, 0, 0);
    put16(r.avail + 4, 9);
    put16(r.avail + 2, 1);
    CHECK(virtq_pop(&q, &c) == -EIO && q.broken);
    /* avail->idx more than a ring ahead. */
    setup(&q, &r, 8, 0, 0);
    put16(r.avail + 2, 9);
    CHECK(virtq_pop(&q, &c) == -EIO && q.broken);
    /* Too many segments for a chain (indirect table of 300). */
    setup(&q, &r, 8, 0, feat);
    for (unsigned i = 0; i < 300; i++)
        put_desc(t, i, DATA + i, 1, i < 299 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    put_desc(r.desc, 0, t, 16 * 300, VRING_DESC_F_INDIRECT, 0);
    expect_bad(-E2BIG);
}

static void test_zero_length_and_unpop(void)
{
    setup(&q, &r, 4, 0, 0);
    put_desc(r.desc, 0, DATA, 0, VRING_DESC_F_NEXT, 1);
    put_desc(r.desc, 1, DATA + 100, 10, VRING_DESC_F_WRITE, 0);
    make_avail(&r, 0);
    CHECK(virtq_pop(&q, &c) == 1);
    CHECK(c.nr_out == 0 && c.nr_in == 1 && c.in_len == 10);
    virtq_unpop(&q);
    CHECK(virtq_pop(&q, &c) == 1 && c.head == 0);
    CHECK(virtq_chain_write(&c, 4, "abcdefghij", 10) == 6);
    CHECK(memcmp(mem_buf + DATA + 104, "abcdef", 6) == 0);
    CHECK(virtq_push(&q, 4, 0) == -EINVAL);
}

static void test_chain_copy(void)
{
    char out[32];
    struct iovec parts[4];

    setup(&q, &r, 4, 0, 0);
    memcpy(mem_buf + DATA, "hello", 5);
    memcpy(mem_buf + DATA + 50, " world", 6);
    put_desc(r.desc, 2, DATA, 5, VRING_DESC_F_NEXT, 3);
    put_desc(r.desc, 3, DATA + 50, 6, 0, 0);
    make_avail(&r, 2);
    CHECK(virtq_pop(&q, &c) == 1 && c.out_len == 11);
    memset(out, 0, sizeof(out));
    CHECK(virtq_chain_read(&c, 0, out, sizeof(out)) == 11);
    CHECK(strcmp(out, "hello world") == 0);
    CHECK(virtq_chain_read(&c, 3, out, 4) == 4 && memcmp(out, "lo w", 4) == 0);
    CHECK(virtq_chain_read(&c, 20, out, 4) == 0);
    CHECK(virtq_chain_slice(&c, false, 4, 100, parts, 4) == 2);
    CHECK(parts[0].iov_len == 1 && parts[1].iov_len == 6);
    CHECK(virtq_chain_write(&c, 0, "x", 1) == 0);
}

static void test_interrupt_suppression(void)
{
    /* Without EVENT_IDX: NO_INTERRUPT flag. */
    setup(&q, &r, 8, 0, 0);
    put_desc(r.desc, 0, DATA, 8, 0, 0);
    make_avail(&r, 0);
    CHECK(virtq_pop(&q, &c) == 1 && virtq_push(&q, 0, 0) == 0);
    CHECK(virtq_need_interrupt(&q));
    put16(r.avail, VRING_AVAIL_F_NO_INTERRUPT);
    CHECK(!virtq_need_interrupt(&q));

    /* With EVENT_IDX: interrupt only when used->idx passes used_event. */
    setup(&q, &r, 8, 0, 1ull << VIRTIO_RING_F_EVENT_IDX);
    for (unsigned i = 0; i < 8; i++)
        put_desc(r.desc, i, DATA, 8, 0, 0);
    put16(r.avail + 4 + 2 * 8, 2); /* used_event: interrupt when entry 2 is used */
    for (unsigned i = 0; i < 4; i++)
        make_avail(&r, (uint16_t)i);
    CHECK(virtq_pop(&q, &c) == 1);
    CHECK(virtq_push(&q, c.head, 0) == 0);
    CHECK(virtq_need_interrupt(&q));       /* first time: always */
    CHECK(virtq_pop(&q, &c) == 1 && virtq_push(&q, c.head, 0) == 0);
    CHECK(!virtq_need_interrupt(&q));      /* used idx 2: event 2 not passed yet */
    CHECK(virtq_pop(&q, &c) == 1 && virtq_push(&q, c.head, 0) == 0);
    CHECK(virtq_need_interrupt(&q));       /* used idx 3 passes used_event 2 */
    CHECK(virtq_pop(&q, &c) == 1 && virtq_push(&q, c.head, 0) == 0);
    CHECK(!virtq_need_interrupt(&q));
    /* Ring empty: avail_event asks for a kick on the next entry. */
    CHECK(virtq_pop(&q, &c) == 0);
    CHECK(get16(r.used + 4 + 8 * 8) == 4);
}

/* Many laps of a small ring: indexes wrap past 65535. */
static void test_wrap(void)
{
    setup(&q, &r, 2, 0, 0);
    put_desc(r.desc, 0, DATA, 8, 0, 0);
    put_desc(r.desc, 1, DATA, 8, VRING_DESC_F_WRITE, 0);
    for (unsigned i = 0; i < 70000; i++) {
        make_avail(&r, (uint16_t)(i & 1));
        CHECK(virtq_pop(&q, &c) == 1 && c.head == (i & 1));
        CHECK(virtq_push(&q, c.head, i & 1 ? 8 : 0) == 0);
    }
    CHECK(get16(r.used + 2) == (uint16_t)70000);
}

int main(void)
{
    srand(12345);
    mem_buf = aligned_alloc(4096, MEM_SIZE);
    CHECK(mem_buf);
    memset(mem_buf, 0, MEM_SIZE);
    gmem_init_flat(&mem, mem_buf, MEM_SIZE);
    test_init_checks();
    test_random_chains();
    test_malformed();
    test_zero_length_and_unpop();
    test_chain_copy();
    test_interrupt_suppression();
    test_wrap();
    free(mem_buf);
    printf("test_virtq: ok\n");
    return 0;
}
