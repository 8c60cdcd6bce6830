/* Shared helpers of the snapfs unit tests. */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../snapfs.h"
#include "helpers.h"

char *tmpdir_make(void)
{
    const char *base = getenv("TMPDIR");
    char *p;
    if (asprintf(&p, "%s/snapfs-test-XXXXXX", base && base[0] ? base : "/tmp") < 0 || !mkdtemp(p)) {
        perror("mkdtemp");
        exit(1);
    }
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void tmpdir_remove(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

const char *path_in(const char *dir, const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

void fill_disk(uint8_t *buf, size_t len, uint32_t seed)
{
    static const char *words[] = { "sandbox ", "kernel ", "chunk ", "zstd ", "overlay ",
                                   "image ", "ext4 ", "inode ", "\n", "0123 " };
    uint32_t s = seed | 1;
    size_t i = 0;
    while (i < len) {
        uint32_t kind = rnd(&s) % 16, run = 4096 + rnd(&s) % 65536;
        if (run > len - i)
            run = len - i;
        if (kind < 3) {
            memset(buf + i, 0, run);                         /* holes */
        } else if (kind < 5 && i >= run) {
            memmove(buf + i, buf + i - run, run);            /* repeats */
        } else if (kind < 6) {
            for (uint32_t k = 0; k < run; k++)
                buf[i + k] = (uint8_t)rnd(&s);              /* incompressible */
        } else {
            for (uint32_t k = 0; k < run;) {
                const char *w = words[rnd(&s) % 10];
                while (*w && k < run)
                    buf[i + k++] = (uint8_t)*w++;
            }
        }
        i += run;
    }
}

void write_raw(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

uint8_t *read_raw(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0) {
        perror(path);
        exit(1);
    }
    rewind(f);
    buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != (size_t)n) {
        perror(path);
        exit(1);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int64_t du_total;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (flag == FTW_F)
        du_total += (int64_t)st->st_blocks * 512;
    return 0;
}

int64_t du_bytes(const char *dir)
{
    du_total = 0;
    nftw(dir, du_one, 16, FTW_PHYS);
    return du_total;
}

static int aio_result;
static bool aio_done;

static void aio_cb(struct snapfs_req *req, int result)
{
    (void)req;
    aio_result = result;
    aio_done = true;
}

int aio_run_one(struct snapfs_disk *d, enum snapfs_op op, void *buf, size_t len, uint64_t off)
{
    struct snapfs_req req = { .op = op, .buf = buf, .len = len, .offset = off, .done = aio_cb };
    int rc;

    aio_done = false;
    rc = snapfs_aio_submit(d, &req);
    if (rc < 0)
        return rc;
    while (!aio_done) {
        struct pollfd p = { .fd = snapfs_aio_fd(d), .events = POLLIN };
        CHECK(poll(&p, 1, 10000) == 1);
        CHECK(snapfs_aio_process(d) >= 0);
    }
    return aio_result;
}
