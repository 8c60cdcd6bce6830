/* kill -9 at random points of write+flush, capture and import, then check:
 * every image verifies, and every flushed overlay write is there. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (1024u * 1024)
#define NBLK 64                        /* blocks the child writes */
#define ROUNDS 15

static uint8_t base[DISK];
static int64_t expect[NBLK];           /* last generation seen in block b; -1: base */
static char *dir;

static void pattern(uint8_t *blk, int64_t k)
{
    memset(blk, (int)(k * 7 + 1), 4096);
    memcpy(blk, &k, sizeof(k));
}

static void child(int ackfd, int64_t k)
{
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 0);
    struct snapfs_disk *d = s ? snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL) : NULL;
    uint8_t blk[4096];
    char name[32];
    time_t stop = time(NULL) + 20;
    if (!d)
        _exit(3);
    for (; time(NULL) < stop; k++) {
        pattern(blk, k);
        if (snapfs_pwrite(d, blk, 4096, (uint64_t)(k % NBLK) * 4096) < 0 || snapfs_flush(d) < 0)
            _exit(4);
        if (write(ackfd, &k, sizeof(k)) != sizeof(k))
            _exit(5);
        snprintf(name, sizeof(name), "cap-%lld", (long long)k);
        if (k % 5 == 0 && snapfs_capture(d, name, NULL) < 0)
            _exit(6);
        if (k % 7 == 0 && snapfs_import(s, path_in(dir, "in.raw"), "imported", &(struct snapfs_import_opts){ .level = 3 }) < 0)
            _exit(7);
    }
    _exit(0);
}

/* Runs a child, kills it after a while; returns the last acknowledged k. */
static int64_t run_child(int64_t k0, uint32_t *st)
{
    int fds[2], status;
    int64_t k, last = -1;
    pid_t pid;
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], k0);
    }
    close(fds[1]);
    usleep(5000 + rnd(st) % 150000);
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);  /* not an early failure */
    while (read(fds[0], &k, sizeof(k)) == sizeof(k))
        last = k;
    close(fds[0]);
    return last;
}

static void report(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "verify: %s\n", msg);
}

static void check_store(struct snapfs_store *s)
{
    struct snapfs_image_info *all;
    int n = snapfs_list(s, &all);
    CHECK(n >= 1);
    for (int i = 0; i < n; i++)
        CHECK(snapfs_verify(s, all[i].name, report, NULL) == 0);
    free(all);
}

/* Each block holds its last acknowledged generation, or generation maybe if
 * that write was in flight when the child died. */
static void check_overlay(struct snapfs_store *s, int64_t last_ack, int64_t maybe)
{
    struct snapfs_disk *d = snapfs_disk_open(s, NULL, path_in(dir, "ovl"), NULL);
    uint8_t blk[4096], want[4096];
    CHECK(d);
    for (int b = 0; b < NBLK; b++) {
        int64_t k;
        CHECK(snapfs_pread(d, blk, 4096, (uint64_t)b * 4096) == 0);
        memcpy(&k, blk, sizeof(k));
        if (expect[b] < 0 && memcmp(blk, base + b * 4096, 4096) == 0)
            continue;
        pattern(want, k);
        if (memcmp(blk, want, 4096) != 0 || !(k == expect[b] || (k == maybe && k % NBLK == b) ||
              (k > expect[b] && k <= last_ack && k % NBLK == b)))
            fprintf(stderr, "block %d holds %lld (torn %d), expected %lld, last ack %lld\n", b,
                    (long long)k, memcmp(blk, want, 4096) != 0, (long long)expect[b],
                    (long long)last_ack);
        CHECK(memcmp(blk, want, 4096) == 0);                   /* not torn */
        CHECK(k == expect[b] || (k == maybe && k % NBLK == b) ||
              (k > expect[b] && k <= last_ack && k % NBLK == b));
        expect[b] = k;
    }
    for (int b = 0; b < NBLK; b++)                               /* acked writes are there */
        CHECK(last_ack < 0 || last_ack % NBLK != b || expect[b] >= last_ack);
    snapfs_disk_close(d);
}

int main(void)
{
    struct snapfs_store *s;
    uint32_t st = (uint32_t)time(NULL) | 1;
    int64_t k = 0, acked = -1;
    uint64_t freed;
    dir = tmpdir_make();
    s = snapfs_store_open(path_in(dir, "store"), 1);
    CHECK(s);
    fill_disk(base, DISK, 1);
    write_raw(path_in(dir, "in.raw"), base, DISK);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "base", &(struct snapfs_import_opts){ .chunk_size = 65536, .level = 3 }) == 0);
    CHECK(snapfs_overlay_create(s, "base", path_in(dir, "ovl")) == 0);
    for (int b = 0; b < NBLK; b++)
        expect[b] = -1;
    fprintf(stderr, "seed %u\n", st);
    for (int round = 0; round < ROUNDS; round++) {
        int64_t last = run_child(k, &st), maybe = last >= 0 ? last + 1 : k;
        if (last >= 0)
            acked = last;
        check_store(s);
        check_overlay(s, acked, maybe);
        k = (acked > k ? acked : k) + 2;                 /* skip the maybe-written one */
    }
    CHECK(snapfs_gc(s, &freed) == 0);
    check_store(s);
    check_overlay(s, acked, -1);
    CHECK(snapfs_overlay_verify(path_in(dir, "ovl"), report, NULL) == 0);
    fprintf(stderr, "last acknowledged write %lld\n", (long long)acked);
    snapfs_store_close(s);
    tmpdir_remove(dir);
    return 0;
}
