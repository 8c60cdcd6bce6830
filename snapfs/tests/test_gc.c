/* gc frees the chunks of removed images and nothing that is still used. */
#include <errno.h>
#include <string.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (2u * 1024 * 1024)

int main(void)
{
    char *dir = tmpdir_make();
    uint8_t *a = malloc(DISK), *b = malloc(DISK), *back;
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct snapfs_import_opts o = { .chunk_size = 32 * 1024, .level = 3 };
    uint64_t freed = 0;
    int64_t full, after;
    size_t len;
    uint32_t st = 3;
    CHECK(s && a && b);
    for (size_t i = 0; i < DISK; i++)
        a[i] = (uint8_t)rnd(&st);
    memcpy(b, a, DISK);
    memset(b + DISK / 2, 'x', DISK / 2);        /* b shares a's first half */
    write_raw(path_in(dir, "a.raw"), a, DISK);
    write_raw(path_in(dir, "b.raw"), b, DISK);
    CHECK(snapfs_import(s, path_in(dir, "a.raw"), "a", &o) == 0);
    CHECK(snapfs_import(s, path_in(dir, "b.raw"), "b", &o) == 0);

    CHECK(snapfs_gc(s, &freed) == 0 && freed == 0);   /* all in use */
    full = snapfs_store_bytes(s);
    CHECK(snapfs_rm(s, "a") == 0);
    CHECK(snapfs_rm(s, "a") == -ENOENT);
    CHECK(snapfs_gc(s, &freed) == 0);
    after = snapfs_store_bytes(s);
    fprintf(stderr, "store %lld -> %lld bytes, freed %llu\n", (long long)full,
            (long long)after, (unsigned long long)freed);
    CHECK(freed >= DISK / 2 - 64 * 1024 && after <= full - (int64_t)DISK / 2 + 64 * 1024);
    CHECK(snapfs_verify(s, "b", NULL, NULL) == 0);
    CHECK(snapfs_export(s, "b", NULL, path_in(dir, "out.raw")) == 0);
    back = read_raw(path_in(dir, "out.raw"), &len);
    CHECK(len == DISK && memcmp(back, b, DISK) == 0);
    free(back);

    /* an unreadable manifest stops gc: its chunks might be live */
    write_raw(path_in(dir, "store/images/junk"), (const uint8_t *)"garbage", 7);
    CHECK(snapfs_gc(s, &freed) < 0 && strstr(snapfs_error(), "junk"));
    CHECK(snapfs_rm(s, "b") == 0 && snapfs_rm(s, "junk") == 0);
    CHECK(snapfs_gc(s, &freed) == 0);
    CHECK(snapfs_store_bytes(s) < 16 * 1024);

    snapfs_store_close(s);
    free(a);
    free(b);
    tmpdir_remove(dir);
    return 0;
}
