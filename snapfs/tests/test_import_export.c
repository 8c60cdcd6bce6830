/* Import then export gives the input back byte for byte; identical chunks are
 * stored once; image metadata survives; bad input gets a clear error. */
#include <errno.h>
#include <string.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (4u * 1024 * 1024 + 3 * 512)

static void roundtrip(struct snapfs_store *s, const char *dir, const uint8_t *disk,
                      const char *name, uint32_t chunk)
{
    struct snapfs_import_opts o = { .chunk_size = chunk, .label = "test image", .level = 3 };
    size_t len;
    uint8_t *back;
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), name, &o) == 0);
    CHECK(snapfs_export(s, name, NULL, path_in(dir, "out.raw")) == 0);
    back = read_raw(path_in(dir, "out.raw"), &len);
    CHECK(len == DISK && memcmp(back, disk, DISK) == 0);
    free(back);
}

static void random_reads(struct snapfs_store *s, const uint8_t *disk)
{
    struct snapfs_disk *d = snapfs_disk_open(s, "a", NULL, &(struct snapfs_disk_opts){ .cache_bytes = 256 * 1024 });
    uint8_t buf[70000];
    uint32_t st = 7;
    CHECK(d && snapfs_disk_size(d) == DISK);
    for (int i = 0; i < 500; i++) {
        size_t len = rnd(&st) % sizeof(buf);
        uint64_t off = rnd(&st) % (DISK - len);
        CHECK(snapfs_pread(d, buf, len, off) == 0);
        CHECK(memcmp(buf, disk + off, len) == 0);
    }
    CHECK(snapfs_pread(d, buf, 2, DISK - 1) == -EINVAL);
    CHECK(snapfs_pwrite(d, buf, 1, 0) == -EROFS);
    snapfs_disk_close(d);
}

int main(void)
{
    char *dir = tmpdir_make();
    uint8_t *disk = malloc(DISK);
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct snapfs_image_info info, *all;
    int64_t before;
    CHECK(s && disk);
    fill_disk(disk, DISK, 42);
    memset(disk + 1024 * 1024, 0, 256 * 1024);
    write_raw(path_in(dir, "in.raw"), disk, DISK);

    roundtrip(s, dir, disk, "a", 64 * 1024);
    CHECK(snapfs_image_info(s, "a", &info) == 0);
    CHECK(info.virtual_size == DISK && info.chunk_size == 64 * 1024 && info.nchunks == 65);
    CHECK(strcmp(info.label, "test image") == 0 && info.zero_chunks > 0);
    CHECK(info.stored_bytes < DISK / 2);

    before = snapfs_store_bytes(s);
    roundtrip(s, dir, disk, "b", 64 * 1024);          /* same content: no new chunks */
    CHECK(snapfs_store_bytes(s) - before < 16 * 1024);
    roundtrip(s, dir, disk, "c", 0);                   /* default chunk size */
    roundtrip(s, dir, disk, "d", 4096);
    CHECK(snapfs_list(s, &all) == 4 && strcmp(all[0].name, "a") == 0);
    free(all);
    random_reads(s, disk);

    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "../x", NULL) == -EINVAL);
    CHECK(strstr(snapfs_error(), "bad image name"));
    write_raw(path_in(dir, "odd.raw"), disk, 1000);
    CHECK(snapfs_import(s, path_in(dir, "odd.raw"), "odd", NULL) == -EINVAL);
    CHECK(strstr(snapfs_error(), "multiple of 512"));
    CHECK(snapfs_import(s, path_in(dir, "missing.raw"), "m", NULL) == -ENOENT);
    CHECK(snapfs_image_info(s, "nope", &info) == -ENOENT);
    CHECK(strstr(snapfs_error(), "nope"));
    CHECK(snapfs_rm(s, "b") == 0 && snapfs_image_info(s, "b", &info) == -ENOENT);

    snapfs_store_close(s);
    free(disk);
    tmpdir_remove(dir);
    return 0;
}
