/* The store: a directory of packs (packs/XXXXXXXX.pack) and manifests
 * (images/NAME). Reading chunk records, listing, removing, verifying. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "internal.h"

static int open_subdir(int dirfd, const char *name, int create)
{
    if (create && mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
        return -1;
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

struct snapfs_store *snapfs_store_open(const char *path, int create)
{
    struct snapfs_store *s = calloc(1, sizeof(*s));
    int err = ENOMEM;
    if (!s)
        goto fail;
    s->dirfd = s->packs_fd = s->images_fd = s->lock_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    s->path = strdup(path);
    if (create && mkdir(path, 0755) < 0 && errno != EEXIST)
        goto fail_errno;
    s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        goto fail_errno;
    s->packs_fd = open_subdir(s->dirfd, "packs", create);
    s->images_fd = open_subdir(s->dirfd, "images", create);
    if (s->packs_fd < 0 || s->images_fd < 0)
        goto fail_errno;
    s->lock_fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        goto fail_errno;
    return s;
fail_errno:
    err = errno;
    seterr("store %s: %s%s", path, strerror(err),
           err == ENOENT ? " (not a snapfs store; create one with import)" : "");
fail:
    snapfs_store_close(s);
    errno = err;
    return NULL;
}

void snapfs_store_close(struct snapfs_store *s)
{
    if (!s)
        return;
    for (uint32_t i = 1; i < s->npack_fds; i += 2)
        close(s->pack_fds[i]);
    free(s->pack_fds);
    if (s->dirfd >= 0) close(s->dirfd);
    if (s->packs_fd >= 0) close(s->packs_fd);
    if (s->images_fd >= 0) close(s->images_fd);
    if (s->lock_fd >= 0) close(s->lock_fd);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

int store_lock(struct snapfs_store *s, int how)
{
    while (flock(s->lock_fd, how) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

void store_unlock(struct snapfs_store *s) { flock(s->lock_fd, LOCK_UN); }

/* Pack fds are kept in a small open-addressed table keyed by id. */
static int *pack_slot(struct snapfs_store *s, uint32_t pack)
{
    for (uint32_t i = 0; i < s->npack_fds; i += 2)
        if ((uint32_t)s->pack_fds[i] == pack)
            return &s->pack_fds[i + 1];
    return NULL;
}

int store_pack_fd(struct snapfs_store *s, uint32_t pack, const char *image)
{
    char name[32];
    int fd, *slot, *grown;
    pthread_mutex_lock(&s->lock);
    slot = pack_slot(s, pack);
    if (slot) {
        fd = *slot;
        goto out;
    }
    snprintf(name, sizeof(name), "%08x.pack", pack);
    fd = openat(s->packs_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fd = -errno;
        seterr("image %s: pack %s: %s", image, name, strerror(errno));
        goto out;
    }
    grown = realloc(s->pack_fds, (s->npack_fds + 2) * sizeof(int));
    if (!grown) {
        close(fd);
        fd = -ENOMEM;
        goto out;
    }
    s->pack_fds = grown;
    s->pack_fds[s->npack_fds++] = (int)pack;
    s->pack_fds[s->npack_fds++] = fd;
out:
    pthread_mutex_unlock(&s->lock);
    return fd;
}

/* Reads the manifest file: the header first, so that a damaged size field
 * or an oversized file is refused before anything large is allocated. */
static int read_manifest_file(struct snapfs_store *s, const char *name, uint8_t **buf,
                              size_t *len, const char **why)
{
    uint8_t hdr[MANIFEST_HDR];
    struct manifest m;
    struct stat st;
    long n;
    int rc = 0, fd = openat(s->images_fd, name, O_RDONLY | O_CLOEXEC);
    *buf = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    *len = (size_t)st.st_size;
    rc = pread_full(fd, hdr, *len < MANIFEST_HDR ? *len : MANIFEST_HDR, 0);
    n = rc == 0 ? manifest_parse(hdr, *len < MANIFEST_HDR ? *len : MANIFEST_HDR, &m, why) : 0;
    if (rc == 0 && *len < MANIFEST_HDR)
        rc = -EIO, *why = "truncated header";
    else if (rc == 0 && n == -1)
        rc = -EIO;
    else if (rc == 0 && *len != manifest_size(m.nchunks))
        rc = -EIO, *why = "file size does not match the chunk count";
    if (rc == 0 && !(*buf = malloc(*len)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = pread_full(fd, *buf, *len, 0);
    if (n > 0)
        manifest_free(&m);
out:
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
    close(fd);
    return rc == -ENODATA ? -EIO : rc;
}

int store_load_manifest(struct snapfs_store *s, const char *name, struct manifest *m,
                        uint8_t digest[HASH_LEN])
{
    uint8_t *buf;
    size_t len = 0;
    const char *why = "truncated";
    long n = -1;
    int rc;
    if (!snapfs_name_valid(name)) {
        seterr("bad image name '%s' (use 1-63 of A-Z a-z 0-9 . _ -)", name);
        return -EINVAL;
    }
    rc = read_manifest_file(s, name, &buf, &len, &why);
    if (rc < 0 && rc != -EIO) {
        seterr("image %s: %s", name, rc == -ENOENT ? "no such image" : strerror(-rc));
        return rc;
    }
    if (rc == 0)
        n = manifest_parse(buf, len, m, &why);
    if (n >= 0 && (size_t)n != len) {
        manifest_free(m);
        n = -1, why = "trailing bytes after the chunk table";
    }
    if (n < 0)
        seterr("image %s: corrupt manifest (%zu bytes): %s", name, len, why);
    else if (digest)
        sha256(buf, len, digest);
    free(buf);
    return n < 0 ? -EIO : 0;
}

int store_write_manifest(struct snapfs_store *s, const char *name, const struct manifest *m)
{
    size_t len = manifest_size(m->nchunks);
    uint8_t *buf = malloc(len);
    int rc;
    if (!buf)
        return -ENOMEM;
    manifest_encode(m, buf);
    rc = write_atomic(s->images_fd, name, buf, len);
    if (rc < 0)
        seterr("image %s: writing manifest: %s", name, strerror(-rc));
    free(buf);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int store_names(struct snapfs_store *s, char ***names)
{
    int fd = dup(s->images_fd), n = 0, cap = 0;
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    *names = NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    rewinddir(dir);
    while ((de = readdir(dir))) {
        if (!snapfs_name_valid(de->d_name))
            continue;               /* ".", "..", temporary files */
        if (n == cap) {
            char **g = realloc(*names, (cap = cap ? cap * 2 : 16) * sizeof(char *));
            if (!g)
                break;
            *names = g;
        }
        (*names)[n++] = strdup(de->d_name);
    }
    closedir(dir);
    if (n)
        qsort(*names, n, sizeof(char *), cmp_names);
    return n;
}

int chunk_decode(const char *image, const struct ref *r, uint32_t idx, uint64_t voff,
                 uint32_t want, const uint8_t *rec, uint8_t *out, ZSTD_DCtx *dctx)
{
    struct record_hdr h;
    const char *why = "truncated";
    size_t got;
    if (record_hdr_parse(rec, RECORD_HDR, &h, &why) < 0)
        goto bad;
    why = "record does not match the manifest";
    if (h.clen != r->clen || h.ulen != want || memcmp(h.hash, r->hash, HASH_LEN) != 0)
        goto bad;
    got = dctx ? ZSTD_decompressDCtx(dctx, out, want, rec + RECORD_HDR, h.clen)
               : ZSTD_decompress(out, want, rec + RECORD_HDR, h.clen);
    if (ZSTD_isError(got)) {
        why = ZSTD_getErrorName(got);
        goto bad;
    }
    why = "decompressed size mismatch";
    if (got != want)
        goto bad;
    return 0;
bad:
    seterr("image %s: chunk %u (disk offset %llu): pack %08x offset %llu: %s", image, idx,
           (unsigned long long)voff, r->pack, (unsigned long long)r->offset, why);
    return -EIO;
}

int chunk_load(struct snapfs_store *s, const char *image, const struct manifest *m,
               uint32_t idx, uint8_t *out, ZSTD_DCtx *dctx)
{
    const struct ref *r = &m->refs[idx];
    uint64_t voff = (uint64_t)idx * m->chunk_size;
    uint8_t *rec;
    int rc, fd;
    if (ref_is_zero(r)) {
        memset(out, 0, chunk_len(m, idx));
        return 0;
    }
    fd = store_pack_fd(s, r->pack, image);
    if (fd < 0)
        return fd;
    rec = malloc(RECORD_HDR + r->clen);
    if (!rec)
        return -ENOMEM;
    rc = pread_full(fd, rec, RECORD_HDR + r->clen, r->offset);
    if (rc == 0)
        rc = chunk_decode(image, r, idx, voff, chunk_len(m, idx), rec, out, dctx);
    else
        seterr("image %s: chunk %u (disk offset %llu): pack %08x offset %llu: %s", image, idx,
               (unsigned long long)voff, r->pack, (unsigned long long)r->offset,
               rc == -ENODATA ? "pack truncated" : strerror(-rc));
    free(rec);
    return rc < 0 ? -EIO : 0;
}

static int cmp_refs(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->pack != y->pack)
        return x->pack < y->pack ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int snapfs_image_info(struct snapfs_store *s, const char *name, struct snapfs_image_info *info)
{
    struct manifest m;
    struct ref *sorted;
    int rc = store_load_manifest(s, name, &m, NULL);
    if (rc < 0)
        return rc;
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", name);
    memcpy(info->parent, m.parent, sizeof(info->parent));
    memcpy(info->label, m.label, sizeof(info->label));
    info->virtual_size = m.virtual_size;
    info->ctime = m.ctime;
    info->chunk_size = m.chunk_size;
    info->nchunks = m.nchunks;
    sorted = malloc((m.nchunks + 1) * sizeof(*sorted));
    if (!sorted) {
        manifest_free(&m);
        return -ENOMEM;
    }
    memcpy(sorted, m.refs, m.nchunks * sizeof(*sorted));
    qsort(sorted, m.nchunks, sizeof(*sorted), cmp_refs);
    for (uint32_t i = 0; i < m.nchunks; i++) {
        if (ref_is_zero(&sorted[i]))
            info->zero_chunks++;
        else if (i == 0 || cmp_refs(&sorted[i], &sorted[i - 1]) != 0)
            info->stored_bytes += RECORD_HDR + sorted[i].clen;
    }
    free(sorted);
    manifest_free(&m);
    return 0;
}

int snapfs_list(struct snapfs_store *s, struct snapfs_image_info **infos)
{
    char **names;
    int n = store_names(s, &names), k = 0;
    if (n < 0)
        return n;
    *infos = calloc(n + 1, sizeof(**infos));
    if (!*infos) {
        free_names(names, n);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        if (snapfs_image_info(s, names[i], &(*infos)[k]) == 0)
            k++;
    free_names(names, n);
    return k;
}

int snapfs_rm(struct snapfs_store *s, const char *name)
{
    if (!snapfs_name_valid(name)) {
        seterr("bad image name '%s'", name);
        return -EINVAL;
    }
    if (unlinkat(s->images_fd, name, 0) < 0) {
        int err = errno;
        seterr("image %s: %s", name, err == ENOENT ? "no such image" : strerror(err));
        return -err;
    }
    return fsync(s->images_fd) < 0 ? -errno : 0;
}

int snapfs_verify(struct snapfs_store *s, const char *name,
                  void (*report)(void *opaque, const char *msg), void *opaque)
{
    struct manifest m;
    uint8_t *buf, hash[HASH_LEN];
    int rc = store_load_manifest(s, name, &m, NULL), problems = 0;
    ZSTD_DCtx *dctx;
    if (rc < 0)
        return rc;
    buf = malloc(m.chunk_size);
    dctx = ZSTD_createDCtx();
    if (!buf || !dctx) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < m.nchunks; i++) {
        if (ref_is_zero(&m.refs[i]))
            continue;
        rc = chunk_load(s, name, &m, i, buf, dctx);
        if (rc == 0) {
            sha256(buf, chunk_len(&m, i), hash);
            if (memcmp(hash, m.refs[i].hash, HASH_LEN) != 0) {
                seterr("image %s: chunk %u (disk offset %llu): content hash mismatch", name, i,
                       (unsigned long long)i * m.chunk_size);
                rc = -EIO;
            }
        }
        if (rc < 0) {
            problems++;
            if (report)
                report(opaque, snapfs_error());
        }
    }
    rc = problems;
out:
    ZSTD_freeDCtx(dctx);
    free(buf);
    manifest_free(&m);
    return rc;
}

static int64_t dir_bytes(int dirfd)
{
    int fd = dup(dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    struct stat st;
    int64_t total = 0;
    if (!dir)
        return -errno;
    rewinddir(dir);
    while ((de = readdir(dir)))
        if (de->d_name[0] != '.' && fstatat(dirfd, de->d_name, &st, 0) == 0)
            total += (int64_t)st.st_blocks * 512;
    closedir(dir);
    return total;
}

int64_t snapfs_store_bytes(struct snapfs_store *s)
{
    int64_t a = dir_bytes(s->packs_fd), b = dir_bytes(s->images_fd);
    return a < 0 ? a : b < 0 ? b : a + b;
}
