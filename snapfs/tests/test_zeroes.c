/* snapfs_write_zeroes and SNAPFS_OP_WRITE_ZEROES on an overlay larger than
 * its image: ranges aligned, unaligned at both ends, inside one block,
 * across the image's end, wholly past it, to the disk's end; every byte
 * reads back as the model (zeros there, the old data around), synchronously
 * and through io_uring, after flush and reopen, and during a capture. A large
 * zeroed range past the image costs the overlay no allocated blocks. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../snapfs.h"
#include "helpers.h"

#define CHUNK (64u * 1024)
#define KiB 1024u
#define MiB (1024u * 1024)

static uint8_t *model;
static uint64_t disk_size, base_size;
static uint32_t seed = 777;
static bool use_aio;
static const char *ovl;      /* the overlay directory's name in the test's directory */

/* The whole disk, synchronously and (where there is a ring) through it. */
static void check_all(struct snapfs_disk *d)
{
    uint8_t *buf = malloc(disk_size);
    CHECK(buf && snapfs_pread(d, buf, disk_size, 0) == 0);
    CHECK(memcmp(buf, model, disk_size) == 0);
    if (snapfs_aio_available(d)) {
        memset(buf, 0xa5, disk_size);
        CHECK(aio_run_one(d, SNAPFS_OP_READ, buf, disk_size, 0) == 0);
        CHECK(memcmp(buf, model, disk_size) == 0);
    }
    free(buf);
}

static void write_at(struct snapfs_disk *d, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    CHECK(buf);
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(rnd(&seed) | 1);
    CHECK(snapfs_pwrite(d, buf, len, off) == 0);
    memcpy(model + off, buf, len);
    free(buf);
}

static int zero_raw(struct snapfs_disk *d, uint64_t off, uint64_t len)
{
    return use_aio ? aio_run_one(d, SNAPFS_OP_WRITE_ZEROES, NULL, len, off)
                   : snapfs_write_zeroes(d, len, off);
}

/* Zeroes [off, off + len) and checks the whole disk. */
static void zero_at(struct snapfs_disk *d, uint64_t off, uint64_t len)
{
    CHECK(zero_raw(d, off, len) == 0);
    memset(model + off, 0, len);
    check_all(d);
}

static int64_t data_blocks(const char *dir, unsigned gen)
{
    char name[64];
    struct stat st;
    snprintf(name, sizeof(name), "%s/data.%u", ovl, gen);
    CHECK(stat(path_in(dir, name), &st) == 0);
    return (int64_t)st.st_blocks;
}

static void ranges(struct snapfs_disk *d, const char *dir)
{
    uint64_t past = (base_size + 2 * MiB) & ~4095ull;
    int64_t before;
    uint8_t one;

    write_at(d, 256 * KiB, 768 * KiB);
    zero_at(d, 320 * KiB, 256 * KiB);                     /* aligned, written blocks */
    zero_at(d, 600 * KiB + 1000, 50000);                  /* unaligned ends, written */
    zero_at(d, 100 * KiB + 700, 30000);                   /* unaligned ends, image only */
    zero_at(d, 40 * KiB + 100, 200);                      /* inside one block */
    zero_at(d, 44 * KiB + 4000, 200);                     /* two partial blocks, no whole */
    zero_at(d, 128 * KiB, CHUNK);                         /* a whole chunk of the image */
    write_at(d, base_size - 100 * KiB, 200 * KiB);        /* across the image's end */
    zero_at(d, base_size - 50000 + 3, 100001);
    zero_at(d, base_size - 4096 - 512, 4096 + 1024);
    /* Wholly past the image: written data is dropped, unwritten costs nothing. */
    write_at(d, past, 512 * KiB);
    CHECK(snapfs_flush(d) == 0);
    before = data_blocks(dir, 1);
    zero_at(d, past, 512 * KiB);
    CHECK(data_blocks(dir, 1) <= before - (int64_t)(512 * KiB / 512));
    before = data_blocks(dir, 1);
    zero_at(d, past + MiB, (disk_size - past - MiB - 8192) & ~4095ull);
    CHECK(data_blocks(dir, 1) <= before);
    write_at(d, disk_size - 20000, 20000);
    zero_at(d, disk_size - 10000, 10000);                 /* to the disk's end */
    zero_at(d, 0, 0);
    CHECK(zero_raw(d, disk_size - 512, 1024) == -EINVAL);
    CHECK(zero_raw(d, 4096, UINT64_MAX - 100) == -EINVAL);
    CHECK(snapfs_pread(d, &one, 1, disk_size - 1) == 0 && one == 0);
}

/* Zeroes blocks past the image that only the generation being captured
 * holds: they must read as zeros, not as the frozen data. */
static void during_capture(struct snapfs_disk *d, const char *name)
{
    uint64_t at = (base_size + 3 * MiB) & ~4095ull;
    int rc;
    write_at(d, at, 256 * KiB);
    CHECK(snapfs_flush(d) == 0);
    CHECK(snapfs_capture_start(d, name, NULL) == 0);
    zero_at(d, at + 4096, 128 * KiB);
    while ((rc = snapfs_capture_poll(d)) == 1)
        usleep(1000);
    CHECK(rc == 0);
    check_all(d);
    zero_at(d, at + 200 * KiB, 16 * KiB);                 /* on the captured image */
}

static void mode(struct snapfs_store *s, const char *dir, bool aio)
{
    struct snapfs_disk *d;
    use_aio = aio;
    ovl = aio ? "ovl-aio" : "ovl-sync";
    model = calloc(1, disk_size);
    CHECK(model);
    fill_disk(model, base_size, 7);
    memset(model + 128 * KiB, 0, CHUNK);                  /* as the image */
    CHECK(snapfs_overlay_create_sized(s, "img", path_in(dir, ovl), disk_size) == 0);
    d = snapfs_disk_open(s, NULL, path_in(dir, ovl), NULL);
    CHECK(d);
    if (aio && !snapfs_aio_available(d)) {
        printf("io_uring unavailable here: asynchronous checks skipped\n");
        goto out;
    }
    check_all(d);
    ranges(d, dir);
    CHECK(use_aio ? aio_run_one(d, SNAPFS_OP_FLUSH, NULL, 0, 0) == 0 : snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    CHECK(snapfs_overlay_verify(path_in(dir, ovl), NULL, NULL) == 0);
    d = snapfs_disk_open(s, NULL, path_in(dir, ovl), NULL);
    CHECK(d);
    check_all(d);                                         /* durable */
    during_capture(d, aio ? "cap-aio" : "cap-sync");
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    d = snapfs_disk_open(s, NULL, path_in(dir, ovl), NULL);
    CHECK(d);
    check_all(d);
out:
    snapfs_disk_close(d);
    free(model);
}

static void read_only(struct snapfs_store *s)
{
    struct snapfs_disk *d = snapfs_disk_open(s, "img", NULL, NULL);
    CHECK(d);
    CHECK(snapfs_write_zeroes(d, 4096, 0) == -EROFS);
    if (snapfs_aio_available(d))
        CHECK(aio_run_one(d, SNAPFS_OP_WRITE_ZEROES, NULL, 4096, 0) == -EROFS);
    snapfs_disk_close(d);
}

static void scenario(uint64_t base, uint64_t grown)
{
    char *dir = tmpdir_make();
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    uint8_t *img = calloc(1, base);
    CHECK(s && img);
    fprintf(stderr, "image of %llu bytes, overlay of %llu\n", (unsigned long long)base,
            (unsigned long long)grown);
    base_size = base, disk_size = grown;
    fill_disk(img, base, 7);
    memset(img + 128 * KiB, 0, CHUNK);                    /* an all-zero chunk */
    write_raw(path_in(dir, "in.raw"), img, base);
    free(img);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "img",
                        &(struct snapfs_import_opts){ .chunk_size = CHUNK, .level = 3 }) == 0);
    read_only(s);
    mode(s, dir, false);
    mode(s, dir, true);
    snapfs_store_close(s);
    tmpdir_remove(dir);
}

int main(void)
{
    scenario(8 * MiB, 24 * MiB);
    /* An image ending inside a chunk and a block, on a disk that does too. */
    scenario(MiB + 512, 6 * MiB + 1536);
    printf("test_zeroes: ok\n");
    return 0;
}
