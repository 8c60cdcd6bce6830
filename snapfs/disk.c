/* Disks: an image seen through an optional overlay directory:
 *   head        which base image, which generation (replaced atomically)
 *   data.GEN    sparse file, the disk's bytes at their own offsets
 *   map.GEN     allocation map, one bit per 4 KiB block of data.GEN; each map
 *               page has two slots written alternately, so a torn write
 *               leaves the previous version readable.
 * Synchronous read, write, discard and flush live here; aio.c builds the
 * asynchronous path on the same layers. */
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

#define WORDS_PER_PAGE (MAP_PAGE_BITS / 64)

uint64_t disk_blocks(const struct snapfs_disk *d)
{
    return (d->size + SNAPFS_BLOCK_SIZE - 1) / SNAPFS_BLOCK_SIZE;
}

bool layer_test(const struct layer *l, uint64_t block)
{
    return (__atomic_load_n(&l->bits[block / 64], __ATOMIC_ACQUIRE) >> (block % 64)) & 1;
}

void layer_set(struct layer *l, uint64_t first, uint64_t count, bool value)
{
    for (uint64_t b = first; b < first + count; b++) {
        uint64_t mask = UINT64_C(1) << (b % 64);
        if (value)
            __atomic_fetch_or(&l->bits[b / 64], mask, __ATOMIC_RELEASE);
        else
            __atomic_fetch_and(&l->bits[b / 64], ~mask, __ATOMIC_RELEASE);
        l->page_dirty[b / MAP_PAGE_BITS] = 1;
    }
}

/* ---- the allocation map ---- */

static void bits_to_bytes(const uint64_t *words, uint8_t *out)
{
    for (uint32_t w = 0; w < WORDS_PER_PAGE; w++) {
        uint64_t v = __atomic_load_n(&words[w], __ATOMIC_ACQUIRE);
        for (int k = 0; k < 8; k++)
            out[w * 8 + k] = (uint8_t)(v >> (8 * k));
    }
}

static void bytes_to_bits(const uint8_t *in, uint64_t *words)
{
    for (uint32_t w = 0; w < WORDS_PER_PAGE; w++) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v |= (uint64_t)in[w * 8 + k] << (8 * k);
        words[w] = v;
    }
}

static uint64_t slot_offset(uint32_t page, unsigned slot)
{
    return (uint64_t)MAP_PAGE * (1 + 2 * (uint64_t)page + slot);
}

int layer_snapshot_map(struct layer *l, uint8_t **pages, uint64_t **offsets, uint32_t *npages)
{
    uint32_t n = 0, k = 0;
    uint8_t bits[MAP_PAGE - MAP_SLOT_HDR];
    for (uint32_t i = 0; i < l->npages; i++)
        n += l->page_dirty[i];
    *npages = n;
    *pages = malloc((size_t)(n ? n : 1) * MAP_PAGE);
    *offsets = malloc((n ? n : 1) * sizeof(uint64_t));
    if (!*pages || !*offsets) {
        free(*pages);
        free(*offsets);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < l->npages; i++) {
        if (!l->page_dirty[i])
            continue;
        l->page_dirty[i] = 0;
        l->page_slot[i] ^= 1;       /* never overwrite the newest version */
        bits_to_bytes(&l->bits[(size_t)i * WORDS_PER_PAGE], bits);
        map_slot_encode(*pages + (size_t)k * MAP_PAGE, i, ++l->seq, bits);
        (*offsets)[k++] = slot_offset(i, l->page_slot[i]);
    }
    return 0;
}

static int map_create(int fd, uint64_t gen, uint64_t nblocks, uint32_t npages)
{
    struct map_hdr h = { .gen = gen, .nblocks = nblocks, .npages = npages };
    uint8_t *buf = calloc(1, MAP_PAGE), zero[MAP_PAGE - MAP_SLOT_HDR] = { 0 };
    int rc;
    if (!buf)
        return -ENOMEM;
    map_hdr_encode(&h, buf);
    rc = pwrite_full(fd, buf, MAP_PAGE, 0);
    for (uint32_t i = 0; rc == 0 && i < npages; i++) {
        map_slot_encode(buf, i, 0, zero);
        rc = pwrite_full(fd, buf, MAP_PAGE, slot_offset(i, 0));
        if (rc == 0)
            rc = pwrite_full(fd, buf, MAP_PAGE, slot_offset(i, 1));
    }
    free(buf);
    return rc;
}

/* Picks the valid slot with the higher sequence number of every page. */
static int map_load(struct layer *l, const char *ovl)
{
    uint8_t *buf = malloc(2 * MAP_PAGE);
    int rc = buf ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < l->npages; i++) {
        uint64_t seq[2] = { 0, 0 };
        const uint8_t *bits[2] = { NULL, NULL };
        bool ok[2];
        rc = pread_full(l->map_fd, buf, 2 * MAP_PAGE, slot_offset(i, 0));
        if (rc < 0) {
            seterr("overlay %s: map.%llu truncated at page %u (offset %llu)", ovl,
                   (unsigned long long)l->gen, i, (unsigned long long)slot_offset(i, 0));
            break;
        }
        for (unsigned s = 0; s < 2; s++)
            ok[s] = map_slot_parse(buf + s * MAP_PAGE, MAP_PAGE, i, &seq[s], &bits[s], NULL) > 0;
        if (!ok[0] && !ok[1]) {
            seterr("overlay %s: map.%llu page %u (offset %llu): both copies corrupt", ovl,
                   (unsigned long long)l->gen, i, (unsigned long long)slot_offset(i, 0));
            rc = -EIO;
            break;
        }
        unsigned pick = !ok[0] ? 1 : !ok[1] ? 0 : seq[1] > seq[0];
        l->page_slot[i] = (uint8_t)pick;
        if (seq[pick] > l->seq)
            l->seq = seq[pick];
        bytes_to_bits(bits[pick], &l->bits[(size_t)i * WORDS_PER_PAGE]);
    }
    free(buf);
    return rc;
}

static int map_check_header(struct layer *l, uint64_t nblocks, const char *ovl)
{
    uint8_t buf[MAP_PAGE];
    struct map_hdr h;
    const char *why = "truncated";
    int rc = pread_full(l->map_fd, buf, MAP_PAGE, 0);
    if (rc == 0 && map_hdr_parse(buf, MAP_PAGE, &h, &why) < 0)
        rc = -EIO;
    else if (rc == 0 && (h.gen != l->gen || h.nblocks != nblocks))
        rc = -EIO, why = "map does not belong to this overlay generation";
    if (rc < 0)
        seterr("overlay %s: map.%llu header (offset 0): %s", ovl, (unsigned long long)l->gen,
               rc == -ENODATA || rc == -EIO ? why : strerror(-rc));
    return rc < 0 ? -EIO : 0;
}

void layer_close(struct layer *l)
{
    if (!l)
        return;
    if (l->data_fd >= 0) close(l->data_fd);
    if (l->map_fd >= 0) close(l->map_fd);
    free(l->bits);
    free(l->page_dirty);
    free(l->page_slot);
    free(l);
}

static int layer_open_files(int dirfd, struct layer *l, bool create, uint64_t size)
{
    char name[48];
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    snprintf(name, sizeof(name), "data.%llu", (unsigned long long)l->gen);
    l->data_fd = openat(dirfd, name, flags, 0644);
    if (l->data_fd < 0)
        return -errno;
    if (create && ftruncate(l->data_fd, (off_t)size) < 0)
        return -errno;
    snprintf(name, sizeof(name), "map.%llu", (unsigned long long)l->gen);
    l->map_fd = openat(dirfd, name, flags, 0644);
    return l->map_fd < 0 ? -errno : 0;
}

int layer_open(int dirfd, uint64_t gen, uint64_t size, bool create, const char *ovl,
               struct layer **out)
{
    struct layer *l = calloc(1, sizeof(*l));
    uint64_t nblocks = (size + SNAPFS_BLOCK_SIZE - 1) / SNAPFS_BLOCK_SIZE;
    int rc = -ENOMEM;
    *out = NULL;
    if (!l)
        return rc;
    l->gen = gen;
    l->data_fd = l->map_fd = -1;
    l->npages = (uint32_t)((nblocks + MAP_PAGE_BITS - 1) / MAP_PAGE_BITS);
    l->bits = calloc((size_t)l->npages * WORDS_PER_PAGE, sizeof(uint64_t));
    l->page_dirty = calloc(l->npages, 1);
    l->page_slot = calloc(l->npages, 1);
    if (!l->bits || !l->page_dirty || !l->page_slot)
        goto fail;
    rc = layer_open_files(dirfd, l, create, size);
    if (rc < 0) {
        seterr("overlay %s: generation %llu: %s", ovl, (unsigned long long)gen, strerror(-rc));
        goto fail;
    }
    rc = create ? map_create(l->map_fd, gen, nblocks, l->npages)
                : map_check_header(l, nblocks, ovl);
    if (rc == 0 && create && (fsync(l->map_fd) < 0 || fsync(l->data_fd) < 0))
        rc = -errno;
    if (rc == 0 && !create)
        rc = map_load(l, ovl);
    if (rc < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    layer_close(l);
    return rc;
}

int ovl_write_head(struct snapfs_disk *d, uint64_t gen)
{
    struct ovl_head h = { .gen = gen, .virtual_size = d->size, .block_size = SNAPFS_BLOCK_SIZE };
    uint8_t buf[OVL_HEAD_SIZE];
    int rc;
    snprintf(h.base, sizeof(h.base), "%s", d->image);
    memcpy(h.base_digest, d->digest, HASH_LEN);
    ovl_head_encode(&h, buf);
    rc = write_atomic(d->ovl_fd, "head", buf, sizeof(buf));
    if (rc < 0)
        seterr("overlay %s: writing head: %s", d->ovl_path, strerror(-rc));
    return rc;
}

/* Largest disk an overlay on image m may have: what a capture of it can hold. */
static uint64_t overlay_size_max(const struct manifest *m)
{
    return (uint64_t)MAX_CHUNKS * m->chunk_size;
}

static int overlay_size_check(const struct manifest *m, const char *name, const char *ovl,
                              uint64_t size)
{
    if (size >= m->virtual_size && size % 512 == 0 && size <= overlay_size_max(m))
        return 0;
    seterr("overlay %s: size %llu: must be a multiple of 512 from image %s's %llu bytes "
           "to %llu", ovl, (unsigned long long)size, name,
           (unsigned long long)m->virtual_size, (unsigned long long)overlay_size_max(m));
    return -EINVAL;
}

int snapfs_overlay_create(struct snapfs_store *s, const char *name, const char *ovl_path)
{
    return snapfs_overlay_create_sized(s, name, ovl_path, 0);
}

int snapfs_overlay_create_sized(struct snapfs_store *s, const char *name, const char *ovl_path,
                                uint64_t size)
{
    struct snapfs_disk d = { .store = s, .ovl_fd = -1, .ovl_path = (char *)ovl_path };
    struct layer *l = NULL;
    int rc = store_load_manifest(s, name, &d.man, d.digest);
    if (rc < 0)
        return rc;
    snprintf(d.image, sizeof(d.image), "%s", name);
    d.size = size ? size : d.man.virtual_size;
    rc = overlay_size_check(&d.man, name, ovl_path, d.size);
    if (rc < 0)
        goto out;
    if (mkdir(ovl_path, 0755) < 0 ||
        (d.ovl_fd = open(ovl_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        seterr("overlay %s: %s", ovl_path, strerror(errno));
        goto out;
    }
    rc = layer_open(d.ovl_fd, 1, d.size, true, ovl_path, &l);
    if (rc == 0)
        rc = ovl_write_head(&d, 1);
out:
    layer_close(l);
    if (d.ovl_fd >= 0)
        close(d.ovl_fd);
    manifest_free(&d.man);
    return rc;
}

/* Removes files of other generations: leftovers of a capture cut short. */
static void ovl_cleanup(int dirfd, uint64_t gen)
{
    int fd = dup(dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    char keep_data[48], keep_map[48];
    if (!dir)
        return;
    snprintf(keep_data, sizeof(keep_data), "data.%llu", (unsigned long long)gen);
    snprintf(keep_map, sizeof(keep_map), "map.%llu", (unsigned long long)gen);
    rewinddir(dir);
    while ((de = readdir(dir))) {
        bool ours = !strncmp(de->d_name, "data.", 5) || !strncmp(de->d_name, "map.", 4) ||
                    !strncmp(de->d_name, ".tmp.", 5);
        if (ours && strcmp(de->d_name, keep_data) && strcmp(de->d_name, keep_map))
            unlinkat(dirfd, de->d_name, 0);
    }
    closedir(dir);
}

static int ovl_read_head(int dirfd, const char *ovl, struct ovl_head *h)
{
    uint8_t *buf;
    size_t len;
    const char *why = "truncated";
    int rc = read_file(dirfd, "head", 4096, &buf, &len);
    if (rc < 0) {
        seterr("overlay %s: head: %s", ovl, strerror(-rc));
        return rc;
    }
    if (ovl_head_parse(buf, len, h, &why) < 0 || len != OVL_HEAD_SIZE) {
        seterr("overlay %s: head (offset 0, %zu bytes): %s", ovl, len,
               len != OVL_HEAD_SIZE && len >= OVL_HEAD_SIZE ? "wrong size" : why);
        rc = -EIO;
    }
    free(buf);
    return rc;
}

static int disk_open_overlay(struct snapfs_disk *d, const char *ovl)
{
    struct ovl_head h;
    uint8_t digest[HASH_LEN];
    int rc;
    d->ovl_path = strdup(ovl);
    d->ovl_fd = open(ovl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!d->ovl_path || d->ovl_fd < 0)
        goto fail_errno;
    d->ovl_lock_fd = openat(d->ovl_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->ovl_lock_fd < 0)
        goto fail_errno;
    if (flock(d->ovl_lock_fd, LOCK_EX | LOCK_NB) < 0) {
        seterr("overlay %s: in use by another process", ovl);
        return -EBUSY;
    }
    rc = ovl_read_head(d->ovl_fd, ovl, &h);
    if (rc < 0)
        return rc;
    rc = store_load_manifest(d->store, h.base, &d->man, digest);
    if (rc < 0) {
        seterr("overlay %s: base: %s", ovl, snapfs_error());
        return rc;
    }
    if (memcmp(digest, h.base_digest, HASH_LEN)) {
        seterr("overlay %s: base image %s has changed since the overlay was made", ovl, h.base);
        return -ESTALE;
    }
    if (h.virtual_size < d->man.virtual_size || h.virtual_size > overlay_size_max(&d->man)) {
        seterr("overlay %s: head (offset 24): virtual size %llu does not fit base image %s "
               "(%llu bytes, chunk size %u)", ovl, (unsigned long long)h.virtual_size, h.base,
               (unsigned long long)d->man.virtual_size, d->man.chunk_size);
        return -EIO;
    }
    snprintf(d->image, sizeof(d->image), "%s", h.base);
    memcpy(d->digest, digest, HASH_LEN);
    d->size = h.virtual_size;
    ovl_cleanup(d->ovl_fd, h.gen);
    return layer_open(d->ovl_fd, h.gen, d->size, false, ovl, &d->active);
fail_errno:
    rc = -errno;
    seterr("overlay %s: %s", ovl, strerror(errno));
    return rc;
}

struct snapfs_disk *snapfs_disk_open(struct snapfs_store *s, const char *name,
                                     const char *ovl_path, const struct snapfs_disk_opts *opts)
{
    struct snapfs_disk *d = calloc(1, sizeof(*d));
    uint64_t cache = opts && opts->cache_bytes ? opts->cache_bytes : UINT64_C(256) << 20;
    int rc = -ENOMEM;
    if (!d)
        goto fail;
    d->store = s;
    d->ovl_fd = d->ovl_lock_fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    d->ring_entries = opts && opts->ring_entries ? opts->ring_entries : 256;
    if (ovl_path) {
        rc = disk_open_overlay(d, ovl_path);
    } else {
        rc = store_load_manifest(s, name ? name : "", &d->man, d->digest);
        snprintf(d->image, sizeof(d->image), "%s", name ? name : "");
        d->size = d->man.virtual_size;
    }
    if (rc < 0)
        goto fail;
    d->cache = cache_new(cache, d->man.chunk_size);
    rc = d->cache ? 0 : -ENOMEM;
    if (rc == 0)
        rc = aio_init(d);
    if (rc == 0)
        return d;
fail:
    snapfs_disk_close(d);
    errno = -rc;
    return NULL;
}

void snapfs_disk_close(struct snapfs_disk *d)
{
    if (!d)
        return;
    capture_fini(d);
    aio_fini(d);
    layer_close(d->active);
    layer_close(d->frozen);
    cache_free(d->cache);
    for (int i = 0; i < d->ndctx; i++)
        ZSTD_freeDCtx((ZSTD_DCtx *)d->dctx_pool[i]);
    free(d->dctx_pool);
    manifest_free(&d->man);
    if (d->ovl_fd >= 0) close(d->ovl_fd);
    if (d->ovl_lock_fd >= 0) close(d->ovl_lock_fd);
    free(d->ovl_path);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

uint64_t snapfs_disk_size(const struct snapfs_disk *d) { return d->size; }
const char *snapfs_disk_image(const struct snapfs_disk *d) { return d->image; }

struct ZSTD_DCtx_s *disk_dctx_get(struct snapfs_disk *d)
{
    ZSTD_DCtx *dctx = NULL;
    pthread_mutex_lock(&d->lock);
    if (d->ndctx > 0)
        dctx = (ZSTD_DCtx *)d->dctx_pool[--d->ndctx];
    pthread_mutex_unlock(&d->lock);
    return dctx ? dctx : ZSTD_createDCtx();
}

void disk_dctx_put(struct snapfs_disk *d, struct ZSTD_DCtx_s *dctx)
{
    struct ZSTD_DCtx_s **grown;
    if (!dctx)
        return;
    pthread_mutex_lock(&d->lock);
    if (d->ndctx < 64) {
        grown = realloc(d->dctx_pool, (d->ndctx + 1) * sizeof(*grown));
        if (grown) {
            d->dctx_pool = grown;
            d->dctx_pool[d->ndctx++] = dctx;
            dctx = NULL;
        }
    }
    pthread_mutex_unlock(&d->lock);
    ZSTD_freeDCtx((ZSTD_DCtx *)dctx);
}

/* ---- reading ---- */

static int read_chunk_part(struct snapfs_disk *d, uint32_t idx, uint32_t off, uint8_t *dst,
                           size_t len)
{
    const struct ref *r = &d->man.refs[idx];
    uint8_t *tmp;
    ZSTD_DCtx *dctx;
    int rc;
    if (ref_is_zero(r)) {
        memset(dst, 0, len);
        return 0;
    }
    if (cache_copy(d->cache, r, off, dst, len))
        return 0;
    tmp = malloc(d->man.chunk_size);
    if (!tmp)
        return -ENOMEM;
    dctx = disk_dctx_get(d);
    rc = chunk_load(d->store, d->image, &d->man, idx, tmp, dctx);
    disk_dctx_put(d, dctx);
    if (rc == 0) {
        cache_insert(d->cache, r, tmp, chunk_len(&d->man, idx));
        memcpy(dst, tmp + off, len);
    }
    free(tmp);
    return rc;
}

size_t disk_base_len(const struct snapfs_disk *d, size_t len, uint64_t off)
{
    uint64_t vs = d->man.virtual_size;
    if (off >= vs)
        return 0;
    return len < vs - off ? len : (size_t)(vs - off);
}

int disk_read_base(struct snapfs_disk *d, uint8_t *buf, size_t len, uint64_t off)
{
    uint32_t cs = d->man.chunk_size;
    size_t inside = disk_base_len(d, len, off);
    memset(buf + inside, 0, len - inside);        /* a grown disk: zeros past the image */
    len = inside;
    while (len) {
        uint32_t idx = (uint32_t)(off / cs), in = (uint32_t)(off % cs);
        size_t n = cs - in < len ? cs - in : len;
        int rc = read_chunk_part(d, idx, in, buf, n);
        if (rc < 0)
            return rc;
        buf += n, off += n, len -= n;
    }
    return 0;
}

/* 0: image, 1: active layer, 2: frozen layer. */
static int block_source(const struct snapfs_disk *d, uint64_t block)
{
    if (d->active && layer_test(d->active, block))
        return 1;
    if (d->frozen && layer_test(d->frozen, block))
        return 2;
    return 0;
}

static int read_layer(struct snapfs_disk *d, const struct layer *l, uint8_t *buf, size_t len,
                      uint64_t off)
{
    int rc = pread_full(l->data_fd, buf, len, off);
    if (rc < 0)
        seterr("overlay %s: data.%llu at offset %llu: %s", d->ovl_path,
               (unsigned long long)l->gen, (unsigned long long)off,
               rc == -ENODATA ? "file truncated" : strerror(-rc));
    return rc;
}

int disk_read(struct snapfs_disk *d, uint8_t *buf, size_t len, uint64_t off)
{
    uint64_t end = off + len;
    while (off < end) {
        uint64_t block = off / SNAPFS_BLOCK_SIZE, run_end;
        int src = block_source(d, block), rc;
        run_end = (block + 1) * SNAPFS_BLOCK_SIZE;
        while (run_end < end && block_source(d, run_end / SNAPFS_BLOCK_SIZE) == src)
            run_end += SNAPFS_BLOCK_SIZE;
        if (run_end > end)
            run_end = end;
        if (src == 0)
            rc = disk_read_base(d, buf, run_end - off, off);
        else
            rc = read_layer(d, src == 1 ? d->active : d->frozen, buf, run_end - off, off);
        if (rc < 0)
            return rc;
        buf += run_end - off;
        off = run_end;
    }
    return 0;
}

static int check_range(const struct snapfs_disk *d, uint64_t len, uint64_t off)
{
    if (off > d->size || len > d->size - off) {
        seterr("image %s: access [%llu, +%llu) beyond the disk's %llu bytes", d->image,
               (unsigned long long)off, (unsigned long long)len, (unsigned long long)d->size);
        return -EINVAL;
    }
    return 0;
}

int snapfs_pread(struct snapfs_disk *d, void *buf, size_t len, uint64_t off)
{
    int rc = check_range(d, len, off);
    return rc < 0 ? rc : disk_read(d, buf, len, off);
}

/* ---- writing ---- */

static uint64_t block_end(const struct snapfs_disk *d, uint64_t block)
{
    uint64_t e = (block + 1) * SNAPFS_BLOCK_SIZE;
    return e < d->size ? e : d->size;
}

/* Writes [off, off + len) of one block that it does not cover whole: in
 * place if the block is already in the overlay, else merged with the block's
 * current content. */
static int write_partial(struct snapfs_disk *d, const uint8_t *src, size_t len, uint64_t off)
{
    uint64_t block = off / SNAPFS_BLOCK_SIZE, start = block * SNAPFS_BLOCK_SIZE;
    size_t blen = block_end(d, block) - start;
    uint8_t *tmp;
    int rc;
    if (layer_test(d->active, block))
        return pwrite_full(d->active->data_fd, src, len, off);
    tmp = malloc(blen);
    if (!tmp)
        return -ENOMEM;
    rc = disk_read(d, tmp, blen, start);
    if (rc == 0) {
        memcpy(tmp + (off - start), src, len);
        rc = pwrite_full(d->active->data_fd, tmp, blen, start);
    }
    free(tmp);
    return rc;
}

static int write_check(const struct snapfs_disk *d, uint64_t len, uint64_t off)
{
    if (!d->active) {
        seterr("image %s: read-only (open it through an overlay to write)", d->image);
        return -EROFS;
    }
    return check_range(d, len, off);
}

int snapfs_pwrite(struct snapfs_disk *d, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *src = buf;
    uint64_t end = off + len, pos = off;
    int rc = write_check(d, len, off);
    if (rc < 0 || len == 0)
        return rc;
    while (pos < end && rc == 0) {
        uint64_t block = pos / SNAPFS_BLOCK_SIZE, bend = block_end(d, block);
        uint64_t stop = end < bend ? end : bend;
        if (pos == block * SNAPFS_BLOCK_SIZE && stop == bend) {
            while (stop < end && end - stop >= SNAPFS_BLOCK_SIZE)
                stop += SNAPFS_BLOCK_SIZE;     /* run of whole blocks */
            if (stop < end && end == d->size)
                stop = end;
            rc = pwrite_full(d->active->data_fd, src + (pos - off), stop - pos, pos);
        } else {
            rc = write_partial(d, src + (pos - off), stop - pos, pos);
        }
        pos = stop;
    }
    if (rc < 0) {
        seterr("overlay %s: write at offset %llu: %s", d->ovl_path, (unsigned long long)off,
               strerror(-rc));
        return rc;
    }
    pthread_mutex_lock(&d->lock);
    layer_set(d->active, off / SNAPFS_BLOCK_SIZE, (end - 1) / SNAPFS_BLOCK_SIZE - off / SNAPFS_BLOCK_SIZE + 1, true);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* Whole blocks inside [off, off + len): *first and *count. */
static void whole_blocks(const struct snapfs_disk *d, uint64_t len, uint64_t off,
                         uint64_t *first, uint64_t *count)
{
    uint64_t end = off + len;
    uint64_t a = (off + SNAPFS_BLOCK_SIZE - 1) / SNAPFS_BLOCK_SIZE;
    uint64_t b = end == d->size ? disk_blocks(d) : end / SNAPFS_BLOCK_SIZE;
    *first = a;
    *count = b > a ? b - a : 0;
}

int snapfs_discard(struct snapfs_disk *d, uint64_t len, uint64_t off)
{
    uint64_t first, count;
    int rc = write_check(d, len, off);
    if (rc < 0)
        return rc;
    whole_blocks(d, len, off, &first, &count);
    if (count == 0)
        return 0;
    pthread_mutex_lock(&d->lock);
    layer_set(d->active, first, count, false);
    pthread_mutex_unlock(&d->lock);
    fallocate(d->active->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              (off_t)(first * SNAPFS_BLOCK_SIZE), (off_t)(count * SNAPFS_BLOCK_SIZE));
    return 0;
}

/* ---- write-zeroes ---- */

static const uint8_t zero_block[SNAPFS_BLOCK_SIZE];

void zero_plan_make(const struct snapfs_disk *d, uint64_t len, uint64_t off,
                    struct zero_plan *p)
{
    uint64_t end = off + len, head_end, whole_end;
    whole_blocks(d, len, off, &p->first, &p->count);
    head_end = p->first * SNAPFS_BLOCK_SIZE;
    head_end = head_end < end ? head_end : end;
    p->head_len = head_end - off;
    whole_end = p->count ? p->first * SNAPFS_BLOCK_SIZE + zero_plan_bytes(d, p->first, p->count)
                         : head_end;
    p->tail_off = whole_end;
    p->tail_len = end - whole_end;
}

uint64_t zero_plan_bytes(const struct snapfs_disk *d, uint64_t first, uint64_t count)
{
    uint64_t off = first * SNAPFS_BLOCK_SIZE, len = count * SNAPFS_BLOCK_SIZE;
    return len < d->size - off ? len : d->size - off;
}

bool disk_below_zero(const struct snapfs_disk *d, uint64_t block)
{
    uint64_t off = block * SNAPFS_BLOCK_SIZE;
    if (d->frozen && layer_test(d->frozen, block))
        return false;
    return off >= d->man.virtual_size || ref_is_zero(&d->man.refs[off / d->man.chunk_size]);
}

void disk_zeroed_bits(struct snapfs_disk *d, uint64_t first, uint64_t count, bool below_zero)
{
    pthread_mutex_lock(&d->lock);
    for (uint64_t b = first; b < first + count; b++)
        if (disk_below_zero(d, b) == below_zero)
            layer_set(d->active, b, 1, !below_zero);
    pthread_mutex_unlock(&d->lock);
}

int zero_fill(int fd, uint64_t len, uint64_t off)
{
    size_t n = len < (UINT64_C(1) << 20) ? (size_t)len : (size_t)1 << 20;
    uint8_t *buf = calloc(1, n ? n : 1);
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0 && len) {
        size_t k = len < n ? (size_t)len : n;
        rc = pwrite_full(fd, buf, k, off);
        off += k, len -= k;
    }
    free(buf);
    return rc;
}

/* Zeroes the whole blocks [first, first + count) in the data file (a hole, or
 * written zeros where holes are not supported), then updates their bits: a
 * bit is set only once its block's zeros are in the file. */
static int zero_whole_blocks(struct snapfs_disk *d, uint64_t first, uint64_t count)
{
    uint64_t off = first * SNAPFS_BLOCK_SIZE, len = zero_plan_bytes(d, first, count);
    int rc = 0;
    if (fallocate(d->active->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) < 0)
        rc = errno == EOPNOTSUPP ? zero_fill(d->active->data_fd, len, off) : -errno;
    if (rc < 0)
        return rc;
    disk_zeroed_bits(d, first, count, true);
    disk_zeroed_bits(d, first, count, false);
    return 0;
}

int snapfs_write_zeroes(struct snapfs_disk *d, uint64_t len, uint64_t off)
{
    struct zero_plan p;
    int rc = write_check(d, len, off);
    if (rc < 0 || len == 0)
        return rc;
    zero_plan_make(d, len, off, &p);
    if (p.head_len)
        rc = snapfs_pwrite(d, zero_block, p.head_len, off);
    if (rc == 0 && p.tail_len)
        rc = snapfs_pwrite(d, zero_block, p.tail_len, p.tail_off);
    if (rc == 0 && p.count) {
        rc = zero_whole_blocks(d, p.first, p.count);
        if (rc < 0)
            seterr("overlay %s: write-zeroes at offset %llu: %s", d->ovl_path,
                   (unsigned long long)off, strerror(-rc));
    }
    return rc;
}

static void redirty(struct layer *l, const uint64_t *offsets, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        l->page_dirty[(offsets[k] / MAP_PAGE - 1) / 2] = 1;
}

int layer_flush(struct snapfs_disk *d, struct layer *l)
{
    uint8_t *pages;
    uint64_t *offsets;
    uint32_t n;
    int rc = fdatasync(l->data_fd) < 0 ? -errno : 0;
    if (rc < 0)
        goto fail;
    pthread_mutex_lock(&d->lock);
    rc = layer_snapshot_map(l, &pages, &offsets, &n);
    pthread_mutex_unlock(&d->lock);
    if (rc < 0)
        goto fail;
    for (uint32_t k = 0; rc == 0 && k < n; k++)
        rc = pwrite_full(l->map_fd, pages + (size_t)k * MAP_PAGE, MAP_PAGE, offsets[k]);
    if (rc == 0 && n && fdatasync(l->map_fd) < 0)
        rc = -errno;
    if (rc < 0) {
        pthread_mutex_lock(&d->lock);
        redirty(l, offsets, n);
        pthread_mutex_unlock(&d->lock);
    }
    free(pages);
    free(offsets);
fail:
    if (rc < 0)
        seterr("overlay %s: flush: %s", d->ovl_path, strerror(-rc));
    return rc;
}

int snapfs_flush(struct snapfs_disk *d)
{
    int rc;
    if (!d->active)
        return 0;
    while ((rc = snapfs_capture_poll(d)) == 1)
        usleep(1000);
    if (d->frozen) {
        seterr("overlay %s: flush impossible after a failed capture; reopen the disk",
               d->ovl_path);
        return -EIO;
    }
    return layer_flush(d, d->active);
}

/* ---- checking an overlay offline ---- */

static void report_line(void (*report)(void *, const char *), void *opaque, int *problems)
{
    (*problems)++;
    if (report)
        report(opaque, snapfs_error());
}

int snapfs_overlay_verify(const char *ovl, void (*report)(void *, const char *), void *opaque)
{
    struct ovl_head h;
    struct layer *l = NULL;
    struct stat st;
    int problems = 0, rc, dirfd = open(ovl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        seterr("overlay %s: %s", ovl, strerror(errno));
        return -errno;
    }
    rc = ovl_read_head(dirfd, ovl, &h);
    if (rc == 0)
        rc = layer_open(dirfd, h.gen, h.virtual_size, false, ovl, &l);
    if (rc < 0) {
        report_line(report, opaque, &problems);
    } else if (fstat(l->data_fd, &st) == 0 && (uint64_t)st.st_size < h.virtual_size) {
        seterr("overlay %s: data.%llu is %llu bytes, short of the disk's %llu", ovl,
               (unsigned long long)h.gen, (unsigned long long)st.st_size,
               (unsigned long long)h.virtual_size);
        report_line(report, opaque, &problems);
    }
    layer_close(l);
    close(dirfd);
    return problems;
}
