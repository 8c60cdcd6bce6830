/* Fuzzes virtio-blk with guest-written request chains, driving the device as a
 * guest would (virtio-mmio initialisation through the bus). The disk is a real
 * snapfs overlay on a 1 MiB image, made once in a temporary store. The event
 * loop is not run: the fuzzer processes the queue itself (virtio_blk_process)
 * and waits for the io_uring completions (virtio_blk_drain).
 * Input: records of { u8 flags; u16 len (LE); u8 bytes[len] }, each one chain:
 * bytes are its readable part (header, then data or a discard/write-zeroes
 * segment: any request type, WRITE_ZEROES (13) included, comes from the input);
 *   bit 0     split the readable part over two descriptors
 *   bits 1-3  writable data descriptor size (index into wr_sizes)
 *   bit 4     split the writable data over two descriptors
 *   bit 5     no status descriptor (a chain the device must refuse)
 *   bit 6     two-byte status descriptor (the status is the last byte)
 *   bit 7     process the queue after this chain. */
#include "../tests/test_virtio_driver.h"

#include <ftw.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "../evloop.h"
#include "../log.h"
#include "../virtio_blk.h"

#define QSIZE 32u
#define SEGS_PER_CHAIN 4u
#define CHAINS (QSIZE / SEGS_PER_CHAIN)
#define BUF_BASE 0x100000ull
#define BUF_STRIDE 0x10000ull
#define RD_MAX 0x2000u
#define WR_OFF 0x2000u
#define ST_OFF 0xa000u
#define IMG_BYTES (1u << 20)

static const uint32_t wr_sizes[8] = { 0, 20, 512, 4096, 4608, 8192, 32768, 100 };

static struct td t;
static struct virtio_blk *blk;
static struct evloop *loop;
static char dir[] = "/tmp/sbx-fuzz-blk-XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    virtio_blk_destroy(blk);
    evloop_free(loop);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_store(void)
{
    struct snapfs_import_opts io = { .chunk_size = 64u << 10, .level = 1, .threads = 1 };
    char raw[128], path[128], ovl[128];
    struct snapfs_store *store;
    uint8_t *img = malloc(IMG_BYTES);
    FILE *f;

    CHECK(img && mkdtemp(dir));
    for (uint32_t i = 0; i < IMG_BYTES; i++)
        img[i] = i < IMG_BYTES / 2 ? (uint8_t)(i * 13 + i / 512) : 0;
    snprintf(raw, sizeof(raw), "%s/raw", dir);
    snprintf(path, sizeof(path), "%s/store", dir);
    snprintf(ovl, sizeof(ovl), "%s/ovl", dir);
    f = fopen(raw, "wb");
    CHECK(f && fwrite(img, 1, IMG_BYTES, f) == IMG_BYTES && fclose(f) == 0);
    free(img);
    store = snapfs_store_open(path, 1);
    CHECK(store && snapfs_import(store, raw, "fuzz", &io) == 0);
    CHECK(snapfs_overlay_create(store, "fuzz", ovl) == 0);
    snapfs_store_close(store);
}

static void setup_once(void)
{
    char spec[300], err[256];

    log_set_level(LOG_ERROR);
    make_store();
    td_init(&t);
    loop = evloop_new();
    CHECK(loop);
    snprintf(spec, sizeof(spec), "store=%s/store,overlay=%s/ovl", dir, dir);
    blk = virtio_blk_open(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, loop, spec, err, sizeof(err));
    if (!blk)
        fprintf(stderr, "fuzz_blk: %s\n", err);
    CHECK(blk);
    atexit(cleanup);
}

/* Serves the queue; false once the device wants a reset. */
static bool process(void)
{
    uint32_t id, len;

    virtio_blk_process(blk);
    virtio_blk_drain(blk);
    while (td_used(&t, 0, &id, &len))
        CHECK(id < QSIZE && len <= wr_sizes[6] + 2);
    return !(td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Builds chain slot from flags and the readable bytes rd[0, len). */
static void add_chain(unsigned slot, uint8_t flags, const uint8_t *rd, size_t len)
{
    struct td_queue *q = &t.q[0];
    uint64_t base = BUF_BASE + slot * BUF_STRIDE;
    uint32_t wr = wr_sizes[(flags >> 1) & 7];
    struct { uint64_t gpa; uint32_t len; uint16_t flags; } d[SEGS_PER_CHAIN];
    unsigned n = 0, first = slot * SEGS_PER_CHAIN;

    memcpy(t.mem_buf + base, rd, len);
    if ((flags & 1) && len > 1) {
        d[n++] = (typeof(d[0])){ base, (uint32_t)len / 2, 0 };
        d[n++] = (typeof(d[0])){ base + len / 2, (uint32_t)(len - len / 2), 0 };
    } else {
        d[n++] = (typeof(d[0])){ base, (uint32_t)len, 0 };
    }
    if (wr && (flags & 16) && n < 3) {
        d[n++] = (typeof(d[0])){ base + WR_OFF, wr / 2, VRING_DESC_F_WRITE };
        d[n++] = (typeof(d[0])){ base + WR_OFF + wr / 2, wr - wr / 2, VRING_DESC_F_WRITE };
    } else if (wr) {
        d[n++] = (typeof(d[0])){ base + WR_OFF, wr, VRING_DESC_F_WRITE };
    }
    if (!(flags & 32) && n < SEGS_PER_CHAIN)
        d[n++] = (typeof(d[0])){ base + ST_OFF, flags & 64 ? 2 : 1, VRING_DESC_F_WRITE };
    for (unsigned i = 0; i < n; i++)
        td_desc(&t, q, first + i, d[i].gpa, d[i].len,
                (uint16_t)(d[i].flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
                (uint16_t)(first + i + 1));
    td_publish(&t, q, (uint16_t)first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned slot = 0;

    if (!blk)
        setup_once();
    memset(t.mem_buf, 0, BUF_BASE);
    t.alloc_next = 0x1000;
    if (td_probe(&t, VIRTIO_ID_BLOCK, (1ull << VIRTIO_F_VERSION_1) |
                 (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_BLK_F_FLUSH) |
                 (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES), 1,
                 QSIZE) & VIRTIO_CONFIG_S_NEEDS_RESET)
        return 0;
    while (size >= 3) {
        uint8_t flags = data[0];
        size_t len = (size_t)(data[1] | data[2] << 8);

        data += 3;
        size -= 3;
        len = len < size ? len : size;
        len = len < RD_MAX ? len : RD_MAX;
        add_chain(slot, flags, data, len);
        data += len;
        size -= len;
        if (++slot == CHAINS || (flags & 128)) {
            if (!process())
                return 0;
            slot = 0;
        }
    }
    process();
    return 0;
}
