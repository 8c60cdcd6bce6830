/* Read-after-write through an overlay at any offset and length, discard,
 * flush + reopen, many concurrent readers. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (3u * 1024 * 1024 + 512)

static uint8_t *model;

static void check_all(struct snapfs_disk *d)
{
    uint8_t *buf = malloc(DISK);
    CHECK(buf && snapfs_pread(d, buf, DISK, 0) == 0);
    CHECK(memcmp(buf, model, DISK) == 0);
    free(buf);
}

static void random_writes(struct snapfs_disk *d, const uint8_t *base, uint32_t seed, int n)
{
    uint8_t buf[40960], back[40960];
    uint32_t st = seed;
    for (int i = 0; i < n; i++) {
        size_t len = 1 + rnd(&st) % 40000;
        uint64_t off = rnd(&st) % (DISK - len + 1);
        if (i % 3 == 0) {                       /* block aligned */
            off &= ~4095ull;
            len = (len + 4095) & ~4095ul;
            if (off + len > DISK)
                len = DISK - off;
        }
        if (i % 17 == 0 && base) {              /* whole blocks revert to the image */
            uint64_t a = (off + 4095) & ~4095ull, b = (off + len) & ~4095ull;
            if (off + len == DISK)
                b = DISK;
            CHECK(snapfs_discard(d, len, off) == 0);
            if (b > a)
                memcpy(model + a, base + a, b - a);
            continue;
        }
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)(rnd(&st) % 4 ? (uint32_t)('a' + i % 26) : rnd(&st));
        CHECK(snapfs_pwrite(d, buf, len, off) == 0);
        memcpy(model + off, buf, len);
        CHECK(snapfs_pread(d, back, len, off) == 0 && memcmp(back, buf, len) == 0);
    }
}

struct reader { struct snapfs_disk *d; uint32_t seed; int ok; };

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint8_t buf[20000];
    r->ok = 1;
    for (int i = 0; i < 400; i++) {
        size_t len = 1 + rnd(&r->seed) % sizeof(buf);
        uint64_t off = rnd(&r->seed) % (DISK - len);
        if (snapfs_pread(r->d, buf, len, off) != 0 || memcmp(buf, model + off, len) != 0)
            r->ok = 0;
    }
    return NULL;
}

static void concurrent_reads(struct snapfs_disk *d)
{
    pthread_t t[6];
    struct reader r[6];
    for (int i = 0; i < 6; i++) {
        r[i] = (struct reader){ .d = d, .seed = 100 + i };
        CHECK(pthread_create(&t[i], NULL, reader_main, &r[i]) == 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        CHECK(r[i].ok);
    }
}

int main(void)
{
    char *dir = tmpdir_make();
    uint8_t *base = malloc(DISK);
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct snapfs_disk_opts small = { .cache_bytes = 512 * 1024 };
    struct snapfs_disk *d;
    model = malloc(DISK);
    CHECK(s && base && model);
    fill_disk(base, DISK, 9);
    memcpy(model, base, DISK);
    write_raw(path_in(dir, "in.raw"), base, DISK);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "img", &(struct snapfs_import_opts){ .chunk_size = 65536, .level = 3 }) == 0);
    CHECK(snapfs_overlay_create(s, "img", path_in(dir, "ovl")) == 0);
    CHECK(snapfs_overlay_create(s, "img", path_in(dir, "ovl")) < 0);   /* exists */

    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), &small);
    CHECK(d && strcmp(snapfs_disk_image(d), "img") == 0);
    CHECK(snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL) == NULL && errno == EBUSY);
    check_all(d);
    random_writes(d, base, 1, 300);
    check_all(d);
    concurrent_reads(d);
    CHECK(snapfs_pwrite(d, base, 2, DISK - 1) == -EINVAL);
    CHECK(snapfs_pwrite(d, base, 512, DISK - 512) == 0);      /* last, short block */
    memcpy(model + DISK - 512, base, 512);
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);

    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), &small);
    CHECK(d);
    check_all(d);
    random_writes(d, base, 2, 100);
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    CHECK(d);
    check_all(d);
    snapfs_disk_close(d);
    CHECK(snapfs_overlay_verify(path_in(dir, "ovl"), NULL, NULL) == 0);

    snapfs_store_close(s);
    free(base);
    free(model);
    tmpdir_remove(dir);
    return 0;
}
