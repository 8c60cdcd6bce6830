/* virtio-blk over a real snapfs store: the test plays the guest driver through
 * the bus (test_virtio_driver.h) while the event loop serves the queue on its
 * own thread, as in sbx-vmm. A 4 MiB image (patterned, last MiB zero) is
 * imported into a fresh store and opened through an overlay (read-write, on
 * io_uring) and as the bare image (read-only, io=sync). */
#include "test_virtio_driver.h"

#include <ftw.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "../evloop.h"
#include "../log.h"
#include "../virtio_blk.h"

#define IMG_BYTES (4u << 20)
#define ZERO_FROM (3u << 20)  /* the image is zero from here */
#define CAPACITY (IMG_BYTES / 512)
#define QSIZE 128u
#define DATA_MAX (2u << 20)

struct seg {
    uint64_t gpa;
    uint32_t len;
    bool write; /* device-writable */
};

static struct evloop *loop;
static uint8_t *image;       /* the raw image's bytes */
static char dir[] = "/tmp/sbx-blk-XXXXXX";
static uint64_t hdr_gpa, st_gpa, data_gpa, disc_gpa;

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- the store ---- */

static void make_store(void)
{
    char raw[256], store_path[256], ovl[256];
    struct snapfs_import_opts io = { .chunk_size = 64u << 10, .level = 1, .threads = 1 };
    struct snapfs_store *store;
    FILE *f;

    CHECK(mkdtemp(dir));
    snprintf(raw, sizeof(raw), "%s/raw", dir);
    snprintf(store_path, sizeof(store_path), "%s/store", dir);
    snprintf(ovl, sizeof(ovl), "%s/ovl", dir);
    image = calloc(1, IMG_BYTES);
    CHECK(image);
    for (uint32_t i = 0; i < ZERO_FROM; i++)
        image[i] = (uint8_t)(i * 7 + i / 4096 + 1);
    f = fopen(raw, "wb");
    CHECK(f && fwrite(image, 1, IMG_BYTES, f) == IMG_BYTES && fclose(f) == 0);
    store = snapfs_store_open(store_path, 1);
    CHECK(store);
    CHECK(snapfs_import(store, raw, "base", &io) == 0);
    CHECK(snapfs_overlay_create(store, "base", ovl) == 0);
    snapfs_store_close(store);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- the driver ---- */

static struct virtio_blk *open_disk(struct td *t, const char *kind)
{
    char spec[600], err[512];
    struct virtio_blk *b;

    if (!strcmp(kind, "overlay"))
        snprintf(spec, sizeof(spec), "store=%s/store,overlay=%s/ovl", dir, dir);
    else
        snprintf(spec, sizeof(spec), "image=base,store=%s/store,io=sync", dir);
    b = virtio_blk_open(&t->bus, TD_BASE, TD_GSI, &t->irq, &t->mem, loop, spec, err, sizeof(err));
    if (!b)
        fprintf(stderr, "virtio_blk_open: %s\n", err);
    CHECK(b);
    return b;
}

static uint32_t probe(struct td *t)
{
    const uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
                          (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
                          (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
                          (1ull << VIRTIO_BLK_F_RO) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    const uint32_t ok = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                        VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;

    t->alloc_next = 0x1000;
    memset(t->mem_buf + 0x1000, 0, 3 * 4096); /* the rings, which land at the same place */
    CHECK(td_probe(t, VIRTIO_ID_BLOCK, want, 1, QSIZE) == ok);
    hdr_gpa = td_alloc(t, 4096);
    st_gpa = td_alloc(t, 4096);
    disc_gpa = td_alloc(t, 4096);
    data_gpa = td_alloc(t, DATA_MAX + 4096);
    return ok;
}

/* Chains segs at descriptors 0.., publishes and kicks, waits for the device to
 * use it; returns the used length (-1 if the device never answered). */
static int64_t submit(struct td *t, const struct seg *segs, unsigned n)
{
    struct td_queue *q = &t->q[0];
    uint32_t id, len;
    long end = td_now_ms() + 10000;

    for (unsigned i = 0; i < n; i++)
        td_desc(t, q, i, segs[i].gpa, segs[i].len,
                (uint16_t)((segs[i].write ? VRING_DESC_F_WRITE : 0) |
                           (i + 1 < n ? VRING_DESC_F_NEXT : 0)), (uint16_t)(i + 1));
    td_publish(t, q, 0);
    td_kick(t, 0);
    while (td_now_ms() < end) {
        if (td_used(t, 0, &id, &len)) {
            CHECK(id == 0);
            return len;
        }
        if (td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)
            return -1;
        usleep(200);
    }
    return -1;
}

/* One request: header, data split into nseg descriptors (none if len is 0),
 * status. Returns the status byte the device wrote. */
static uint8_t request(struct td *t, uint32_t type, uint64_t sector, uint32_t len, bool dev_writes,
                       unsigned nseg)
{
    struct virtio_blk_outhdr h = { .type = type, .sector = sector };
    struct seg segs[8];
    unsigned n = 0;
    uint32_t per = nseg ? len / nseg : 0;

    memcpy(t->mem_buf + hdr_gpa, &h, sizeof(h));
    t->mem_buf[st_gpa] = 0xee;
    segs[n++] = (struct seg){ hdr_gpa, sizeof(h), false };
    for (unsigned i = 0; len && i < nseg; i++)
        segs[n++] = (struct seg){ data_gpa + i * per, i + 1 < nseg ? per : len - i * per,
                                  dev_writes };
    segs[n++] = (struct seg){ st_gpa, 1, true };
    CHECK(submit(t, segs, n) >= 1);
    return t->mem_buf[st_gpa];
}

/* A DISCARD or WRITE_ZEROES (type) of nsegs copies of one segment. */
static uint8_t ranged(struct td *t, uint32_t type, uint64_t sector, uint32_t count,
                      uint32_t flags, unsigned nsegs)
{
    struct virtio_blk_outhdr h = { .type = type };
    struct virtio_blk_discard_write_zeroes d = { .sector = sector, .num_sectors = count,
                                                 .flags = flags };
    struct seg segs[3] = { { hdr_gpa, sizeof(h), false },
                           { disc_gpa, (uint32_t)(sizeof(d) * nsegs), false },
                           { st_gpa, 1, true } };
    unsigned n = 3;

    memcpy(t->mem_buf + hdr_gpa, &h, sizeof(h));
    for (unsigned i = 0; i < nsegs; i++)
        memcpy(t->mem_buf + disc_gpa + i * sizeof(d), &d, sizeof(d));
    t->mem_buf[st_gpa] = 0xee;
    if (nsegs == 0) /* no segment descriptor at all */
        segs[1] = segs[2], n = 2;
    CHECK(submit(t, segs, n) == 1);
    return t->mem_buf[st_gpa];
}

static uint8_t discard(struct td *t, uint64_t sector, uint32_t count, uint32_t flags,
                       unsigned nsegs)
{
    return ranged(t, VIRTIO_BLK_T_DISCARD, sector, count, flags, nsegs);
}

static uint8_t write_zeroes(struct td *t, uint64_t sector, uint32_t count, uint32_t flags,
                            unsigned nsegs)
{
    return ranged(t, VIRTIO_BLK_T_WRITE_ZEROES, sector, count, flags, nsegs);
}

static uint64_t config_u64(struct td *t, unsigned off)
{
    return td_rd(t, 0x100 + off) | (uint64_t)td_rd(t, 0x100 + off + 4) << 32;
}

/* ---- the tests ---- */

static void test_config(struct td *t)
{
    CHECK(config_u64(t, 0) == CAPACITY);
    CHECK(td_rd(t, 0x100 + 20) == 4096);                        /* blk_size */
    CHECK(td_rd(t, 0x100 + 12) == VIRTIO_BLK_SEG_MAX);          /* seg_max */
    CHECK(td_rd(t, 0x100 + 40) == 1);                           /* max_discard_seg */
    CHECK(td_rd(t, 0x100 + 44) == 8);                           /* discard alignment */
    CHECK(td_rd(t, 0x100 + offsetof(struct virtio_blk_config, max_write_zeroes_sectors)) ==
          1u << 22);
    CHECK(td_rd(t, 0x100 + offsetof(struct virtio_blk_config, max_write_zeroes_seg)) == 1);
    CHECK((td_rd(t, 0x100 + offsetof(struct virtio_blk_config, write_zeroes_may_unmap)) & 0xff)
          == 1);
    td_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    CHECK(td_rd(t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_WRITE_ZEROES));
    CHECK(td_rd(t, 0x100 + 0xf0) == 0);                         /* past the struct */
}

static void test_read_write(struct td *t)
{
    uint8_t *data = t->mem_buf + data_gpa;

    CHECK(request(t, VIRTIO_BLK_T_IN, 0, 65536, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, image, 65536));
    /* Unaligned sector, three segments. */
    memset(data, 0, 3 * 4096);
    CHECK(request(t, VIRTIO_BLK_T_IN, 2049, 3 * 4096, true, 3) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, image + 2049 * 512, 3 * 4096));
    /* Write 8 KiB in two segments, read it back with its neighbours. */
    for (unsigned i = 0; i < 8192; i++)
        data[i] = (uint8_t)(i ^ 0x5a);
    CHECK(request(t, VIRTIO_BLK_T_OUT, 16, 8192, false, 2) == VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 8192; i++)
        image[16 * 512 + i] = (uint8_t)(i ^ 0x5a);
    /* One sector inside a block: merged with the block's content. */
    memset(data, 0xab, 512);
    CHECK(request(t, VIRTIO_BLK_T_OUT, 3, 512, false, 1) == VIRTIO_BLK_S_OK);
    memset(image + 3 * 512, 0xab, 512);
    memset(data, 0, 65536);
    CHECK(request(t, VIRTIO_BLK_T_IN, 0, 65536, true, 4) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, image, 65536));
    /* The last sector of the disk. */
    CHECK(request(t, VIRTIO_BLK_T_IN, CAPACITY - 1, 512, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(request(t, VIRTIO_BLK_T_FLUSH, 0, 0, false, 0) == VIRTIO_BLK_S_OK);
    CHECK(atomic_load(&t->irq_edges) > 0);
}

static void test_discard(struct td *t)
{
    uint8_t *data = t->mem_buf + data_gpa;
    const uint64_t sector = ZERO_FROM / 512 + 64;

    memset(data, 0x77, 16384);
    CHECK(request(t, VIRTIO_BLK_T_OUT, sector, 16384, false, 1) == VIRTIO_BLK_S_OK);
    memset(data, 0, 16384);
    CHECK(request(t, VIRTIO_BLK_T_IN, sector, 16384, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(data[0] == 0x77 && data[16383] == 0x77);
    /* Discarded blocks read back as the image (zeros here). */
    CHECK(discard(t, sector, 32, 0, 1) == VIRTIO_BLK_S_OK);
    memset(data, 0x11, 16384);
    CHECK(request(t, VIRTIO_BLK_T_IN, sector, 16384, true, 1) == VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 16384; i++)
        CHECK(data[i] == 0);
    CHECK(discard(t, sector, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1) == VIRTIO_BLK_S_UNSUPP);
    CHECK(discard(t, sector, 8, 0, 2) == VIRTIO_BLK_S_IOERR);      /* max_discard_seg 1 */
    CHECK(discard(t, CAPACITY - 8, 16, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(discard(t, UINT64_MAX, 8, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(discard(t, 0, UINT32_MAX, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(discard(t, 1, 3, 0, 1) == VIRTIO_BLK_S_OK);  /* no whole block: nothing */
}

/* Zeroes ranges inside written data and the image, aligned or not, with and
 * without the unmap flag; reads back zeros there and the data around. */
static void test_write_zeroes(struct td *t)
{
    uint8_t *data = t->mem_buf + data_gpa;
    const uint64_t sector = 4096; /* 2 MiB: patterned image, untouched so far */
    const uint32_t len = 65536;

    for (unsigned i = 0; i < 16384; i++)
        data[i] = (uint8_t)(i * 3 + 1);
    CHECK(request(t, VIRTIO_BLK_T_OUT, sector, 16384, false, 1) == VIRTIO_BLK_S_OK);
    memcpy(image + sector * 512, data, 16384);
    CHECK(write_zeroes(t, sector + 1, 14, 0, 1) == VIRTIO_BLK_S_OK);       /* unaligned */
    memset(image + (sector + 1) * 512, 0, 14 * 512);
    CHECK(write_zeroes(t, sector + 24, 40, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1) ==
          VIRTIO_BLK_S_OK);                                              /* aligned, unmap */
    memset(image + (sector + 24) * 512, 0, 40 * 512);
    CHECK(write_zeroes(t, sector + 71, 3, 0, 1) == VIRTIO_BLK_S_OK);       /* image only */
    memset(image + (sector + 71) * 512, 0, 3 * 512);
    CHECK(write_zeroes(t, CAPACITY - 9, 9, 0, 1) == VIRTIO_BLK_S_OK);      /* the disk's end */
    CHECK(write_zeroes(t, sector, 0, 0, 1) == VIRTIO_BLK_S_OK);            /* nothing */
    memset(data, 0xee, len);
    CHECK(request(t, VIRTIO_BLK_T_IN, sector, len, true, 3) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, image + sector * 512, len));
    CHECK(request(t, VIRTIO_BLK_T_IN, CAPACITY - 16, 8192, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, image + (CAPACITY - 16) * 512, 8192));
    /* Bad requests: IOERR (range, segments) or UNSUPP (reserved flags). */
    CHECK(write_zeroes(t, sector, 8, 2, 1) == VIRTIO_BLK_S_UNSUPP);
    CHECK(write_zeroes(t, sector, 8, 0x80000001u, 1) == VIRTIO_BLK_S_UNSUPP);
    CHECK(write_zeroes(t, sector, 8, 0, 2) == VIRTIO_BLK_S_IOERR);  /* max_write_zeroes_seg 1 */
    CHECK(write_zeroes(t, sector, 8, 0, 0) == VIRTIO_BLK_S_IOERR);  /* no segment */
    CHECK(write_zeroes(t, CAPACITY - 8, 16, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(write_zeroes(t, CAPACITY, 1, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(write_zeroes(t, UINT64_MAX, 8, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(write_zeroes(t, UINT64_MAX / 512 + 1, 8, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(write_zeroes(t, 0, UINT32_MAX, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(write_zeroes(t, 0, (1u << 22) + 8, 0, 1) == VIRTIO_BLK_S_IOERR);
    /* The data was untouched by them, and the device works on. */
    memset(data, 0xee, len);
    CHECK(request(t, VIRTIO_BLK_T_IN, sector, len, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, image + sector * 512, len));
    CHECK(request(t, VIRTIO_BLK_T_FLUSH, 0, 0, false, 0) == VIRTIO_BLK_S_OK);
}

static void test_get_id(struct td *t)
{
    uint8_t *data = t->mem_buf + data_gpa;

    memset(data, 0xff, 32);
    CHECK(request(t, VIRTIO_BLK_T_GET_ID, 0, 20, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(data, "base", 4));
    for (unsigned i = 4; i < 20; i++)
        CHECK(data[i] == 0);
    CHECK(data[20] == 0xff);
}

static void test_bad_requests(struct td *t)
{
    struct seg segs[4];

    CHECK(request(t, VIRTIO_BLK_T_IN, CAPACITY - 1, 1024, true, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(request(t, VIRTIO_BLK_T_IN, CAPACITY, 512, true, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(request(t, VIRTIO_BLK_T_OUT, CAPACITY + 1, 512, false, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(request(t, VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1, 512, true, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(request(t, VIRTIO_BLK_T_IN, UINT64_MAX, 512, true, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(request(t, VIRTIO_BLK_T_IN, 0, 100, true, 1) == VIRTIO_BLK_S_IOERR);  /* not sectors */
    CHECK(request(t, 99, 0, 512, true, 1) == VIRTIO_BLK_S_UNSUPP);
    CHECK(request(t, 14 /* SECURE_ERASE */, 0, 16, false, 1) == VIRTIO_BLK_S_UNSUPP);
    /* A header split over two descriptors is fine; a short one is IOERR. */
    struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 8 };
    memcpy(t->mem_buf + hdr_gpa, &h, sizeof(h));
    segs[0] = (struct seg){ hdr_gpa, 8, false };
    segs[1] = (struct seg){ hdr_gpa + 8, 8, false };
    segs[2] = (struct seg){ data_gpa, 512, true };
    segs[3] = (struct seg){ st_gpa, 1, true };
    CHECK(submit(t, segs, 4) == 513 && t->mem_buf[st_gpa] == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(t->mem_buf + data_gpa, image + 8 * 512, 512));
    segs[1] = (struct seg){ data_gpa, 512, true };
    segs[2] = (struct seg){ st_gpa, 1, true };
    CHECK(submit(t, segs + 0, 3) == 1 && t->mem_buf[st_gpa] == VIRTIO_BLK_S_IOERR);
    /* No writable byte for the status: the device asks for a reset. */
    segs[0] = (struct seg){ hdr_gpa, 16, false };
    segs[1] = (struct seg){ data_gpa, 512, false };
    CHECK(submit(t, segs, 2) == -1);
    CHECK(td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    probe(t);
    CHECK(request(t, VIRTIO_BLK_T_IN, 0, 4096, true, 1) == VIRTIO_BLK_S_OK);
}

static void test_read_only(void)
{
    static struct td t2;
    uint64_t features;
    struct virtio_blk *ro;

    td_init(&t2);
    ro = open_disk(&t2, "image");
    td_wr(&t2, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    features = td_rd(&t2, VIRTIO_MMIO_DEVICE_FEATURES);
    CHECK(features & (1u << VIRTIO_BLK_F_RO));
    probe(&t2);
    CHECK(request(&t2, VIRTIO_BLK_T_IN, 0, 8192, true, 1) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(t2.mem_buf + data_gpa, image, 3 * 512));  /* before the overlay's writes */
    CHECK(!memcmp(t2.mem_buf + data_gpa + 4 * 512, image + 4 * 512, 12 * 512));
    CHECK(request(&t2, VIRTIO_BLK_T_OUT, 0, 4096, false, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(discard(&t2, 0, 8, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(write_zeroes(&t2, 0, 8, 0, 1) == VIRTIO_BLK_S_IOERR);
    CHECK(request(&t2, VIRTIO_BLK_T_FLUSH, 0, 0, false, 0) == VIRTIO_BLK_S_OK);
    CHECK(request(&t2, VIRTIO_BLK_T_GET_ID, 0, 20, true, 1) == VIRTIO_BLK_S_OK);
    virtio_blk_destroy(ro);
    free(t2.mem_buf);
}

/* Many requests published at once, in flight together: aligned writes, reads,
 * and writes that do not cover whole 4 KiB blocks (several into one block,
 * and one split mid-block over two segments), which the device must run one
 * at a time. Every status is OK and the disk ends up as if they ran in order. */
enum { K_ALIGNED, K_READ, K_SPLIT, K_PARTIAL };

/* Chain k's kind: ten reads and aligned writes (in flight together), then five
 * writes split mid-block, then five one-sector writes into one block. */
static unsigned kind_of(unsigned k)
{
    return k < 10 ? (k % 2 ? K_READ : K_ALIGNED) : k < 15 ? K_SPLIT : K_PARTIAL;
}

static void test_concurrent(struct td *t)
{
    enum { N = 20 };
    struct td_queue *q = &t->q[0];
    uint8_t *expect = malloc(IMG_BYTES);
    unsigned answered = 0;
    uint32_t id, len;
    long end;

    CHECK(expect);
    memcpy(expect, image, IMG_BYTES);
    for (unsigned k = 0; k < N; k++) {
        uint64_t hdr = hdr_gpa + k * 16, data = data_gpa + k * 16384, st = st_gpa + k;
        struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT };
        uint32_t dlen = 4096, split = 0;
        unsigned d = k * 3;

        switch (kind_of(k)) {
        case K_PARTIAL: h.sector = 800 + k, dlen = 512; break;
        case K_ALIGNED: h.sector = (200 + k) * 8; break;
        case K_READ: h.type = VIRTIO_BLK_T_IN, h.sector = (10 + k) * 8, dlen = 8192; break;
        case K_SPLIT: h.sector = (300 + 2 * k) * 8, dlen = 8192, split = 1024; break;
        }
        memcpy(t->mem_buf + hdr, &h, sizeof(h));
        t->mem_buf[st] = 0xee;
        if (h.type == VIRTIO_BLK_T_OUT) {
            memset(t->mem_buf + data, 0x30 + k, dlen);
            memset(expect + h.sector * 512, 0x30 + k, dlen);
        }
        bool in = h.type == VIRTIO_BLK_T_IN;
        td_desc(t, q, d, hdr, sizeof(h), VRING_DESC_F_NEXT, (uint16_t)(d + 1));
        if (split) { /* four descriptors: two data segments */
            d = N * 3 + k;
            td_desc(t, q, k * 3 + 1, data, split, VRING_DESC_F_NEXT, (uint16_t)d);
            td_desc(t, q, d, data + split, dlen - split, VRING_DESC_F_NEXT, (uint16_t)(k * 3 + 2));
        } else {
            td_desc(t, q, d + 1, data, dlen, (uint16_t)(VRING_DESC_F_NEXT |
                    (in ? VRING_DESC_F_WRITE : 0)), (uint16_t)(d + 2));
        }
        td_desc(t, q, k * 3 + 2, st, 1, VRING_DESC_F_WRITE, 0);
        td_publish(t, q, (uint16_t)(k * 3));
    }
    td_kick(t, 0);
    end = td_now_ms() + 20000;
    while (answered < N && td_now_ms() < end) {
        if (!td_used(t, 0, &id, &len)) {
            usleep(200);
            continue;
        }
        CHECK(id % 3 == 0 && id / 3 < N);
        CHECK(t->mem_buf[st_gpa + id / 3] == VIRTIO_BLK_S_OK);
        CHECK(len == (kind_of(id / 3) == K_READ ? 8193u : 1u));
        if (kind_of(id / 3) == K_READ)
            CHECK(!memcmp(t->mem_buf + data_gpa + id / 3 * 16384,
                          image + (10 + id / 3) * 4096, 8192));
        answered++;
    }
    CHECK(answered == N);
    memcpy(image, expect, IMG_BYTES);
    free(expect);
    memset(t->mem_buf + data_gpa, 0, DATA_MAX);
    CHECK(request(t, VIRTIO_BLK_T_IN, 0, 344 * 4096, true, 4) == VIRTIO_BLK_S_OK);
    CHECK(!memcmp(t->mem_buf + data_gpa, image, 344 * 4096));
}

/* Random descriptor tables, chains and headers, processed in place (no loop
 * kick): the device must survive them, and a reset must bring it back. */
static void test_garbage(struct td *t, struct virtio_blk *b)
{
    struct td_queue *q = &t->q[0];
    uint32_t seed = 0x12345678, id, len;
    unsigned used = 0;

    log_set_level(LOG_ERROR); /* thousands of device errors ahead */
    for (unsigned round = 0; round < 3000; round++) {
        unsigned n = 1 + xorshift(&seed) % QSIZE;

        if (td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)
            probe(t);
        for (unsigned i = 0; i < QSIZE; i++) {
            uint64_t addr = xorshift(&seed) % 4 ? data_gpa + xorshift(&seed) % DATA_MAX
                                                : (uint64_t)xorshift(&seed) << (xorshift(&seed) % 40);
            uint32_t dlen = xorshift(&seed) % 3 ? xorshift(&seed) % 8192 : xorshift(&seed);
            uint16_t flags = (uint16_t)(xorshift(&seed) & 3);

            uint16_t next = (uint16_t)(xorshift(&seed) % 64 ? xorshift(&seed) % QSIZE
                                                             : xorshift(&seed));

            td_desc(t, q, i, addr, dlen, flags, next);
            if (xorshift(&seed) % 3 == 0) { /* a plausible header at the address */
                struct virtio_blk_outhdr h = { .type = xorshift(&seed) % 14,
                                               .sector = xorshift(&seed) % (CAPACITY + 16) };
                if (addr + sizeof(h) <= TD_MEM_SIZE && addr >= data_gpa)
                    memcpy(t->mem_buf + addr, &h, sizeof(h));
            }
        }
        for (unsigned i = 0; i < n; i++)
            td_publish(t, q, (uint16_t)(xorshift(&seed) % 64 ? xorshift(&seed) % QSIZE
                                                              : xorshift(&seed)));
        virtio_blk_process(b);
        virtio_blk_drain(b);
        while (td_used(t, 0, &id, &len) && ++used)
            CHECK(id < QSIZE);
        q->used_seen = q->avail_idx = 0;
        probe(t);
    }
    log_set_level(LOG_WARN);
    printf("test_virtio_blk: %u garbage requests answered\n", used);
    CHECK(used > 100);
    CHECK(request(t, VIRTIO_BLK_T_IN, 0, 4096, true, 1) == VIRTIO_BLK_S_OK);
}

int main(void)
{
    static struct td t;
    struct virtio_blk_spec spec;
    struct virtio_blk *b;
    pthread_t thread;
    char err[256];

    CHECK(virtio_blk_parse_spec("store=/s,image=x", &spec, err, sizeof(err)) == 0);
    CHECK(!strcmp(spec.store, "/s") && !strcmp(spec.image, "x") && !spec.overlay[0]);
    CHECK(virtio_blk_parse_spec("overlay=/o,store=/s", &spec, err, sizeof(err)) == 0);
    CHECK(!strcmp(spec.overlay, "/o") && !spec.image[0]);
    CHECK(virtio_blk_parse_spec("store=/s", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,image=x,overlay=/o", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,store=/t,image=x", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,image=", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,image=.x", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,image=x,", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,size=1", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("", &spec, err, sizeof(err)) < 0);
    CHECK(virtio_blk_parse_spec("store=/s,image=x,io=sync", &spec, err, sizeof(err)) == 0);
    CHECK(!strcmp(spec.io, "sync"));
    CHECK(virtio_blk_parse_spec("store=/s,image=x,io=fast", &spec, err, sizeof(err)) < 0);

    make_store();
    td_init(&t);
    loop = evloop_new();
    CHECK(loop);
    CHECK(!virtio_blk_open(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, loop,
                           "store=/nonexistent/sbx,image=base", err, sizeof(err)));
    b = open_disk(&t, "overlay");
    CHECK(pthread_create(&thread, NULL, td_loop_main, loop) == 0);
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    CHECK(!(td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO)));
    probe(&t);
    test_config(&t);
    test_read_write(&t);
    test_concurrent(&t);
    test_discard(&t);
    test_write_zeroes(&t);
    test_get_id(&t);
    test_bad_requests(&t);
    test_read_only();
    test_garbage(&t, b);
    evloop_stop(loop, 0);
    pthread_join(thread, NULL);
    virtio_blk_destroy(b);
    evloop_free(loop);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(image);
    free(t.mem_buf);
    printf("test_virtio_blk: ok\n");
    return 0;
}
