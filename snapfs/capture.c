/* Capture: fold the overlay into a new image while the disk stays in use.
 *
 * Start: the active layer is frozen and a fresh, empty layer (the next
 * generation) takes the writes. A thread builds the new image from the base
 * image's chunk references, recompressing only chunks that have blocks in the
 * frozen layer. Finish (on the I/O thread): the overlay head is switched
 * atomically to the new image and the new generation, and the frozen layer's
 * files are removed. Until the head is switched, a crash leaves the overlay
 * as it was at the start (base + frozen layer), so flushes of the new layer
 * are held back until then. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "internal.h"

struct capture_state {
    pthread_t thread;
    bool running;                  /* thread started, not yet finished */
    atomic_bool thread_done;
    int thread_result;
    int last_result;
    char name[SNAPFS_NAME_MAX + 1];
    char label[SNAPFS_LABEL_MAX + 1];
    struct snapfs_import_opts opts;
    struct manifest man;           /* of the new image */
    char errmsg[512];
};

bool capture_running(struct snapfs_disk *d) { return d->cap && d->cap->running; }

struct fold_ctx {
    struct snapfs_disk *d;
    const uint8_t *frozen_map;     /* the frozen data file mapped, or NULL */
};

/* The base image's part of chunk idx (len bytes) of the new image: the base
 * chunk itself, or, past the end of a smaller base, its tail and zeros. */
static int fold_base(struct snapfs_disk *d, uint32_t idx, uint8_t *buf, size_t len)
{
    ZSTD_DCtx *dctx;
    int rc;
    if (idx >= d->man.nchunks || chunk_len(&d->man, idx) != len)
        return disk_read_base(d, buf, len, (uint64_t)idx * d->man.chunk_size);
    dctx = disk_dctx_get(d);
    rc = chunk_load(d->store, d->image, &d->man, idx, buf, dctx);
    disk_dctx_put(d, dctx);
    return rc;
}

/* Chunk idx of the new image: the base chunk when the frozen layer has none
 * of its blocks (a zero chunk past the end of a smaller base), else the base
 * chunk with the frozen blocks laid over it. */
static int fold_fill(void *ctx, uint32_t idx, uint8_t *buf, size_t len, const uint8_t **direct,
                     struct ref *reuse, bool *reused)
{
    struct fold_ctx *fc = ctx;
    struct snapfs_disk *d = fc->d;
    uint64_t start = (uint64_t)idx * d->man.chunk_size, b0 = start / SNAPFS_BLOCK_SIZE;
    uint64_t nb = (len + SNAPFS_BLOCK_SIZE - 1) / SNAPFS_BLOCK_SIZE, have = 0;
    bool same = idx < d->man.nchunks && chunk_len(&d->man, idx) == len;
    int rc = 0;
    for (uint64_t b = 0; b < nb; b++)
        have += layer_test(d->frozen, b0 + b);
    if (have == 0 && (same || idx >= d->man.nchunks)) {
        if (same)
            *reuse = d->man.refs[idx];
        else
            memset(reuse, 0, sizeof(*reuse));
        *reused = true;
        return 0;
    }
    if (have == nb && fc->frozen_map) {
        *direct = fc->frozen_map + start;   /* no copy for chunks rewritten whole */
        return 0;
    }
    if (have < nb)
        rc = fold_base(d, idx, buf, len);
    for (uint64_t b = 0; rc == 0 && b < nb; b++) {
        uint64_t off = b * SNAPFS_BLOCK_SIZE, n = len - off < SNAPFS_BLOCK_SIZE ? len - off : SNAPFS_BLOCK_SIZE;
        if (layer_test(d->frozen, b0 + b)) {
            rc = pread_full(d->frozen->data_fd, buf + off, n, start + off);
            if (rc < 0)
                seterr("overlay %s: data.%llu at offset %llu: %s", d->ovl_path,
                       (unsigned long long)d->frozen->gen, (unsigned long long)(start + off),
                       strerror(-rc));
        }
    }
    return rc;
}

static void *capture_thread(void *arg)
{
    struct snapfs_disk *d = arg;
    struct capture_state *c = d->cap;
    struct fold_ctx fc = { .d = d };
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(d->frozen->data_fd, &st) == 0 && (uint64_t)st.st_size >= d->size)
        map = mmap(NULL, d->size, PROT_READ, MAP_SHARED, d->frozen->data_fd, 0);
    if (map != MAP_FAILED)
        fc.frozen_map = map;
    c->thread_result = image_build(d->store, c->name, &c->man, &c->opts, 1, fold_fill, &fc);
    if (map != MAP_FAILED)
        munmap(map, d->size);
    if (c->thread_result < 0)
        snprintf(c->errmsg, sizeof(c->errmsg), "%s", snapfs_error());
    atomic_store(&c->thread_done, true);
    aio_wake(d);
    return NULL;
}

static int capture_prepare(struct snapfs_disk *d, const char *name,
                           const struct snapfs_import_opts *opts)
{
    struct capture_state *c = d->cap;
    struct manifest *m = &c->man;
    memset(m, 0, sizeof(*m));
    m->virtual_size = d->size;             /* the overlay's: it may exceed the base's */
    m->chunk_size = d->man.chunk_size;
    m->nchunks = manifest_nchunks(d->size, d->man.chunk_size);
    snprintf(m->parent, sizeof(m->parent), "%s", d->image);
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->opts = opts ? *opts : (struct snapfs_import_opts){ 0 };
    if (c->opts.label)
        snprintf(m->label, sizeof(m->label), "%s", c->opts.label);
    c->opts.label = NULL, c->opts.parent = NULL;
    m->refs = calloc(m->nchunks, sizeof(*m->refs));
    return m->refs ? 0 : -ENOMEM;
}

int snapfs_capture_start(struct snapfs_disk *d, const char *name,
                         const struct snapfs_import_opts *opts)
{
    struct layer *next = NULL;
    int rc;
    if (!d->active) {
        seterr("image %s: capture needs an overlay", d->image);
        return -EINVAL;
    }
    if (!snapfs_name_valid(name)) {
        seterr("bad image name '%s' (use 1-63 of A-Z a-z 0-9 . _ -)", name);
        return -EINVAL;
    }
    if (faccessat(d->store->images_fd, name, F_OK, 0) == 0) {
        seterr("image %s already exists (capture makes a new image)", name);
        return -EEXIST;
    }
    if (capture_running(d) || !aio_idle_writes(d)) {
        seterr("overlay %s: busy (a capture, write or flush is in flight)", d->ovl_path);
        return -EBUSY;
    }
    if (!d->cap && !(d->cap = calloc(1, sizeof(*d->cap))))
        return -ENOMEM;
    rc = capture_prepare(d, name, opts);
    if (rc == 0)
        rc = layer_open(d->ovl_fd, d->active->gen + 1, d->size, true, d->ovl_path, &next);
    if (rc < 0)
        goto fail;
    pthread_mutex_lock(&d->lock);
    d->frozen = d->active;
    d->active = next;
    pthread_mutex_unlock(&d->lock);
    atomic_store(&d->cap->thread_done, false);
    d->cap->running = true;
    rc = -pthread_create(&d->cap->thread, NULL, capture_thread, d);
    if (rc == 0)
        return 0;
    d->cap->running = false;
    pthread_mutex_lock(&d->lock);
    d->active = d->frozen;
    d->frozen = NULL;
    pthread_mutex_unlock(&d->lock);
    layer_close(next);
fail:
    manifest_free(&d->cap->man);
    return rc;
}

struct doomed {
    char data[4096], map[4096];
};

static void *unlink_thread(void *arg)
{
    struct doomed *x = arg;
    unlink(x->data);               /* freeing a large file's extents takes a while */
    unlink(x->map);
    free(x);
    return NULL;
}

/* Removes the frozen layer's files off the I/O thread; what a crash leaves
 * behind is removed at the next open. */
static void remove_layer_files(struct snapfs_disk *d, uint64_t gen)
{
    struct doomed *x = malloc(sizeof(*x));
    pthread_t t;
    if (!x)
        return;
    snprintf(x->data, sizeof(x->data), "%s/data.%llu", d->ovl_path, (unsigned long long)gen);
    snprintf(x->map, sizeof(x->map), "%s/map.%llu", d->ovl_path, (unsigned long long)gen);
    if (pthread_create(&t, NULL, unlink_thread, x) == 0)
        pthread_detach(t);
    else
        unlink_thread(x);
}

/* Switches the overlay onto the new image. */
static int capture_switch(struct snapfs_disk *d)
{
    struct capture_state *c = d->cap;
    struct manifest m;
    uint8_t digest[HASH_LEN];
    char old_image[SNAPFS_NAME_MAX + 1];
    uint8_t old_digest[HASH_LEN];
    int rc = store_load_manifest(d->store, c->name, &m, digest);
    if (rc < 0)
        return rc;
    memcpy(old_image, d->image, sizeof(old_image));
    memcpy(old_digest, d->digest, HASH_LEN);
    snprintf(d->image, sizeof(d->image), "%s", c->name);
    memcpy(d->digest, digest, HASH_LEN);
    rc = ovl_write_head(d, d->active->gen);
    if (rc < 0) {
        memcpy(d->image, old_image, sizeof(old_image));
        memcpy(d->digest, old_digest, HASH_LEN);
        manifest_free(&m);
        return rc;
    }
    pthread_mutex_lock(&d->lock);
    manifest_free(&d->man);
    d->man = m;
    pthread_mutex_unlock(&d->lock);
    remove_layer_files(d, d->frozen->gen);
    layer_close(d->frozen);
    d->frozen = NULL;
    return 0;
}

static int capture_finish(struct snapfs_disk *d)
{
    struct capture_state *c = d->cap;
    int rc;
    pthread_join(c->thread, NULL);
    c->running = false;
    rc = c->thread_result;
    if (rc < 0)
        seterr("%s", c->errmsg);
    else
        rc = capture_switch(d);
    if (rc < 0) {
        /* The frozen layer stays under the new one: reads remain right, but the
         * head still names the old generation, so flushes cannot be made
         * durable; report it on every flush from now on. */
        d->cap->last_result = rc;
    } else {
        d->cap->last_result = 0;
    }
    manifest_free(&c->man);
    aio_release_flushes(d);
    return rc;
}

int snapfs_capture_poll(struct snapfs_disk *d)
{
    if (!d->cap)
        return 0;
    if (d->cap->running && atomic_load(&d->cap->thread_done))
        capture_finish(d);
    return d->cap->running ? 1 : d->cap->last_result;
}

void capture_fini(struct snapfs_disk *d)
{
    if (!d->cap)
        return;
    if (d->cap->running)
        capture_finish(d);
    free(d->cap);
    d->cap = NULL;
}

int snapfs_capture(struct snapfs_disk *d, const char *name, const struct snapfs_import_opts *opts)
{
    int rc = snapfs_capture_start(d, name, opts);
    if (rc < 0)
        return rc;
    return capture_finish(d);
}
