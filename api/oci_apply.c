/* Layers are read twice with libarchive: whiteouts first (they only hide what
 * lower layers made, never files of their own layer, whatever their order in
 * the tar), then the files, written by archive_write_disk with absolute paths
 * under root's real path and its symlink and ".." guards. */
#include "oci_apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define MAX_ENTRIES (4 << 20)
#define MAX_DEPTH 128

struct apply {
    const char *root;               /* real path, no trailing slash */
    int rootfd;
    bool whiteouts;
    struct oci_budget *budget;
    char *msg;
    size_t len;
};

/* name as a clean relative path into out: leading "/" and "./" dropped, "."
 * and empty components removed. 1 for the root itself, -1 for "..". */
static int clean_path(const char *name, char *out, size_t len)
{
    char buf[PATH_MAX], *save = NULL, *part;
    size_t n = 0;

    if (strlen(name) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", name);
    out[0] = '\0';
    for (part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        if (!strcmp(part, "."))
            continue;
        if (!strcmp(part, ".."))
            return -1;
        int w = snprintf(out + n, len - n, "%s%s", n ? "/" : "", part);
        if (w < 0 || (size_t)w >= len - n)
            return -1;
        n += (size_t)w;
    }
    return n ? 0 : 1;
}

/* The folder holding rel (opened beneath root without following any
 * symlink) and rel's last component in *base. -1 with errno. */
static int open_parent(int rootfd, char *rel, const char **base)
{
    struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
    char *slash = strrchr(rel, '/');
    int fd;

    if (!slash) {
        *base = rel;
        return dup(rootfd);
    }
    *slash = '\0';
    fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    *slash = '/';
    *base = slash + 1;
    return fd;
}

static int remove_at(int dirfd, const char *name, int depth);

/* Removes everything inside the folder fd (closed here). */
static int empty_dir(int fd, int depth)
{
    DIR *d = fdopendir(fd);
    struct dirent *e;
    int rc = 0;

    if (!d) {
        close(fd);
        return -errno;
    }
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc = remove_at(dirfd(d), e->d_name, depth + 1) ?: rc;
    closedir(d);
    return rc;
}

/* rm -rf dirfd/name, symlinks never followed. */
static int remove_at(int dirfd, const char *name, int depth)
{
    struct stat st;
    int fd;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (depth > MAX_DEPTH)
        return -ELOOP;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    empty_dir(fd, depth);
    return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

/* Applies the whiteout at rel (already clean). */
static int whiteout(struct apply *a, char *rel)
{
    const char *base;
    int dirfd = open_parent(a->rootfd, rel, &base), rc;

    if (dirfd < 0)
        return 0;               /* no such folder below: nothing to hide */
    if (!strcmp(base, WH_OPAQUE)) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = fd < 0 ? -errno : empty_dir(fd, 0);
    } else {
        const char *name = base + strlen(WH_PREFIX);
        /* ".wh.", ".wh.." and ".wh..." name no entry of the folder */
        rc = !*name || !strcmp(name, ".") || !strcmp(name, "..") ? 0 : remove_at(dirfd, name, 0);
    }
    close(dirfd);
    if (rc)
        snprintf(a->msg, a->len, "applying whiteout %.200s: %s", rel, strerror(-rc));
    return rc ? -1 : 0;
}

static bool is_whiteout(const char *rel)
{
    const char *base = strrchr(rel, '/');

    base = base ? base + 1 : rel;
    return !strncmp(base, WH_PREFIX, strlen(WH_PREFIX));
}

/* Makes rel's place ready: its folder must be reached without a symlink
 * (archive_write_disk's SECURE_SYMLINKS does not look at absolute paths);
 * a missing folder is made by archive_write_disk. What stands at rel and
 * is a symlink, or of another kind than the entry (a folder where a file
 * comes, or the reverse), goes first, as in a container runtime. */
static int clear_conflict(struct apply *a, char *rel, mode_t type)
{
    const char *base;
    int dirfd = open_parent(a->rootfd, rel, &base), rc = 0;
    struct stat st;

    if (dirfd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(a->msg, a->len, "layer entry %.200s: its folder is reached through a "
                 "symlink or is not a folder", rel);
        return -1;
    }
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode) != (type == AE_IFDIR)))
        rc = remove_at(dirfd, base, 0);
    close(dirfd);
    if (rc)
        snprintf(a->msg, a->len, "cannot replace %.200s: %s", rel, strerror(-rc));
    return rc ? -1 : 0;
}

/* A hard link's target must be inside root, reached without a symlink. */
static bool safe_link_target(struct apply *a, const char *rel)
{
    struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
    int fd = (int)syscall(SYS_openat2, a->rootfd, rel, &how, sizeof(how));

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static struct archive *open_layer(int fd, char *msg, size_t len)
{
    struct archive *ar = archive_read_new();

    if (!ar || lseek(fd, 0, SEEK_SET) < 0) {
        snprintf(msg, len, "reading a layer: %s", ar ? strerror(errno) : "out of memory");
        archive_read_free(ar);
        return NULL;
    }
    archive_read_support_filter_gzip(ar);
    archive_read_support_filter_zstd(ar);
    archive_read_support_format_tar(ar);
    archive_read_support_format_gnutar(ar);
    if (archive_read_open_fd(ar, fd, 1 << 16) != ARCHIVE_OK) {
        snprintf(msg, len, "layer: %.200s", archive_error_string(ar));
        archive_read_free(ar);
        return NULL;
    }
    return ar;
}

static int copy_data(struct apply *a, struct archive *in, struct archive *out)
{
    const void *buf;
    size_t size;
    la_int64_t off;
    int r;

    while ((r = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK) {
        if (archive_write_data_block(out, buf, size, off) < ARCHIVE_OK) {
            snprintf(a->msg, a->len, "writing: %.200s", archive_error_string(out));
            return -1;
        }
    }
    if (r != ARCHIVE_EOF) {
        snprintf(a->msg, a->len, "layer: %.200s", archive_error_string(in));
        return -1;
    }
    return 0;
}

/* Counts the entry's data against the budget; -1 past it. */
static int spend(struct apply *a, struct archive_entry *e)
{
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;

    if (size < 0 || size > a->budget->limit - a->budget->used) {
        snprintf(a->msg, a->len, "the image's files do not fit in the snapshot's capacity "
                 "(%lld GiB)", (long long)(a->budget->limit >> 30));
        return -1;
    }
    a->budget->used += size + 512;  /* and a little for the inode */
    return 0;
}

/* root/rel into out; -1 with msg when longer than PATH_MAX. */
static int join(struct apply *a, char *out, size_t len, const char *rel)
{
    int n = snprintf(out, len, "%s/%s", a->root, rel);

    if (n < 0 || n >= PATH_MAX) {
        snprintf(a->msg, a->len, "layer entry %.100s...: path too long", rel);
        return -1;
    }
    return 0;
}

/* Rewrites e's names to absolute paths under root; 1 to skip the entry. */
static int place(struct apply *a, struct archive_entry *e, char *rel, size_t rlen)
{
    char abs[2 * PATH_MAX + 2], link[PATH_MAX];
    const char *hl = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    int c = clean_path(archive_entry_pathname(e) ?: "", rel, rlen);

    if (c < 0) {
        snprintf(a->msg, a->len, "layer entry %.200s leaves the root", archive_entry_pathname(e));
        return -1;
    }
    if (c > 0 || type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK ||
        (a->whiteouts && is_whiteout(rel)))
        return 1;
    if (hl) {
        if (clean_path(hl, link, sizeof(link)) || !safe_link_target(a, link)) {
            snprintf(a->msg, a->len, "layer entry %.200s: bad hard link target", rel);
            return -1;
        }
        if (join(a, abs, sizeof(abs), link))
            return -1;
        archive_entry_set_hardlink(e, abs);
    }
    if (clear_conflict(a, rel, hl ? AE_IFREG : type))
        return -1;
    if (join(a, abs, sizeof(abs), rel))
        return -1;
    archive_entry_set_pathname(e, abs);
    return 0;
}

static int extract(struct apply *a, struct archive *in, struct archive *out)
{
    struct archive_entry *e;
    char rel[PATH_MAX];
    long n = 0;
    int r, rc;

    while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        if (++n > MAX_ENTRIES) {
            snprintf(a->msg, a->len, "too many entries in a layer");
            return -1;
        }
        rc = place(a, e, rel, sizeof(rel));
        if (rc > 0)
            continue;
        if (rc < 0 || spend(a, e))
            return -1;
        if (archive_write_header(out, e) < ARCHIVE_OK) {
            snprintf(a->msg, a->len, "%.200s: %.200s", rel, archive_error_string(out));
            return -1;
        }
        if (archive_entry_size(e) > 0 && copy_data(a, in, out))
            return -1;
        if (archive_write_finish_entry(out) < ARCHIVE_OK) {
            snprintf(a->msg, a->len, "%.200s: %.200s", rel, archive_error_string(out));
            return -1;
        }
    }
    if (r != ARCHIVE_EOF) {
        snprintf(a->msg, a->len, "layer: %.200s", archive_error_string(in));
        return -1;
    }
    return 0;
}

static int pass_whiteouts(struct apply *a, int fd)
{
    struct archive *in = open_layer(fd, a->msg, a->len);
    struct archive_entry *e;
    char rel[PATH_MAX];
    int r, rc = 0;

    if (!in)
        return -1;
    while (rc == 0 && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        int c = clean_path(archive_entry_pathname(e) ?: "", rel, sizeof(rel));
        if (c == 0 && is_whiteout(rel))
            rc = whiteout(a, rel);
    }
    if (rc == 0 && r != ARCHIVE_EOF) {
        snprintf(a->msg, a->len, "layer: %.200s", archive_error_string(in));
        rc = -1;
    }
    archive_read_free(in);
    return rc;
}

static int pass_files(struct apply *a, int fd)
{
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                ARCHIVE_EXTRACT_UNLINK | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT;
    struct archive *in = open_layer(fd, a->msg, a->len), *out = archive_write_disk_new();
    int rc = -1;

    if (!in || !out) {
        if (!out)
            snprintf(a->msg, a->len, "out of memory");
        goto out;
    }
    if (geteuid() == 0)
        flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(out, flags);
    rc = extract(a, in, out);
    /* Folders' modes and times are set at close. */
    if (archive_write_close(out) < ARCHIVE_OK && rc == 0) {
        snprintf(a->msg, a->len, "%.200s", archive_error_string(out));
        rc = -1;
    }
out:
    if (in)
        archive_read_free(in);
    if (out)
        archive_write_free(out);
    return rc;
}

int oci_apply_layer(const char *root, int fd, bool with_whiteouts,
                    struct oci_budget *budget, char *msg, size_t len)
{
    char real[PATH_MAX];
    struct apply a = { .root = real, .whiteouts = with_whiteouts, .budget = budget,
                       .msg = msg, .len = len };
    int rc;

    if (!realpath(root, real)) {
        snprintf(msg, len, "%.200s: %s", root, strerror(errno));
        return -1;
    }
    a.rootfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a.rootfd < 0) {
        snprintf(msg, len, "%.200s: %s", real, strerror(errno));
        return -1;
    }
    rc = with_whiteouts ? pass_whiteouts(&a, fd) : 0;
    if (rc == 0)
        rc = pass_files(&a, fd);
    close(a.rootfd);
    return rc;
}
