/* snapfs: command-line front end of libsnapfs. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapfs.h"

static const char USAGE[] =
    "usage: snapfs [--store DIR] COMMAND [ARGS]   (store also from $SNAPFS_STORE)\n"
    "  import [--chunk-size N[K|M]] [--level N] [--threads N] [--label TEXT] [--parent NAME] RAW NAME\n"
    "  export NAME OUT.raw                  write an image as a raw file\n"
    "  export --overlay DIR OUT.raw         write an overlay's disk as a raw file\n"
    "  overlay [--size N[K|M|G]] NAME DIR   create a writable overlay on image NAME\n"
    "                                       (a disk of N bytes, at least the image's)\n"
    "  capture [--label TEXT] [--level N] DIR NAME\n"
    "                                       fold overlay DIR into new image NAME\n"
    "  ls                                   list images\n"
    "  info NAME                            describe an image\n"
    "  verify [NAME...] [--overlay DIR]     check every checksum (all images if none named)\n"
    "  rm NAME                              remove an image\n"
    "  gc                                   free chunks no image uses\n";

static int usage(void)
{
    fputs(USAGE, stderr);
    return 2;
}

static int fail(const char *what)
{
    const char *msg = snapfs_error();
    fprintf(stderr, "snapfs %s: %s\n", what, msg[0] ? msg : strerror(errno));
    return 1;
}

/* A byte count, optionally with a K, M or G suffix (powers of 1024). */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    unsigned shift = 0;
    unsigned long long v;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_size(const char *s, uint32_t *out)
{
    uint64_t v;
    if (parse_bytes(s, &v) < 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static const struct option IMPORT_OPTS[] = {
    { "chunk-size", required_argument, NULL, 'c' },
    { "level", required_argument, NULL, 'l' },
    { "threads", required_argument, NULL, 't' },
    { "label", required_argument, NULL, 'L' },
    { "parent", required_argument, NULL, 'p' },
    { "overlay", required_argument, NULL, 'o' },
    { "size", required_argument, NULL, 's' },
    { NULL, 0, NULL, 0 },
};

struct args {
    struct snapfs_import_opts io;
    const char *overlay;
    uint64_t size;                 /* overlay --size; 0: the image's */
    int argc;
    char **argv;
};

static int parse_opts(int argc, char **argv, struct args *a)
{
    int c;
    memset(a, 0, sizeof(*a));
    optind = 1;
    while ((c = getopt_long(argc, argv, "", IMPORT_OPTS, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (parse_size(optarg, &a->io.chunk_size) < 0)
                return -1;
            break;
        case 'l': a->io.level = atoi(optarg); break;
        case 't': a->io.threads = atoi(optarg); break;
        case 'L': a->io.label = optarg; break;
        case 'p': a->io.parent = optarg; break;
        case 'o': a->overlay = optarg; break;
        case 's':
            if (parse_bytes(optarg, &a->size) < 0 || a->size == 0)
                return -1;
            break;
        default: return -1;
        }
    }
    a->argc = argc - optind;
    a->argv = argv + optind;
    return 0;
}

static void print_info(const struct snapfs_image_info *in, int verbose)
{
    char when[32];
    time_t t = (time_t)in->ctime;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime(&t));
    if (!verbose) {
        printf("%-24s %10.1f MiB %10.1f MiB stored  %s  %s\n", in->name,
               in->virtual_size / 1048576.0, in->stored_bytes / 1048576.0, when, in->label);
        return;
    }
    printf("name:          %s\nlabel:         %s\nparent:        %s\ncreated:       %s UTC\n"
           "virtual size:  %llu bytes\nchunk size:    %u\nchunks:        %u (%u all-zero)\n"
           "stored bytes:  %llu\n",
           in->name, in->label, in->parent[0] ? in->parent : "-", when,
           (unsigned long long)in->virtual_size, in->chunk_size, in->nchunks, in->zero_chunks,
           (unsigned long long)in->stored_bytes);
}

static void report(void *opaque, const char *msg)
{
    (void)opaque;
    printf("CORRUPT %s\n", msg);
}

static int cmd_verify(struct snapfs_store *s, struct args *a)
{
    struct snapfs_image_info *all = NULL;
    int problems = 0, n = 0, rc;
    if (a->overlay) {
        rc = snapfs_overlay_verify(a->overlay, report, NULL);
        if (rc < 0)
            return fail("verify");
        if (rc == 0)
            printf("ok overlay %s\n", a->overlay);
        problems += rc;
    }
    if (a->argc == 0 && !a->overlay) {
        n = snapfs_list(s, &all);
        if (n < 0)
            return fail("verify");
    }
    for (int i = 0; i < (a->argc ? a->argc : n); i++) {
        const char *name = a->argc ? a->argv[i] : all[i].name;
        rc = snapfs_verify(s, name, report, NULL);
        if (rc < 0) {
            printf("CORRUPT %s\n", snapfs_error());
            problems++;
        } else {
            problems += rc;
            if (rc == 0)
                printf("ok %s\n", name);
        }
    }
    free(all);
    if (problems)
        fprintf(stderr, "snapfs verify: %d problem(s)\n", problems);
    return problems ? 1 : 0;
}

static int cmd_ls(struct snapfs_store *s)
{
    struct snapfs_image_info *all;
    int n = snapfs_list(s, &all);
    if (n < 0)
        return fail("ls");
    for (int i = 0; i < n; i++)
        print_info(&all[i], 0);
    printf("store: %.1f MiB on disk\n", snapfs_store_bytes(s) / 1048576.0);
    free(all);
    return 0;
}

static int cmd_capture(struct snapfs_store *s, struct args *a)
{
    struct snapfs_disk *d;
    struct timespec t0, t1;
    int rc;
    if (a->argc != 2)
        return usage();
    d = snapfs_disk_open(s, NULL, a->argv[0], NULL);
    if (!d)
        return fail("capture");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = snapfs_capture(d, a->argv[1], &a->io);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc < 0) {
        snapfs_disk_close(d);
        return fail("capture");
    }
    snapfs_disk_close(d);
    printf("captured %s as %s in %.3f s\n", a->argv[0], a->argv[1],
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}

static int run(struct snapfs_store *s, const char *cmd, struct args *a)
{
    struct snapfs_image_info info;
    uint64_t freed = 0;
    if (!strcmp(cmd, "import") && a->argc == 2)
        return snapfs_import(s, a->argv[0], a->argv[1], &a->io) < 0 ? fail("import") : 0;
    if (!strcmp(cmd, "export") && a->argc == (a->overlay ? 1 : 2))
        return snapfs_export(s, a->overlay ? NULL : a->argv[0], a->overlay,
                             a->argv[a->argc - 1]) < 0 ? fail("export") : 0;
    if (!strcmp(cmd, "overlay") && a->argc == 2)
        return snapfs_overlay_create_sized(s, a->argv[0], a->argv[1], a->size) < 0
                   ? fail("overlay") : 0;
    if (a->size)
        return usage();                     /* --size is for overlay only */
    if (!strcmp(cmd, "capture"))
        return cmd_capture(s, a);
    if (!strcmp(cmd, "ls") && a->argc == 0)
        return cmd_ls(s);
    if (!strcmp(cmd, "info") && a->argc == 1) {
        if (snapfs_image_info(s, a->argv[0], &info) < 0)
            return fail("info");
        print_info(&info, 1);
        return 0;
    }
    if (!strcmp(cmd, "verify"))
        return cmd_verify(s, a);
    if (!strcmp(cmd, "rm") && a->argc == 1)
        return snapfs_rm(s, a->argv[0]) < 0 ? fail("rm") : 0;
    if (!strcmp(cmd, "gc") && a->argc == 0) {
        if (snapfs_gc(s, &freed) < 0)
            return fail("gc");
        printf("freed %.1f MiB\n", freed / 1048576.0);
        return 0;
    }
    return usage();
}

int main(int argc, char **argv)
{
    const char *store = getenv("SNAPFS_STORE");
    struct snapfs_store *s;
    struct args a;
    int rc;
    if (argc >= 3 && !strcmp(argv[1], "--store")) {
        store = argv[2];
        argv += 2, argc -= 2;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return usage();
    if (!store || !store[0]) {
        fprintf(stderr, "snapfs: no store: pass --store DIR or set SNAPFS_STORE\n");
        return 2;
    }
    if (parse_opts(argc - 1, argv + 1, &a) < 0)
        return usage();
    s = snapfs_store_open(store, !strcmp(argv[1], "import"));
    if (!s)
        return fail("store");
    rc = run(s, argv[1], &a);
    snapfs_store_close(s);
    return rc;
}
