/* An overlay larger than its image (a sandbox disk bigger than its snapshot):
 * the size is checked at creation and reported; bytes past the image read as
 * zeros, synchronously and through io_uring, until written; writes across and
 * past the image's end, discards, flush + reopen; a capture is an image of
 * the overlay's size; a head smaller than its base is refused. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../internal.h"
#include "helpers.h"

#define CHUNK (64u * 1024)
#define MiB (1024u * 1024)

static uint8_t *model;
static uint64_t disk_size;
static uint32_t seed = 12345;

static void check_all(struct snapfs_disk *d)
{
    uint8_t *buf = malloc(disk_size);
    CHECK(buf && snapfs_pread(d, buf, disk_size, 0) == 0);
    CHECK(memcmp(buf, model, disk_size) == 0);
    free(buf);
}

static void check_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        CHECK(buf[i] == 0);
}

/* Writes len random bytes at off and reads them back. */
static void write_at(struct snapfs_disk *d, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len), *back = malloc(len);
    CHECK(buf && back);
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)rnd(&seed);
    CHECK(snapfs_pwrite(d, buf, len, off) == 0);
    memcpy(model + off, buf, len);
    CHECK(snapfs_pread(d, back, len, off) == 0 && memcmp(back, buf, len) == 0);
    free(buf);
    free(back);
}

static void sync_io(struct snapfs_disk *d, uint64_t base_size)
{
    uint8_t buf[4096];
    uint64_t mid = (base_size + (disk_size - base_size) / 2) & ~4095ull;
    uint64_t late = (base_size + (disk_size - base_size) * 3 / 4) & ~4095ull;
    CHECK(snapfs_pread(d, buf, sizeof(buf), base_size) == 0);    /* zeros past the image */
    check_zero(buf, sizeof(buf));
    write_at(d, mid, 100 * 1024);                  /* far past the image, aligned */
    write_at(d, base_size - 3000, 10000);          /* across the image's end */
    write_at(d, base_size + 1000, 100);            /* part of a block just past it */
    write_at(d, disk_size - 512, 512);             /* the disk's last bytes */
    write_at(d, late, 8192);
    CHECK(snapfs_discard(d, 4096, late) == 0);     /* reads as the (zero) image again */
    memset(model + late, 0, 4096);
    CHECK(snapfs_pread(d, buf, sizeof(buf), late) == 0);
    check_zero(buf, sizeof(buf));
    CHECK(snapfs_pwrite(d, buf, 2, disk_size - 1) == -EINVAL);
    CHECK(snapfs_pread(d, buf, 1, disk_size) == -EINVAL);
    check_all(d);
}

static void aio_read_check(struct snapfs_disk *d, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    CHECK(buf);
    memset(buf, 0xa5, len);
    CHECK(aio_run_one(d, SNAPFS_OP_READ, buf, len, off) == 0);
    CHECK(memcmp(buf, model + off, len) == 0);
    free(buf);
}

static void aio_write(struct snapfs_disk *d, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    uint64_t start, end;
    CHECK(buf);
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)rnd(&seed);
    CHECK(aio_run_one(d, SNAPFS_OP_WRITE, buf, len, off) == 0);
    memcpy(model + off, buf, len);
    free(buf);
    start = off & ~4095ull;                        /* the blocks it touched, whole */
    end = (off + len + 4095) & ~4095ull;
    aio_read_check(d, start, (end < disk_size ? end : disk_size) - start);
}

/* Reads past and across the image's end through io_uring, before and after
 * writes there (merged partial blocks, whole blocks, across the end). */
static void async_io(struct snapfs_disk *d, uint64_t base_size)
{
    uint64_t fresh = (base_size + 300 * 1024) & ~4095ull;   /* nothing written there yet */
    uint8_t buf[1];
    if (!snapfs_aio_available(d)) {
        printf("io_uring unavailable here: asynchronous checks skipped\n");
        return;
    }
    aio_read_check(d, fresh, 200 * 1024);
    aio_read_check(d, base_size - 5000, 20000);
    aio_read_check(d, disk_size - 30000, 30000);
    aio_write(d, base_size + 40000, 777);          /* merged with zeros */
    aio_write(d, fresh + 4096, 8192);              /* whole blocks */
    aio_write(d, base_size - 200, 700);            /* across the image's end */
    aio_write(d, fresh + 65536 + 10, 5000);        /* two partial blocks */
    CHECK(aio_run_one(d, SNAPFS_OP_DISCARD, NULL, 8192, fresh + 4096) == 0);
    memset(model + fresh + 4096, 0, 8192);
    aio_read_check(d, fresh, 200 * 1024);
    aio_read_check(d, base_size - 70000, 140000);
    CHECK(aio_run_one(d, SNAPFS_OP_FLUSH, NULL, 0, 0) == 0);
    CHECK(aio_run_one(d, SNAPFS_OP_READ, buf, 1, disk_size) == -EINVAL);
}

static void check_export(struct snapfs_store *s, const char *dir, const char *name,
                         const char *ovl)
{
    size_t len;
    uint8_t *got;
    CHECK(snapfs_export(s, name, ovl, path_in(dir, "out.raw")) == 0);
    got = read_raw(path_in(dir, "out.raw"), &len);
    CHECK(len == disk_size && memcmp(got, model, disk_size) == 0);
    free(got);
}

static void refused_sizes(struct snapfs_store *s, const char *dir, const char *img,
                          uint64_t base_size)
{
    struct snapfs_disk *d;
    struct stat st;
    CHECK(snapfs_overlay_create_sized(s, img, path_in(dir, "bad"), base_size - 512) == -EINVAL);
    CHECK(strstr(snapfs_error(), "multiple of 512"));
    CHECK(snapfs_overlay_create_sized(s, img, path_in(dir, "bad"), base_size + 100) == -EINVAL);
    CHECK(snapfs_overlay_create_sized(s, img, path_in(dir, "bad"),
                                      (uint64_t)MAX_CHUNKS * CHUNK + 512) == -EINVAL);
    CHECK(stat(path_in(dir, "bad"), &st) < 0 && errno == ENOENT);
    /* 0 and the image's own size: an ordinary overlay. */
    CHECK(snapfs_overlay_create_sized(s, img, path_in(dir, "same0"), 0) == 0);
    CHECK(snapfs_overlay_create_sized(s, img, path_in(dir, "same"), base_size) == 0);
    d = snapfs_disk_open(s, NULL, path_in(dir, "same0"), NULL);
    CHECK(d && snapfs_disk_size(d) == base_size);
    snapfs_disk_close(d);
    d = snapfs_disk_open(s, NULL, path_in(dir, "same"), NULL);
    CHECK(d && snapfs_disk_size(d) == base_size);
    snapfs_disk_close(d);
}

/* Rewrites the head of ovl with a virtual size smaller than its base's. */
static void shrink_head(const char *ovl, uint64_t size)
{
    char path[600];
    size_t len;
    uint8_t *buf;
    struct ovl_head h;
    snprintf(path, sizeof(path), "%s/head", ovl);
    buf = read_raw(path, &len);
    CHECK(len == OVL_HEAD_SIZE && ovl_head_parse(buf, len, &h, NULL) == OVL_HEAD_SIZE);
    h.virtual_size = size;
    ovl_head_encode(&h, buf);
    write_raw(path, buf, len);
    free(buf);
}

static void scenario(const char *dir, uint64_t base_size, uint64_t grown)
{
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct snapfs_image_info before, after;
    struct snapfs_disk *d;
    int64_t bytes0, growth;
    fprintf(stderr, "image of %llu bytes, overlay of %llu\n", (unsigned long long)base_size,
            (unsigned long long)grown);
    disk_size = grown;
    model = calloc(1, grown);
    CHECK(s && model);
    fill_disk(model, base_size, 7);
    write_raw(path_in(dir, "in.raw"), model, base_size);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "img",
                        &(struct snapfs_import_opts){ .chunk_size = CHUNK, .level = 3 }) == 0);
    refused_sizes(s, dir, "img", base_size);

    CHECK(snapfs_overlay_create_sized(s, "img", path_in(dir, "ovl"), grown) == 0);
    CHECK(snapfs_overlay_verify(path_in(dir, "ovl"), NULL, NULL) == 0);
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), &(struct snapfs_disk_opts){ .cache_bytes = 256 * 1024 });
    CHECK(d && snapfs_disk_size(d) == grown);
    check_all(d);                                  /* image, then zeros */
    sync_io(d, base_size);
    async_io(d, base_size);
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    CHECK(snapfs_overlay_verify(path_in(dir, "ovl"), NULL, NULL) == 0);
    check_export(s, dir, NULL, path_in(dir, "ovl"));

    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    CHECK(d && snapfs_disk_size(d) == grown);
    check_all(d);

    /* Capture: an image of the overlay's size sharing the unchanged chunks. */
    bytes0 = snapfs_store_bytes(s);
    CHECK(snapfs_capture(d, "grown", NULL) == 0);
    growth = snapfs_store_bytes(s) - bytes0;
    CHECK(snapfs_image_info(s, "img", &before) == 0);
    CHECK(snapfs_image_info(s, "grown", &after) == 0);
    fprintf(stderr, "capture grew the store by %lld bytes (image stores %llu)\n",
            (long long)growth, (unsigned long long)before.stored_bytes);
    CHECK(after.virtual_size == grown && after.chunk_size == CHUNK);
    CHECK(after.nchunks == (grown + CHUNK - 1) / CHUNK && strcmp(after.parent, "img") == 0);
    CHECK(growth < 600 * 1024);                    /* only the written chunks are new */
    CHECK(snapfs_verify(s, "grown", NULL, NULL) == 0);
    check_export(s, dir, "grown", NULL);
    CHECK(snapfs_disk_size(d) == grown && strcmp(snapfs_disk_image(d), "grown") == 0);
    check_all(d);
    write_at(d, base_size + 12345, 3000);          /* goes on, on the new image */
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    CHECK(d && snapfs_disk_size(d) == grown);
    check_all(d);
    snapfs_disk_close(d);
    check_export(s, dir, NULL, path_in(dir, "ovl"));

    /* A head smaller than its base is corrupt. */
    shrink_head(path_in(dir, "ovl"), base_size);
    CHECK(snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL) == NULL && errno == EIO);
    CHECK(strstr(snapfs_error(), "virtual size"));

    snapfs_store_close(s);
    free(model);
}

int main(void)
{
    char *dir = tmpdir_make();
    scenario(dir, 8 * MiB, 20 * MiB);
    tmpdir_remove(dir);
    /* An image ending inside a chunk and a block, grown to a disk that does. */
    dir = tmpdir_make();
    scenario(dir, MiB + 512, 3 * MiB + 1536);
    tmpdir_remove(dir);
    return 0;
}
