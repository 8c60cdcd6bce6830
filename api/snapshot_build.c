/* Making a snapshot image from a root filesystem: tar unpacks a tarball,
 * container images have their layers applied (oci_*.c), mke2fs -d turns a
 * folder into an ext4 image, libsnapfs imports the image. Runs on a build
 * thread, so children are started with posix_spawn. */
#include "snapshot_int.h"

#include "apilog.h"
#include "logtail.h"
#include "oci_image.h"
#include "oci_layout.h"
#include "oci_registry.h"

#include "../snapfs/snapfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXT4_MAGIC_OFFSET 1080      /* superblock at 1024, s_magic at +56 */
#define EXT4_MAGIC 0xef53

extern char **environ;

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n > m && !strcmp(s + n - m, suffix);
}

static bool is_tarball(const char *path)
{
    static const char *const suffixes[] = { ".tar", ".tar.gz", ".tgz", ".tar.zst",
                                            ".tar.zstd", NULL };

    for (const char *const *s = suffixes; *s; s++)
        if (has_suffix(path, *s))
            return true;
    return false;
}

/* An ext2/3/4 superblock magic where it belongs, and a size snapfs accepts. */
static int check_ext4(const char *path, off_t size, char *why, size_t len)
{
    unsigned char magic[2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        snprintf(why, len, "%s", strerror(errno));
        return -1;
    }
    n = pread(fd, magic, sizeof(magic), EXT4_MAGIC_OFFSET);
    close(fd);
    if (n != (ssize_t)sizeof(magic) || (magic[0] | magic[1] << 8) != EXT4_MAGIC) {
        snprintf(why, len, "not a tarball (.tar, .tar.gz, .tgz, .tar.zst), folder or ext4 image");
        return -1;
    }
    if (size % 512) {
        snprintf(why, len, "an ext4 image's size must be a multiple of 512 bytes");
        return -1;
    }
    return 0;
}

int snapbuild_source_kind(const char *source, enum snap_source *kind, char *why, size_t len)
{
    struct stat st;

    if (stat(source, &st) < 0) {
        snprintf(why, len, "%s", strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        *kind = oci_layout_is_dir(source) ? SNAP_SRC_OCI_DIR : SNAP_SRC_DIR;
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, len, "not a regular file or folder");
        return -1;
    }
    if (is_tarball(source)) {
        *kind = oci_layout_is_archive(source) ? SNAP_SRC_OCI_TAR : SNAP_SRC_TAR;
        return 0;
    }
    *kind = SNAP_SRC_RAW;
    return check_ext4(source, st.st_size, why, len);
}

/* Copies the data extents of src into dst (both open), at the same offsets. */
static bool all_zero(const unsigned char *p, size_t n)
{
    return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* [off, end) by read and write, leaving all-zero pieces as holes (dst has its
 * size already): for file systems without copy_file_range between them. */
static int copy_plain(int src, int dst, off_t off, off_t end)
{
    enum { PIECE = 1 << 20 };
    unsigned char *buf = malloc(PIECE);
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    while (off < end && rc == 0) {
        size_t want = end - off < PIECE ? (size_t)(end - off) : PIECE;
        ssize_t n = pread(src, buf, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        if (!all_zero(buf, (size_t)n)) {
            ssize_t w = pwrite(dst, buf, (size_t)n, off);
            if (w != n)
                rc = w < 0 ? -errno : -EIO;
        }
        off += n;
    }
    free(buf);
    return rc;
}

/* [off, end) in the kernel where it can; *plain switches to copy_plain for good. */
static int copy_range(int src, int dst, off_t off, off_t end, bool *plain)
{
    while (off < end && !*plain) {
        loff_t in = off, out = off;
        ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(end - off), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS ||
                      errno == EINVAL)) {
            *plain = true;
            break;
        }
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        off += n;
    }
    return off < end ? copy_plain(src, dst, off, end) : 0;
}

int snapbuild_copy_extents(int src, int dst, off_t size)
{
    off_t data = 0, hole;
    bool plain = false;
    int rc;

    if (ioctl(dst, FICLONE, src) == 0)
        return 0;
    if (ftruncate(dst, size) < 0)
        return -errno;
    while (data < size) {
        data = lseek(src, data, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno;
        hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        rc = copy_range(src, dst, data, hole, &plain);
        if (rc)
            return rc;
        data = hole;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void snapbuild_rmtree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs argv (stdin /dev/null, stdout and stderr appended to log) and waits.
 * Returns 0 when it exited with a status up to max_ok, else -1 with msg
 * naming it and its last line. */
static int run_ok(char *const argv[], int max_ok, const char *log, char *msg, size_t msglen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    char last[160];
    sigset_t none;
    int status, rc;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);   /* sbx-api blocks TERM and INT */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc) {
        snprintf(msg, msglen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(msg, msglen, "%s: waitpid: %s", argv[0], strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) <= max_ok)
        return 0;
    logtail_last_line(log, last, sizeof(last));
    if (WIFEXITED(status))
        snprintf(msg, msglen, "%s exited with status %d%s%s", argv[0], WEXITSTATUS(status),
                 last[0] ? ": " : "", last);
    else
        snprintf(msg, msglen, "%s was killed by signal %d", argv[0], WTERMSIG(status));
    return -1;
}

static int run(char *const argv[], const char *log, char *msg, size_t msglen)
{
    return run_ok(argv, 0, log, msg, msglen);
}

/* Unpacks the tarball into dir. Compression is recognised by tar itself; the
 * contents of /dev are left out (the guest mounts devtmpfs there, and device
 * nodes cannot be made without root). */
static int untar(const char *tarball, const char *dir, const char *log, char *msg, size_t len)
{
    char *const argv[] = { "tar", "-x", "-p", "--numeric-owner", "-f", (char *)tarball,
                           "-C", (char *)dir, "--anchored", "--exclude=./dev/*",
                           "--exclude=dev/*", NULL };

    if (mkdir(dir, 0755) < 0) {
        snprintf(msg, len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return run(argv, log, msg, len);
}

/* The root folder of a tarball or a container image at root; a container
 * image's run settings (oci_check_config) in *run; auth: the registry login
 * of a pull (NULL: anonymous). */
static int make_root(enum snap_source kind, const char *source,
                     const struct oci_registry_auth *auth, const char *work, const char *root,
                     int64_t capacity_gib, const char *log, char **run, char *msg, size_t len)
{
    struct oci_budget budget = { .limit = capacity_gib << 30 };

    if (kind == SNAP_SRC_TAR)
        return untar(source, root, log, msg, len);
    if (mkdir(root, 0755) < 0) {
        snprintf(msg, len, "cannot create %s: %s", root, strerror(errno));
        return -1;
    }
    if (kind == SNAP_SRC_OCI_DIR)
        return oci_layout_apply(source, root, &budget, run, msg, len);
    if (kind == SNAP_SRC_OCI_TAR)
        return oci_layout_apply_archive(source, work, root, &budget, run, msg, len);
    return oci_registry_pull(source + strlen(SNAP_DOCKER_PREFIX), auth, work, root, &budget,
                             run, msg, len);
}

/* An ext4 image of capacity_gib at img with the contents of root. */
static int make_ext4(const char *root, const char *img, int64_t capacity_gib, const char *log,
                     char *msg, size_t len)
{
    char *const argv[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-L", "sbx-root", "-d",
                           (char *)root, (char *)img, NULL };
    int fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0 || ftruncate(fd, (off_t)capacity_gib << 30) < 0) {
        snprintf(msg, len, "cannot create %s: %s", img, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return run(argv, log, msg, len);
}

/* A copy of the ext4 image src grown to capacity_gib at img; 1 when src is
 * already that large (nothing made), 0 when grown, -1 with msg. */
static int grow_ext4(const char *src, const char *img, int64_t capacity_gib, const char *log,
                     char *msg, size_t len)
{
    char *const fsck[] = { "e2fsck", "-f", "-p", (char *)img, NULL };
    char *const resize[] = { "resize2fs", (char *)img, NULL };
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    struct stat st;

    if (in < 0 || fstat(in, &st) < 0) {
        snprintf(msg, len, "%s: %s", src, strerror(errno));
        goto out;
    }
    if (capacity_gib <= 0 || st.st_size >= (off_t)capacity_gib << 30) {
        rc = 1;
        goto out;
    }
    out = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0 || (rc = snapbuild_copy_extents(in, out, st.st_size)) ||
        ftruncate(out, (off_t)capacity_gib << 30) < 0) {
        snprintf(msg, len, "copying %s: %s", src, strerror(rc ? -rc : errno));
        rc = -1;
        goto out;
    }
    close(out);
    out = -1;
    /* resize2fs wants a freshly checked file system; e2fsck -p exits 1 when
     * it fixed something harmless. */
    rc = run_ok(fsck, 1, log, msg, len) || run(resize, log, msg, len) ? -1 : 0;
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

int snapbuild_import(const char *state_dir, const char *raw, const char *id, const char *label,
                     char *msg, size_t len)
{
    char store_path[STORE_PATH_LEN];
    struct snapfs_import_opts opts = { .label = label, .level = SNAPSHOT_IMPORT_LEVEL };
    struct snapfs_store *store;
    int rc = -1;

    snprintf(store_path, sizeof(store_path), "%s/store", state_dir);
    store = snapfs_store_open(store_path, 0);
    if (store && snapfs_import(store, raw, id, &opts) == 0)
        rc = 0;
    else
        snprintf(msg, len, "import: %s", snapfs_error());
    snapfs_store_close(store);
    return rc;
}

int snapbuild_make_image(const char *state_dir, const char *id, const char *label,
                         enum snap_source kind, const char *source,
                         const struct oci_registry_auth *auth, int64_t capacity_gib,
                         char **image_config, char *msg, size_t msglen)
{
    char work[STORE_PATH_LEN], root[STORE_PATH_LEN + 8], img[STORE_PATH_LEN + 16],
        log[STORE_PATH_LEN + 16];
    const char *raw = source, *tree = source;
    int rc = -1;

    snprintf(work, sizeof(work), "%s/tmp/build-%s", state_dir, id);
    snprintf(root, sizeof(root), "%s/root", work);
    snprintf(img, sizeof(img), "%s/disk.img", work);
    snprintf(log, sizeof(log), "%s/log", work);
    if (mkdir(work, 0700) < 0) {
        snprintf(msg, msglen, "cannot create %s: %s", work, strerror(errno));
        return -1;
    }
    *image_config = NULL;
    if (kind == SNAP_SRC_TAR || kind >= SNAP_SRC_OCI_DIR) {
        rc = make_root(kind, source, auth, work, root, capacity_gib, log, image_config, msg,
                       msglen);
        if (rc)
            goto out;
        rc = -1;
        tree = root;
    }
    if (kind != SNAP_SRC_RAW) {
        if (make_ext4(tree, img, capacity_gib, log, msg, msglen))
            goto out;
        raw = img;
    } else {
        int grown = grow_ext4(source, img, capacity_gib, log, msg, msglen);
        if (grown < 0)
            goto out;
        if (grown == 0)
            raw = img;
    }
    rc = snapbuild_import(state_dir, raw, id, label, msg, msglen);
out:
    snapbuild_rmtree(work);
    if (rc) {
        free(*image_config);
        *image_config = NULL;
    }
    return rc;
}

int snapbuild_image_size(const char *store_path, const char *id, int64_t *size,
                         int64_t *stored)
{
    struct snapfs_image_info info;
    struct snapfs_store *store = snapfs_store_open(store_path, 0);
    int rc;

    if (!store)
        return -errno;
    rc = snapfs_image_info(store, id, &info);
    snapfs_store_close(store);
    if (rc < 0)
        return rc;
    *size = (int64_t)info.virtual_size;
    *stored = (int64_t)info.stored_bytes;
    return 0;
}
