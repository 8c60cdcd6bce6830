/* snapfs-bench: the measuring half of bench/snapfs/run. Each subcommand
 * prints one "key value" line per figure.
 *   offsets RAW N SEED OUT            N random 4 KiB offsets of non-zero blocks
 *   dropcache PATH...                 drop the page cache of files (dirs: recursive)
 *   raw-read RAW OFFS                 cold then warm random 4 KiB read IOPS
 *   snapfs-read STORE NAME OFFS       same through libsnapfs (sync API)
 *   snapfs-aio-read STORE NAME OFFS   same, io_uring API, 32 requests in flight
 *   raw-seq RAW / snapfs-seq STORE NAME   cold sequential MB/s, 1 MiB reads
 *   raw-write RAW OFFS / snapfs-write STORE OVL OFFS   4 KiB write+flush IOPS
 *   capture STORE OVL NAME BYTES      write BYTES (the disk's bytes changed),
 *                                     then time snapfs_capture */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../snapfs/snapfs.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* CPU time of the process, all threads, user + system. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "snapfs-bench: %s: %s\n", what, snapfs_error()[0] ? snapfs_error() : strerror(errno));
    exit(1);
}

/* Cold figures time the first COLD_N reads after the page cache is dropped
 * (and, for snapfs, with an empty chunk cache): each is likely a miss. Warm
 * figures time all the reads once every one has been done before. */
static size_t cold_n(size_t n)
{
    const char *e = getenv("COLD_N");
    size_t c = e ? strtoul(e, NULL, 10) : 1000;
    return c < n ? c : n;
}

static uint64_t *load_offsets(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    uint64_t *v = NULL, x;
    size_t cap = 0;
    *n = 0;
    if (!f)
        die(path);
    while (fscanf(f, "%lu", &x) == 1) {
        if (*n == cap && !(v = realloc(v, (cap = cap ? cap * 2 : 1024) * sizeof(*v))))
            die("realloc");
        v[(*n)++] = x;
    }
    fclose(f);
    return v;
}

static int cmd_offsets(const char *raw, long n, unsigned seed, const char *out)
{
    int fd = open(raw, O_RDONLY);
    struct stat st;
    uint64_t *blocks = NULL, nb = 0;
    static uint8_t buf[1 << 20];
    FILE *f = fopen(out, "w");
    if (fd < 0 || fstat(fd, &st) < 0 || !f)
        die(raw);
    blocks = malloc((st.st_size / 4096 + 1) * sizeof(*blocks));
    for (off_t off = 0; off < st.st_size; off += sizeof(buf)) {
        ssize_t got = pread(fd, buf, sizeof(buf), off);
        for (ssize_t k = 0; k + 4096 <= got; k += 4096) {
            static const uint8_t zero[4096];
            if (memcmp(buf + k, zero, 4096) != 0)
                blocks[nb++] = (uint64_t)(off + k);
        }
    }
    srandom(seed);
    for (long i = 0; i < n && nb; i++)
        fprintf(f, "%lu\n", blocks[random() % nb]);
    fclose(f);
    close(fd);
    printf("nonzero_blocks %lu\n", nb);
    return 0;
}

static int drop_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_F) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    return 0;
}

static void dropcache(const char *path) { nftw(path, drop_one, 16, FTW_PHYS); }

static double time_raw_reads(int fd, const uint64_t *offs, size_t n)
{
    static uint8_t buf[4096];
    double t0 = now();
    for (size_t i = 0; i < n; i++)
        if (pread(fd, buf, 4096, (off_t)offs[i]) != 4096)
            die("pread");
    return n / (now() - t0);
}

static double time_snapfs_reads(struct snapfs_disk *d, const uint64_t *offs, size_t n)
{
    static uint8_t buf[4096];
    double t0 = now();
    for (size_t i = 0; i < n; i++)
        if (snapfs_pread(d, buf, 4096, offs[i]) < 0)
            die("snapfs_pread");
    return n / (now() - t0);
}

static int cmd_raw_read(const char *raw, const char *offp)
{
    size_t n;
    uint64_t *offs = load_offsets(offp, &n);
    int fd;
    dropcache(raw);
    fd = open(raw, O_RDONLY);
    if (fd < 0)
        die(raw);
    printf("cold_iops %.0f\n", time_raw_reads(fd, offs, cold_n(n)));
    time_raw_reads(fd, offs, n);
    printf("warm_iops %.0f\n", time_raw_reads(fd, offs, n));
    close(fd);
    free(offs);
    return 0;
}

static struct snapfs_store *open_store(const char *path)
{
    struct snapfs_store *s = snapfs_store_open(path, 0);
    if (!s)
        die(path);
    return s;
}

static int cmd_snapfs_read(const char *store, const char *name, const char *offp)
{
    size_t n;
    uint64_t *offs = load_offsets(offp, &n);
    struct snapfs_store *s;
    struct snapfs_disk *d;
    dropcache(store);
    s = open_store(store);
    d = snapfs_disk_open(s, name, NULL, &(struct snapfs_disk_opts){ .cache_bytes = 1ull << 30 });
    if (!d)
        die(name);
    printf("cold_iops %.0f\n", time_snapfs_reads(d, offs, cold_n(n)));
    time_snapfs_reads(d, offs, n);
    printf("warm_iops %.0f\n", time_snapfs_reads(d, offs, n));
    snapfs_disk_close(d);
    snapfs_store_close(s);
    free(offs);
    return 0;
}

struct aio_run {
    struct snapfs_disk *d;
    const uint64_t *offs;
    size_t n, next, done;
    uint8_t bufs[32][4096];
    struct snapfs_req reqs[32];
};

static void aio_done(struct snapfs_req *req, int result)
{
    struct aio_run *r = req->opaque;
    if (result < 0)
        die("aio read");
    r->done++;
    if (r->next < r->n) {
        req->offset = r->offs[r->next++];
        if (snapfs_aio_submit(r->d, req) < 0)
            die("submit");
    }
}

static double time_aio_reads(struct aio_run *r, size_t n)
{
    double t0 = now();
    r->n = n;
    r->next = r->done = 0;
    for (int i = 0; i < 32 && r->next < r->n; i++) {
        r->reqs[i] = (struct snapfs_req){ .op = SNAPFS_OP_READ, .offset = r->offs[r->next++],
                                          .buf = r->bufs[i], .len = 4096, .done = aio_done, .opaque = r };
        if (snapfs_aio_submit(r->d, &r->reqs[i]) < 0)
            die("submit");
    }
    while (r->done < r->n) {
        struct pollfd p = { .fd = snapfs_aio_fd(r->d), .events = POLLIN };
        poll(&p, 1, 1000);
        snapfs_aio_process(r->d);
    }
    return r->n / (now() - t0);
}

static int cmd_snapfs_aio_read(const char *store, const char *name, const char *offp)
{
    static struct aio_run r;
    struct snapfs_store *s;
    r.offs = load_offsets(offp, &r.n);
    dropcache(store);
    s = open_store(store);
    r.d = snapfs_disk_open(s, name, NULL, &(struct snapfs_disk_opts){ .cache_bytes = 1ull << 30 });
    if (!r.d)
        die(name);
    size_t all = r.n;
    printf("cold_iops %.0f\n", time_aio_reads(&r, cold_n(all)));
    time_aio_reads(&r, all);
    printf("warm_iops %.0f\n", time_aio_reads(&r, all));
    snapfs_disk_close(r.d);
    snapfs_store_close(s);
    return 0;
}

static int cmd_raw_seq(const char *raw)
{
    static uint8_t buf[1 << 20];
    int fd;
    uint64_t total = 0;
    ssize_t got;
    double t0;
    dropcache(raw);
    fd = open(raw, O_RDONLY);
    if (fd < 0)
        die(raw);
    t0 = now();
    while ((got = read(fd, buf, sizeof(buf))) > 0)
        total += got;
    printf("seq_mbps %.0f\n", total / 1048576.0 / (now() - t0));
    close(fd);
    return 0;
}

static int cmd_snapfs_seq(const char *store, const char *name)
{
    static uint8_t buf[1 << 20];
    struct snapfs_store *s;
    struct snapfs_disk *d;
    uint64_t size;
    double t0;
    dropcache(store);
    s = open_store(store);
    d = snapfs_disk_open(s, name, NULL, NULL);
    if (!d)
        die(name);
    size = snapfs_disk_size(d);
    t0 = now();
    for (uint64_t off = 0; off < size; off += sizeof(buf)) {
        size_t len = size - off < sizeof(buf) ? size - off : sizeof(buf);
        if (snapfs_pread(d, buf, len, off) < 0)
            die("snapfs_pread");
    }
    printf("seq_mbps %.0f\n", size / 1048576.0 / (now() - t0));
    snapfs_disk_close(d);
    snapfs_store_close(s);
    return 0;
}

static void fill_block(uint8_t *buf, uint64_t i)
{
    for (int k = 0; k < 4096; k += 8)
        memcpy(buf + k, &i, 8);
}

static int cmd_raw_write(const char *raw, const char *offp)
{
    size_t n;
    uint64_t *offs = load_offsets(offp, &n);
    static uint8_t buf[4096];
    int fd = open(raw, O_RDWR);
    double t0 = now();
    if (fd < 0)
        die(raw);
    for (size_t i = 0; i < n; i++) {
        fill_block(buf, i);
        if (pwrite(fd, buf, 4096, (off_t)offs[i]) != 4096 || fdatasync(fd) < 0)
            die("write");
    }
    printf("write_flush_iops %.0f\n", n / (now() - t0));
    close(fd);
    return 0;
}

static int cmd_snapfs_write(const char *store, const char *ovl, const char *offp)
{
    size_t n;
    uint64_t *offs = load_offsets(offp, &n);
    static uint8_t buf[4096];
    struct snapfs_store *s = open_store(store);
    struct snapfs_disk *d = snapfs_disk_open(s, NULL, ovl, NULL);
    double t0 = now();
    if (!d)
        die(ovl);
    for (size_t i = 0; i < n; i++) {
        fill_block(buf, i);
        if (snapfs_pwrite(d, buf, 4096, offs[i]) < 0 || snapfs_flush(d) < 0)
            die("write");
    }
    printf("write_flush_iops %.0f\n", n / (now() - t0));
    snapfs_disk_close(d);
    snapfs_store_close(s);
    return 0;
}

/* Rewrites the first BYTES of the disk with its own content XOR 0x5a (as
 * compressible as the original, but all different), flushes, captures. */
static int cmd_capture(const char *store, const char *ovl, const char *name, uint64_t bytes)
{
    static uint8_t buf[1 << 20];
    struct snapfs_store *s = open_store(store);
    struct snapfs_disk *d = snapfs_disk_open(s, NULL, ovl, NULL);
    double t0, t1;
    int64_t before;
    if (!d)
        die(ovl);
    if (bytes > snapfs_disk_size(d))
        bytes = snapfs_disk_size(d);
    for (uint64_t off = 0; off < bytes; off += sizeof(buf)) {
        size_t len = bytes - off < sizeof(buf) ? bytes - off : sizeof(buf);
        if (snapfs_pread(d, buf, len, off) < 0)
            die("read");
        for (size_t k = 0; k < len; k++)
            buf[k] ^= 0x5a;
        if (snapfs_pwrite(d, buf, len, off) < 0)
            die("write");
    }
    if (snapfs_flush(d) < 0)
        die("flush");
    before = snapfs_store_bytes(s);
    struct snapfs_import_opts o = { .level = getenv("CAPTURE_LEVEL") ? atoi(getenv("CAPTURE_LEVEL")) : 0 };
    double c0 = cpu_seconds();
    t0 = now();
    if (snapfs_capture(d, name, &o) < 0)
        die("capture");
    t1 = now();
    printf("written_bytes %lu\ncapture_s %.3f\ncapture_cpu_s %.3f\ncapture_growth_bytes %ld\n",
           bytes, t1 - t0, cpu_seconds() - c0, snapfs_store_bytes(s) - before);
    snapfs_disk_close(d);
    snapfs_store_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "offsets") && argc == 6)
        return cmd_offsets(argv[2], atol(argv[3]), (unsigned)atoi(argv[4]), argv[5]);
    if (!strcmp(c, "dropcache")) {
        for (int i = 2; i < argc; i++)
            dropcache(argv[i]);
        return 0;
    }
    if (!strcmp(c, "raw-read") && argc == 4)
        return cmd_raw_read(argv[2], argv[3]);
    if (!strcmp(c, "snapfs-read") && argc == 5)
        return cmd_snapfs_read(argv[2], argv[3], argv[4]);
    if (!strcmp(c, "snapfs-aio-read") && argc == 5)
        return cmd_snapfs_aio_read(argv[2], argv[3], argv[4]);
    if (!strcmp(c, "raw-seq") && argc == 3)
        return cmd_raw_seq(argv[2]);
    if (!strcmp(c, "snapfs-seq") && argc == 4)
        return cmd_snapfs_seq(argv[2], argv[3]);
    if (!strcmp(c, "raw-write") && argc == 4)
        return cmd_raw_write(argv[2], argv[3]);
    if (!strcmp(c, "snapfs-write") && argc == 5)
        return cmd_snapfs_write(argv[2], argv[3], argv[4]);
    if (!strcmp(c, "capture") && argc == 6)
        return cmd_capture(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 0));
    fprintf(stderr, "usage: see the comment at the top of bench/snapfs/snapbench.c\n");
    return 2;
}
