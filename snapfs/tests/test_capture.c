/* Capture folds an overlay into a new image that shares unchanged chunks: the
 * store grows by about the changed data only; the overlay goes on, rebased. */
#include <string.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (8u * 1024 * 1024)
#define CHUNK (64u * 1024)

static void check_image(struct snapfs_store *s, const char *dir, const char *name,
                        const uint8_t *want)
{
    size_t len;
    uint8_t *got;
    CHECK(snapfs_export(s, name, NULL, path_in(dir, "out.raw")) == 0);
    got = read_raw(path_in(dir, "out.raw"), &len);
    CHECK(len == DISK && memcmp(got, want, DISK) == 0);
    free(got);
    CHECK(snapfs_verify(s, name, NULL, NULL) == 0);
}

static void write_some(struct snapfs_disk *d, uint8_t *model, uint32_t seed)
{
    uint8_t buf[256 * 1024];
    uint32_t st = seed;
    for (size_t k = 0; k < sizeof(buf); k++)
        buf[k] = (uint8_t)rnd(&st);          /* incompressible: growth is visible */
    CHECK(snapfs_pwrite(d, buf, sizeof(buf), 1024 * 1024) == 0);
    memcpy(model + 1024 * 1024, buf, sizeof(buf));
    for (int i = 0; i < 3; i++) {            /* three more chunks, 100 bytes each */
        uint64_t off = 4 * 1024 * 1024 + (uint64_t)i * 300 * 1024 + 77;
        CHECK(snapfs_pwrite(d, buf + i * 100, 100, off) == 0);
        memcpy(model + off, buf + i * 100, 100);
    }
}

int main(void)
{
    char *dir = tmpdir_make();
    uint8_t *model = malloc(DISK), *snap1 = malloc(DISK);
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct snapfs_image_info info;
    struct snapfs_disk *d;
    int64_t before, growth;
    CHECK(s && model && snap1);
    fill_disk(model, DISK, 5);
    write_raw(path_in(dir, "in.raw"), model, DISK);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "base", &(struct snapfs_import_opts){ .chunk_size = CHUNK, .level = 3 }) == 0);
    CHECK(snapfs_overlay_create(s, "base", path_in(dir, "ovl")) == 0);
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    CHECK(d);
    write_some(d, model, 1);

    before = snapfs_store_bytes(s);
    CHECK(snapfs_capture(d, "snap1", &(struct snapfs_import_opts){ .label = "first" }) == 0);
    growth = snapfs_store_bytes(s) - before;
    fprintf(stderr, "capture grew the store by %lld bytes\n", (long long)growth);
    /* 4 new 64 KiB chunks of random data + 3 text chunks + a manifest */
    CHECK(growth >= 256 * 1024 && growth < 256 * 1024 + 3 * CHUNK / 2 + 64 * 1024);
    CHECK(strcmp(snapfs_disk_image(d), "snap1") == 0);
    CHECK(snapfs_image_info(s, "snap1", &info) == 0);
    CHECK(strcmp(info.parent, "base") == 0 && strcmp(info.label, "first") == 0);
    memcpy(snap1, model, DISK);
    check_image(s, dir, "snap1", snap1);

    /* the sandbox goes on: write, flush, capture again; reopen after */
    write_some(d, model, 2);
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    CHECK(d && strcmp(snapfs_disk_image(d), "snap1") == 0);
    CHECK(snapfs_capture(d, "snap2", NULL) == 0);
    snapfs_disk_close(d);
    check_image(s, dir, "snap2", model);
    check_image(s, dir, "snap1", snap1);
    CHECK(snapfs_export(s, NULL, path_in(dir, "ovl"), path_in(dir, "o.raw")) == 0);
    CHECK(snapfs_overlay_verify(path_in(dir, "ovl"), NULL, NULL) == 0);

    /* capture with nothing written shares every chunk */
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    before = snapfs_store_bytes(s);
    CHECK(d && snapfs_capture(d, "snap3", NULL) == 0);
    CHECK(snapfs_store_bytes(s) - before < 32 * 1024);
    CHECK(snapfs_capture(d, "bad/name", NULL) < 0);
    snapfs_disk_close(d);
    d = snapfs_disk_open(s, "base", NULL, NULL);
    CHECK(d && snapfs_capture(d, "x", NULL) < 0);      /* no overlay */
    snapfs_disk_close(d);

    snapfs_store_close(s);
    free(model);
    free(snap1);
    tmpdir_remove(dir);
    return 0;
}
