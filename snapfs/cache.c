/* A bounded cache of decompressed chunks, keyed by where the chunk is stored
 * (pack, offset), so chunks shared by images or kept across a capture stay
 * cached. Sharded by key, one mutex per shard, CLOCK replacement. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NSHARDS 16

struct slot {
    uint64_t offset;
    uint32_t pack;
    uint32_t len;
    int32_t next;                  /* bucket chain, -1 ends */
    uint8_t used, referenced;
    uint8_t *data;                 /* chunk_size bytes, allocated on first use */
};

struct shard {
    pthread_mutex_t lock;
    struct slot *slots;
    int32_t *buckets;
    uint32_t nslots, mask, hand;
};

struct cache {
    uint32_t chunk_size;
    struct shard shards[NSHARDS];
};

static uint64_t key_hash(const struct ref *r)
{
    uint64_t k = r->offset * 0x9e3779b97f4a7c15ull ^ (uint64_t)r->pack * 0xff51afd7ed558ccdull;
    return k ^ (k >> 29);
}

static int shard_init(struct shard *sh, uint32_t nslots)
{
    uint32_t nb = 1;
    while (nb < 2 * nslots)
        nb *= 2;
    pthread_mutex_init(&sh->lock, NULL);
    sh->nslots = nslots;
    sh->mask = nb - 1;
    sh->slots = calloc(nslots, sizeof(*sh->slots));
    sh->buckets = malloc(nb * sizeof(*sh->buckets));
    if (!sh->slots || !sh->buckets)
        return -1;
    memset(sh->buckets, 0xff, nb * sizeof(*sh->buckets));
    return 0;
}

struct cache *cache_new(uint64_t bytes, uint32_t chunk_size)
{
    struct cache *c = calloc(1, sizeof(*c));
    uint64_t total = bytes / chunk_size;
    uint32_t per = (uint32_t)(total / NSHARDS);
    if (!c)
        return NULL;
    c->chunk_size = chunk_size;
    if (per < 1)
        per = 1;
    for (int i = 0; i < NSHARDS; i++) {
        if (shard_init(&c->shards[i], per) < 0) {
            cache_free(c);
            return NULL;
        }
    }
    return c;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        struct shard *sh = &c->shards[i];
        for (uint32_t k = 0; sh->slots && k < sh->nslots; k++)
            free(sh->slots[k].data);
        free(sh->slots);
        free(sh->buckets);
        pthread_mutex_destroy(&sh->lock);
    }
    free(c);
}

static struct shard *shard_of(struct cache *c, uint64_t h) { return &c->shards[h % NSHARDS]; }

static int32_t find(struct shard *sh, const struct ref *r, uint64_t h)
{
    int32_t i = sh->buckets[(h / NSHARDS) & sh->mask];
    while (i >= 0 && (sh->slots[i].pack != r->pack || sh->slots[i].offset != r->offset))
        i = sh->slots[i].next;
    return i;
}

bool cache_copy(struct cache *c, const struct ref *r, uint32_t off, void *dst, size_t len)
{
    uint64_t h = key_hash(r);
    struct shard *sh = shard_of(c, h);
    int32_t i;
    pthread_mutex_lock(&sh->lock);
    i = find(sh, r, h);
    if (i >= 0 && (uint64_t)off + len <= sh->slots[i].len) {
        memcpy(dst, sh->slots[i].data + off, len);
        sh->slots[i].referenced = 1;
    } else {
        i = -1;
    }
    pthread_mutex_unlock(&sh->lock);
    return i >= 0;
}

static void unlink_slot(struct shard *sh, int32_t victim)
{
    struct slot *v = &sh->slots[victim];
    int32_t *p = &sh->buckets[(key_hash(&(struct ref){ .pack = v->pack, .offset = v->offset })
                               / NSHARDS) & sh->mask];
    while (*p != victim)
        p = &sh->slots[*p].next;
    *p = v->next;
    v->used = 0;
}

static int32_t pick_victim(struct shard *sh)
{
    for (;;) {
        int32_t i = (int32_t)sh->hand;
        sh->hand = (sh->hand + 1) % sh->nslots;
        if (!sh->slots[i].used)
            return i;
        if (!sh->slots[i].referenced) {
            unlink_slot(sh, i);
            return i;
        }
        sh->slots[i].referenced = 0;
    }
}

void cache_insert(struct cache *c, const struct ref *r, const uint8_t *data, size_t len)
{
    uint64_t h = key_hash(r);
    struct shard *sh = shard_of(c, h);
    int32_t i;
    struct slot *s;
    if (len > c->chunk_size)
        return;
    pthread_mutex_lock(&sh->lock);
    if (find(sh, r, h) >= 0)
        goto out;
    i = pick_victim(sh);
    s = &sh->slots[i];
    if (!s->data && !(s->data = malloc(c->chunk_size)))
        goto out;
    memcpy(s->data, data, len);
    s->pack = r->pack, s->offset = r->offset, s->len = (uint32_t)len;
    s->used = 1, s->referenced = 1;
    s->next = sh->buckets[(h / NSHARDS) & sh->mask];
    sh->buckets[(h / NSHARDS) & sh->mask] = i;
out:
    pthread_mutex_unlock(&sh->lock);
}
