/* Corruption is found and reported with the image (or overlay) and the
 * offset, never a crash: flipped byte in a chunk, truncated pack, damaged
 * manifest, damaged overlay head and map. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../snapfs.h"
#include "helpers.h"

#define DISK (1024u * 1024)

static char reported[4096];

static void report(void *opaque, const char *msg)
{
    (void)opaque;
    strncat(reported, msg, sizeof(reported) - strlen(reported) - 2);
    strcat(reported, "\n");
}

static const char *only_pack(const char *dir)
{
    static char path[600];
    DIR *d = opendir(path_in(dir, "store/packs"));
    struct dirent *de;
    path[0] = 0;
    while (d && (de = readdir(d)))
        if (strstr(de->d_name, ".pack"))
            snprintf(path, sizeof(path), "%s/store/packs/%s", dir, de->d_name);
    if (d)
        closedir(d);
    CHECK(path[0]);
    return path;
}

static void flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    CHECK(fd >= 0 && pread(fd, &b, 1, off) == 1);
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

static int async_result = 1;

static void async_done(struct snapfs_req *req, int result)
{
    (void)req;
    async_result = result;
}

/* The same damage seen through io_uring: the decoder thread's message
 * reaches the caller. */
static void check_async_read(struct snapfs_store *s)
{
    struct snapfs_disk *d = snapfs_disk_open(s, "img", NULL, NULL);
    uint8_t buf[4096];
    int bad = 0, ring = 1;
    CHECK(d);
    for (uint64_t off = 0; off < DISK; off += 65536) {
        struct snapfs_req req = { .op = SNAPFS_OP_READ, .offset = off, .buf = buf,
                                  .len = sizeof(buf), .done = async_done };
        int rc = snapfs_aio_submit(d, &req);
        if (rc == -ENOSYS) {
            ring = 0;               /* no io_uring here */
            break;
        }
        CHECK(rc == 0);
        async_result = 1;
        while (async_result == 1) {
            struct pollfd p = { .fd = snapfs_aio_fd(d), .events = POLLIN };
            CHECK(poll(&p, 1, 10000) == 1 && snapfs_aio_process(d) >= 0);
        }
        if (async_result == -EIO) {
            bad++;
            CHECK(strstr(snapfs_error(), "image img: chunk") && strstr(snapfs_error(), "disk offset"));
        }
    }
    CHECK(!ring || bad == 1);
    snapfs_disk_close(d);
}

static void check_images(struct snapfs_store *s, const char *dir)
{
    uint8_t buf[4096];
    struct snapfs_disk *d;
    struct stat st;
    const char *pack = only_pack(dir);

    CHECK(snapfs_verify(s, "img", report, NULL) == 0);
    flip(pack, 200);                                   /* inside the first record */
    reported[0] = 0;
    CHECK(snapfs_verify(s, "img", report, NULL) == 1);
    fprintf(stderr, "reported: %s", reported);
    CHECK(strstr(reported, "image img: chunk ") && strstr(reported, "disk offset"));
    d = snapfs_disk_open(s, "img", NULL, NULL);
    CHECK(d);
    int bad = 0;
    for (uint64_t off = 0; off < DISK; off += 65536)
        bad += snapfs_pread(d, buf, sizeof(buf), off) == -EIO;
    CHECK(bad == 1 && strstr(snapfs_error(), "image img"));
    snapfs_disk_close(d);
    check_async_read(s);
    flip(pack, 200);                                   /* repaired */
    CHECK(snapfs_verify(s, "img", NULL, NULL) == 0);

    CHECK(stat(pack, &st) == 0 && truncate(pack, st.st_size - 10) == 0);
    reported[0] = 0;
    CHECK(snapfs_verify(s, "img", report, NULL) == 1 && strstr(reported, "pack truncated"));

    flip(path_in(dir, "store/images/img"), 300);       /* chunk table */
    CHECK(snapfs_verify(s, "img", NULL, NULL) == -EIO);
    CHECK(strstr(snapfs_error(), "image img: corrupt manifest"));
    CHECK(snapfs_disk_open(s, "img", NULL, NULL) == NULL);
    CHECK(truncate(path_in(dir, "store/images/img"), 100) == 0);
    CHECK(snapfs_verify(s, "img", NULL, NULL) == -EIO);
}

static void check_overlay(struct snapfs_store *s, const char *dir)
{
    const char *ovl = path_in(dir, "ovl");
    struct snapfs_disk *d;
    char map[600];
    CHECK(snapfs_overlay_create(s, "img2", ovl) == 0);
    snprintf(map, sizeof(map), "%s/map.1", ovl);
    flip(map, 4096 + 100);                             /* one slot: still fine */
    CHECK(snapfs_overlay_verify(ovl, NULL, NULL) == 0);
    d = snapfs_disk_open(s, NULL, ovl, NULL);
    CHECK(d);
    snapfs_disk_close(d);
    flip(map, 8192 + 100);                             /* both slots */
    reported[0] = 0;
    CHECK(snapfs_overlay_verify(ovl, report, NULL) == 1);
    CHECK(strstr(reported, "both copies corrupt") && strstr(reported, "offset 4096"));
    CHECK(snapfs_disk_open(s, NULL, ovl, NULL) == NULL && errno == EIO);
    flip(path_in(ovl, "head"), 40);
    CHECK(snapfs_disk_open(s, NULL, ovl, NULL) == NULL);
    CHECK(strstr(snapfs_error(), "head") && strstr(snapfs_error(), "checksum"));
}

int main(void)
{
    char *dir = tmpdir_make();
    uint8_t *disk = malloc(DISK);
    struct snapfs_store *s = snapfs_store_open(path_in(dir, "store"), 1);
    struct snapfs_import_opts o = { .chunk_size = 65536, .level = 3 };
    CHECK(s && disk);
    fill_disk(disk, DISK, 11);
    memset(disk, 'q', 65536);                          /* chunk 0 is not zero */
    write_raw(path_in(dir, "in.raw"), disk, DISK);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "img", &o) == 0);
    check_images(s, dir);
    memset(disk, 'r', DISK);
    write_raw(path_in(dir, "in.raw"), disk, DISK);
    CHECK(snapfs_import(s, path_in(dir, "in.raw"), "img2", &o) == 0);
    check_overlay(s, dir);
    snapfs_store_close(s);
    free(disk);
    tmpdir_remove(dir);
    return 0;
}
