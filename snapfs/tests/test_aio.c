/* The asynchronous API driven from a poll loop: reads, writes (aligned and
 * not), discards and flushes in flight together; a capture started while the
 * disk keeps taking I/O. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (4u * 1024 * 1024)
#define SLOTS 32
#define REGION (DISK / SLOTS)

static uint8_t *model, *base;
/* What discarded blocks read back as: the layer under the overlay's newest
 * generation (the image; during and after a capture, the captured content). */
static uint8_t *lower;
static int completed, failures;

struct slot {
    struct snapfs_req req;
    struct iovec iov[3];
    uint8_t buf[40960];
    uint8_t want[40960];
};

static void done(struct snapfs_req *req, int result)
{
    struct slot *s = req->opaque;
    completed++;
    if (result != 0) {
        fprintf(stderr, "request op %d failed: %d %s\n", req->op, result, snapfs_error());
        failures++;
    } else if (req->op == SNAPFS_OP_READ && memcmp(s->buf, s->want, req->len) != 0) {
        fprintf(stderr, "read at %llu returned wrong data\n", (unsigned long long)req->offset);
        failures++;
    }
}

static void wait_for(struct snapfs_disk *d, int n)
{
    while (completed < n) {
        struct pollfd p = { .fd = snapfs_aio_fd(d), .events = POLLIN };
        CHECK(poll(&p, 1, 10000) == 1);
        CHECK(snapfs_aio_process(d) >= 0);
    }
}

/* One request per region, so requests in flight never overlap. */
static void batch(struct snapfs_disk *d, struct slot *slots, uint32_t *st)
{
    int target = completed;
    for (int i = 0; i < SLOTS; i++) {
        struct slot *s = &slots[i];
        uint32_t kind = rnd(st) % 10;
        size_t len = 1 + rnd(st) % 40000;
        uint64_t off;
        if (kind < 3)
            len = (len + 4095) & ~4095ul;
        off = (uint64_t)i * REGION + rnd(st) % (REGION - len);
        if (kind < 3)
            off &= ~4095ull;               /* stays inside the region */
        s->req = (struct snapfs_req){ .offset = off, .len = len, .buf = s->buf,
                                      .done = done, .opaque = s };
        if (kind < 5) {
            s->req.op = SNAPFS_OP_WRITE;
            for (size_t k = 0; k < len; k++)
                s->buf[k] = (uint8_t)(rnd(st) % 3 ? (uint32_t)('A' + i) : rnd(st));
            memcpy(model + off, s->buf, len);
            if (kind < 2 && len >= 3) { /* whole blocks from three pieces, any sizes */
                size_t a = 1 + rnd(st) % (len - 2), b = 1 + rnd(st) % (len - a - 1);
                s->iov[0] = (struct iovec){ s->buf, a };
                s->iov[1] = (struct iovec){ s->buf + a, b };
                s->iov[2] = (struct iovec){ s->buf + a + b, len - a - b };
                s->req.iov = s->iov, s->req.iovcnt = 3, s->req.buf = NULL;
            }
        } else if (kind < 6) {
            uint64_t a = (off + 4095) & ~4095ull, b = (off + len) & ~4095ull;
            s->req.op = SNAPFS_OP_DISCARD;
            if (b > a)
                memcpy(model + a, lower + a, b - a);
        } else if (kind < 7) {
            s->req.op = SNAPFS_OP_FLUSH;
        } else {
            s->req.op = SNAPFS_OP_READ;
            memcpy(s->want, model + off, len);
        }
        CHECK(snapfs_aio_submit(d, &s->req) == 0);
        target++;
    }
    wait_for(d, target);
    CHECK(failures == 0);
}

static void check_sync(struct snapfs_disk *d, const uint8_t *want)
{
    uint8_t *buf = malloc(DISK);
    CHECK(buf && snapfs_pread(d, buf, DISK, 0) == 0);
    for (size_t i = 0; i < DISK; i++)
        if (buf[i] != want[i]) {
            fprintf(stderr, "first difference at %zu: %02x want %02x (base %02x)\n", i, buf[i], want[i], base[i]);
            break;
        }
    CHECK(memcmp(buf, want, DISK) == 0);
    free(buf);
}

static void capture_under_load(struct snapfs_store *s, struct snapfs_disk *d, struct slot *slots,
                               uint32_t *st, const char *dir)
{
    uint8_t *frozen = malloc(DISK), *got;
    struct snapfs_req flush = { .op = SNAPFS_OP_FLUSH, .done = done };
    size_t len;
    int target;
    CHECK(frozen);
    memcpy(frozen, model, DISK);
    lower = frozen;
    CHECK(snapfs_capture_start(d, "snap", NULL) == 0);
    CHECK(snapfs_capture_start(d, "snap", NULL) == -EBUSY);
    batch(d, slots, st);                               /* I/O goes on meanwhile */
    target = completed + 1;
    CHECK(snapfs_aio_submit(d, &flush) == 0);          /* held until the capture ends */
    wait_for(d, target);
    CHECK(snapfs_capture_poll(d) == 0);
    CHECK(strcmp(snapfs_disk_image(d), "snap") == 0);
    CHECK(snapfs_export(s, "snap", NULL, path_in(dir, "snap.raw")) == 0);
    got = read_raw(path_in(dir, "snap.raw"), &len);
    CHECK(len == DISK && memcmp(got, frozen, DISK) == 0);
    free(got);
    batch(d, slots, st);
    check_sync(d, model);
}

int main(void)
{
    char *dir = tmpdir_make();
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct slot *slots = calloc(SLOTS, sizeof(*slots));
    struct snapfs_req flush = { .op = SNAPFS_OP_FLUSH, .done = done };
    struct snapfs_disk *d;
    uint32_t st = 77;
    base = malloc(DISK);
    model = malloc(DISK);
    CHECK(s && slots && base && model);
    fill_disk(base, DISK, 3);
    memcpy(model, base, DISK);
    lower = base;
    write_raw(path_in(dir, "in.raw"), base, DISK);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "img", &(struct snapfs_import_opts){ .chunk_size = 65536, .level = 3 }) == 0);
    CHECK(snapfs_overlay_create(s, "img", path_in(dir, "ovl")) == 0);
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), &(struct snapfs_disk_opts){ .cache_bytes = 1 << 20, .ring_entries = 16 });
    CHECK(d);
    if (snapfs_aio_submit(d, &flush) == -ENOSYS) {
        printf("io_uring unavailable here\n");
        return 77;
    }
    wait_for(d, 1);
    /* A vectored write must be whole blocks. */
    struct iovec one = { slots[0].buf, 512 };
    struct snapfs_req bad = { .op = SNAPFS_OP_WRITE, .offset = 4096, .len = 512, .iov = &one,
                              .iovcnt = 1, .done = done };
    CHECK(snapfs_aio_submit(d, &bad) == -EINVAL);
    bad.offset = 512, bad.len = 4096, one.iov_len = 4096;
    CHECK(snapfs_aio_submit(d, &bad) == -EINVAL);
    bad.offset = 0, bad.len = 8192;
    CHECK(snapfs_aio_submit(d, &bad) == -EINVAL);   /* buffers hold 4096 */
    for (int i = 0; i < 20; i++)
        batch(d, slots, &st);
    check_sync(d, model);
    capture_under_load(s, d, slots, &st, dir);
    CHECK(snapfs_aio_inflight(d) == 0);
    flush.done = done;
    CHECK(snapfs_aio_submit(d, &flush) == 0);
    wait_for(d, completed + 1);
    snapfs_disk_close(d);

    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    CHECK(d);
    check_sync(d, model);
    snapfs_disk_close(d);
    snapfs_store_close(s);
    free(slots);
    if (lower != base)
        free(lower);
    free(base);
    free(model);
    tmpdir_remove(dir);
    return 0;
}
