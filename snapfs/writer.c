/* Building images: chunks are hashed, looked up among the chunks of every
 * image in the store, and only new ones are compressed (on several threads)
 * into a fresh pack. The manifest is written last, atomically, so a crash at
 * any point leaves the store's earlier images as they were. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "internal.h"

struct dedup {                     /* open-addressed table of known chunks */
    struct ref *slots;
    uint8_t *used;
    size_t mask;
};

struct build {
    struct snapfs_store *store;
    const char *name;
    struct manifest *m;
    chunk_fill_fn fill;
    void *ctx;
    int level;
    pthread_mutex_t lock;          /* dedup table, pack_end */
    struct dedup dd;
    int pack_fd;
    uint32_t pack_id;
    uint64_t pack_end;
    atomic_uint next;
    atomic_int error;
    char errmsg[512];
};

static size_t dd_index(const struct dedup *dd, const uint8_t *hash)
{
    uint64_t k;
    memcpy(&k, hash, sizeof(k));
    return (size_t)k & dd->mask;
}

static const struct ref *dd_find(const struct dedup *dd, const uint8_t *hash)
{
    for (size_t i = dd_index(dd, hash);; i = (i + 1) & dd->mask) {
        if (!dd->used[i])
            return NULL;
        if (memcmp(dd->slots[i].hash, hash, HASH_LEN) == 0)
            return &dd->slots[i];
    }
}

/* The table is sized for every insert up front, so it never fills. */
static void dd_add(struct dedup *dd, const struct ref *r)
{
    size_t i = dd_index(dd, r->hash);
    while (dd->used[i]) {
        if (memcmp(dd->slots[i].hash, r->hash, HASH_LEN) == 0)
            return;
        i = (i + 1) & dd->mask;
    }
    dd->used[i] = 1;
    dd->slots[i] = *r;
}

/* Loads the chunk references of every readable manifest of the store. */
static int dd_init(struct build *b)
{
    char **names;
    int n = store_names(b->store, &names);
    struct manifest *all;
    size_t total = b->m->nchunks, cap = 16;
    if (n < 0)
        return n;
    all = calloc(n + 1, sizeof(*all));
    if (!all) {
        free_names(names, n);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        if (store_load_manifest(b->store, names[i], &all[i], NULL) == 0)
            total += all[i].nchunks;
    while (cap < 2 * total)
        cap *= 2;
    b->dd.mask = cap - 1;
    b->dd.slots = calloc(cap, sizeof(*b->dd.slots));
    b->dd.used = calloc(cap, 1);
    for (int i = 0; i < n; i++) {
        for (uint32_t k = 0; b->dd.used && b->dd.slots && k < all[i].nchunks; k++)
            if (!ref_is_zero(&all[i].refs[k]))
                dd_add(&b->dd, &all[i].refs[k]);
        manifest_free(&all[i]);
    }
    free(all);
    free_names(names, n);
    seterr("%s", "");
    return b->dd.slots && b->dd.used ? 0 : -ENOMEM;
}

static int pack_create(struct build *b)
{
    uint8_t hdr[PACK_HDR] = "SNAPPACK";
    char name[32];
    for (int tries = 0; tries < 100; tries++) {
        if (getrandom(&b->pack_id, sizeof(b->pack_id), 0) != sizeof(b->pack_id))
            return -EIO;
        if (b->pack_id == 0)
            continue;
        snprintf(name, sizeof(name), "%08x.pack", b->pack_id);
        b->pack_fd = openat(b->store->packs_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (b->pack_fd >= 0)
            break;
        if (errno != EEXIST)
            return -errno;
    }
    if (b->pack_fd < 0)
        return -EEXIST;
    hdr[8] = 1;                     /* version, little-endian u32 */
    memcpy(hdr + 12, &b->pack_id, 4);
    b->pack_end = PACK_HDR;
    return pwrite_full(b->pack_fd, hdr, PACK_HDR, 0);
}

static void build_fail(struct build *b, int rc)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&b->error, &none, rc))
        snprintf(b->errmsg, sizeof(b->errmsg), "%s", snapfs_error());
}

/* Stores one non-zero chunk (or finds it stored); fills *r. */
static int store_chunk(struct build *b, ZSTD_CCtx *cctx, const uint8_t *data, size_t len,
                       uint8_t *rec, size_t cap, struct ref *r)
{
    const struct ref *known;
    struct record_hdr h = { .ulen = (uint32_t)len };
    uint64_t off;
    size_t clen;
    sha256(data, len, h.hash);
    pthread_mutex_lock(&b->lock);
    known = dd_find(&b->dd, h.hash);
    if (known)
        *r = *known;
    pthread_mutex_unlock(&b->lock);
    if (known)
        return 0;
    clen = ZSTD_compress2(cctx, rec + RECORD_HDR, cap - RECORD_HDR, data, len);
    if (ZSTD_isError(clen)) {
        seterr("image %s: zstd: %s", b->name, ZSTD_getErrorName(clen));
        return -EIO;
    }
    h.clen = (uint32_t)clen;
    record_hdr_encode(&h, rec);
    pthread_mutex_lock(&b->lock);
    known = dd_find(&b->dd, h.hash);
    if (known) {
        *r = *known;
    } else {
        memcpy(r->hash, h.hash, HASH_LEN);
        r->pack = b->pack_id, r->clen = h.clen, r->offset = off = b->pack_end;
        b->pack_end += RECORD_HDR + clen;
        dd_add(&b->dd, r);
    }
    pthread_mutex_unlock(&b->lock);
    if (known)
        return 0;
    int rc = pwrite_full(b->pack_fd, rec, RECORD_HDR + clen, off);
    if (rc < 0)
        seterr("image %s: writing pack %08x: %s", b->name, b->pack_id, strerror(-rc));
    return rc;
}

static void *build_worker(void *arg)
{
    struct build *b = arg;
    uint32_t cs = b->m->chunk_size, idx;
    size_t cap = RECORD_HDR + ZSTD_compressBound(cs);
    uint8_t *buf = malloc(cs), *rec = malloc(cap);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    int rc = -ENOMEM;
    if (!buf || !rec || !cctx)
        goto out;
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, b->level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    rc = 0;
    while (rc == 0 && !atomic_load(&b->error) && (idx = atomic_fetch_add(&b->next, 1)) < b->m->nchunks) {
        struct ref *r = &b->m->refs[idx];
        size_t len = chunk_len(b->m, idx);
        const uint8_t *data = NULL;
        bool reused = false;
        rc = b->fill(b->ctx, idx, buf, len, &data, r, &reused);
        if (rc < 0 || reused)
            continue;
        if (!data)
            data = buf;
        if (all_zero(data, len))
            memset(r, 0, sizeof(*r));
        else
            rc = store_chunk(b, cctx, data, len, rec, cap, r);
    }
out:
    if (rc < 0)
        build_fail(b, rc);
    ZSTD_freeCCtx(cctx);
    free(buf);
    free(rec);
    return NULL;
}

static int run_workers(struct build *b, int threads)
{
    pthread_t tids[64];
    int started = 0;
    if (threads <= 0)
        threads = ncpus();
    if (threads > 64)
        threads = 64;
    if ((uint32_t)threads > b->m->nchunks)
        threads = (int)b->m->nchunks;
    for (int i = 1; i < threads; i++)
        if (pthread_create(&tids[started], NULL, build_worker, b) == 0)
            started++;
    build_worker(b);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (atomic_load(&b->error))
        seterr("%s", b->errmsg);
    return atomic_load(&b->error);
}

/* Makes the new chunks durable, or removes the pack if nothing new went in. */
static int pack_finish(struct build *b)
{
    char name[32];
    snprintf(name, sizeof(name), "%08x.pack", b->pack_id);
    if (b->pack_end == PACK_HDR) {
        unlinkat(b->store->packs_fd, name, 0);
        return 0;
    }
    if (fsync(b->pack_fd) < 0 || fsync(b->store->packs_fd) < 0) {
        seterr("image %s: syncing pack %s: %s", b->name, name, strerror(errno));
        return -errno;
    }
    return 0;
}

int image_build(struct snapfs_store *s, const char *name, struct manifest *m,
                const struct snapfs_import_opts *opts, int default_level,
                chunk_fill_fn fill, void *ctx)
{
    struct build b = { .store = s, .name = name, .m = m, .fill = fill, .ctx = ctx, .pack_fd = -1 };
    int rc;
    b.level = opts && opts->level ? opts->level : default_level;
    pthread_mutex_init(&b.lock, NULL);
    rc = store_lock(s, LOCK_SH);
    if (rc < 0)
        goto out_nolock;
    rc = dd_init(&b);
    if (rc == 0)
        rc = pack_create(&b);
    if (rc < 0) {
        seterr("image %s: creating pack: %s", name, strerror(-rc));
        goto out;
    }
    rc = run_workers(&b, opts ? opts->threads : 0);
    if (rc == 0)
        rc = pack_finish(&b);
    if (rc == 0) {
        m->ctime = (uint64_t)time(NULL);
        rc = store_write_manifest(s, name, m);
    }
out:
    if (rc < 0 && b.pack_fd >= 0) {
        char pname[32];
        snprintf(pname, sizeof(pname), "%08x.pack", b.pack_id);
        unlinkat(s->packs_fd, pname, 0);
    }
    store_unlock(s);
out_nolock:
    if (b.pack_fd >= 0)
        close(b.pack_fd);
    free(b.dd.slots);
    free(b.dd.used);
    pthread_mutex_destroy(&b.lock);
    return rc;
}

static int manifest_init(struct manifest *m, uint64_t size, const struct snapfs_import_opts *o,
                         uint32_t default_cs)
{
    memset(m, 0, sizeof(*m));
    m->chunk_size = o && o->chunk_size ? o->chunk_size : default_cs;
    if (m->chunk_size < SNAPFS_MIN_CHUNK || m->chunk_size > SNAPFS_MAX_CHUNK ||
        (m->chunk_size & (m->chunk_size - 1))) {
        seterr("chunk size %u: must be a power of two from 4 KiB to 4 MiB", m->chunk_size);
        return -EINVAL;
    }
    if (size == 0 || size % 512 || size > (uint64_t)MAX_CHUNKS * m->chunk_size) {
        seterr("disk size %llu: must be a non-zero multiple of 512 (and fit %u chunks)",
               (unsigned long long)size, MAX_CHUNKS);
        return -EINVAL;
    }
    m->virtual_size = size;
    m->nchunks = manifest_nchunks(size, m->chunk_size);
    if (o && o->label)
        snprintf(m->label, sizeof(m->label), "%s", o->label);
    if (o && o->parent)
        snprintf(m->parent, sizeof(m->parent), "%s", o->parent);
    m->refs = calloc(m->nchunks, sizeof(*m->refs));
    return m->refs ? 0 : -ENOMEM;
}

struct raw_src {
    int fd;
    uint32_t chunk_size;
    const char *path;
};

static int raw_fill(void *ctx, uint32_t idx, uint8_t *buf, size_t len, const uint8_t **direct,
                    struct ref *reuse, bool *reused)
{
    struct raw_src *src = ctx;
    int rc = pread_full(src->fd, buf, len, (uint64_t)idx * src->chunk_size);
    (void)direct, (void)reuse, (void)reused;
    if (rc < 0)
        seterr("%s: read at offset %llu: %s", src->path,
               (unsigned long long)idx * src->chunk_size,
               rc == -ENODATA ? "file shrank during import" : strerror(-rc));
    return rc;
}

int snapfs_import(struct snapfs_store *s, const char *raw_path, const char *name,
                  const struct snapfs_import_opts *opts)
{
    struct raw_src src = { .path = raw_path };
    struct manifest m = { 0 };
    struct stat st;
    int rc;
    if (!snapfs_name_valid(name)) {
        seterr("bad image name '%s' (use 1-63 of A-Z a-z 0-9 . _ -)", name);
        return -EINVAL;
    }
    if (opts && opts->parent && opts->parent[0] && !snapfs_name_valid(opts->parent)) {
        seterr("bad parent name '%s'", opts->parent);
        return -EINVAL;
    }
    src.fd = open(raw_path, O_RDONLY | O_CLOEXEC);
    if (src.fd < 0 || fstat(src.fd, &st) < 0) {
        rc = -errno;
        seterr("%s: %s", raw_path, strerror(errno));
        goto out;
    }
    rc = manifest_init(&m, (uint64_t)st.st_size, opts, SNAPFS_DEFAULT_CHUNK);
    if (rc < 0) {
        seterr("%s: %s", raw_path, snapfs_error());
        goto out;
    }
    src.chunk_size = m.chunk_size;
    rc = image_build(s, name, &m, opts, 19, raw_fill, &src);
out:
    manifest_free(&m);
    if (src.fd >= 0)
        close(src.fd);
    return rc;
}

int snapfs_export(struct snapfs_store *s, const char *name, const char *ovl_path,
                  const char *out_path)
{
    struct snapfs_disk *d = snapfs_disk_open(s, ovl_path ? NULL : name, ovl_path, NULL);
    uint64_t size, step = 1 << 20;
    uint8_t *buf = malloc(step);
    int fd = -1, rc = -ENOMEM;
    if (!d) {
        rc = -errno;
        goto out;
    }
    if (!buf)
        goto out;
    size = snapfs_disk_size(d);
    fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
        seterr("%s: %s", out_path, strerror(errno));
        goto out;
    }
    for (uint64_t off = 0; off < size; off += step) {
        size_t len = size - off < step ? size - off : step;
        rc = snapfs_pread(d, buf, len, off);
        if (rc == 0 && !all_zero(buf, len))
            rc = pwrite_full(fd, buf, len, off);
        if (rc < 0)
            goto out;
    }
    rc = fsync(fd) < 0 ? -errno : 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    snapfs_disk_close(d);
    return rc;
}
