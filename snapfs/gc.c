/* Garbage collection: chunk records no manifest refers to are released by
 * punching holes in their packs (record offsets never move, so manifests stay
 * valid); packs with no live record are deleted. Runs under the store's
 * exclusive lock; refuses to run while any manifest is unreadable, since its
 * chunks cannot be told apart from garbage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct live {
    struct ref *refs;
    size_t n;
};

static int cmp_loc(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->pack != y->pack)
        return x->pack < y->pack ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int collect_live(struct snapfs_store *s, struct live *lv)
{
    char **names;
    int n = store_names(s, &names), rc = 0;
    if (n < 0)
        return n;
    for (int i = 0; i < n && rc == 0; i++) {
        struct manifest m;
        struct ref *grown;
        rc = store_load_manifest(s, names[i], &m, NULL);
        if (rc < 0)
            break;
        grown = realloc(lv->refs, (lv->n + m.nchunks + 1) * sizeof(*grown));
        if (!grown) {
            rc = -ENOMEM;
        } else {
            lv->refs = grown;
            for (uint32_t k = 0; k < m.nchunks; k++)
                if (!ref_is_zero(&m.refs[k]))
                    lv->refs[lv->n++] = m.refs[k];
        }
        manifest_free(&m);
    }
    free_names(names, n);
    if (rc == 0 && lv->n)
        qsort(lv->refs, lv->n, sizeof(*lv->refs), cmp_loc);
    return rc;
}

static void punch(int fd, uint64_t from, uint64_t to)
{
    uint64_t a = (from + 4095) & ~UINT64_C(4095), b = to & ~UINT64_C(4095);
    if (b > a)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a));
}

/* Punches every gap between the live records [*i, end of this pack). */
static void gc_pack(int fd, uint64_t size, const struct live *lv, size_t *i, uint32_t pack)
{
    uint64_t pos = PACK_HDR;
    for (; *i < lv->n && lv->refs[*i].pack == pack; (*i)++) {
        const struct ref *r = &lv->refs[*i];
        uint64_t end = r->offset + RECORD_HDR + r->clen;
        if (r->offset > pos)
            punch(fd, pos, r->offset);
        if (end > pos)
            pos = end;
    }
    if (pos < size && ftruncate(fd, (off_t)pos) < 0)
        punch(fd, pos, size);
}

static int64_t gc_packs(struct snapfs_store *s, const struct live *lv)
{
    int dfd = dup(s->packs_fd);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *de;
    int64_t freed = 0;
    if (!dir)
        return -errno;
    rewinddir(dir);
    while ((de = readdir(dir))) {
        unsigned id;
        char tail[8];
        struct stat before, after;
        size_t i = 0;
        int fd;
        if (sscanf(de->d_name, "%8x.%5s", &id, tail) != 2 || strcmp(tail, "pack") != 0)
            continue;
        fd = openat(s->packs_fd, de->d_name, O_RDWR | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &before) < 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        while (i < lv->n && lv->refs[i].pack < id)
            i++;
        if (i == lv->n || lv->refs[i].pack != id) {
            freed += (int64_t)before.st_blocks * 512;
            unlinkat(s->packs_fd, de->d_name, 0);
        } else {
            gc_pack(fd, (uint64_t)before.st_size, lv, &i, id);
            fsync(fd);
            if (fstat(fd, &after) == 0)
                freed += ((int64_t)before.st_blocks - (int64_t)after.st_blocks) * 512;
        }
        close(fd);
    }
    closedir(dir);
    fsync(s->packs_fd);
    return freed;
}

int snapfs_gc(struct snapfs_store *s, uint64_t *freed)
{
    struct live lv = { 0 };
    int64_t n;
    int rc = store_lock(s, LOCK_EX);
    if (rc < 0)
        return rc;
    rc = collect_live(s, &lv);
    if (rc < 0) {
        seterr("gc refused: %s", snapfs_error());
        goto out;
    }
    n = gc_packs(s, &lv);
    if (n < 0)
        rc = (int)n;
    else if (freed)
        *freed = (uint64_t)n;
out:
    free(lv.refs);
    store_unlock(s);
    return rc;
}
