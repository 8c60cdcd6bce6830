/* libsnapfs internals shared between its source files (not installed). */
#ifndef SBX_SNAPFS_INTERNAL_H
#define SBX_SNAPFS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>

#include "snapfs.h"

#define HASH_LEN 32

/* ---- on-disk layouts (format.c); see FORMAT.md ---- */

#define MANIFEST_HDR   256u
#define REF_SIZE       48u
#define RECORD_HDR     48u
#define PACK_HDR       16u
#define OVL_HEAD_SIZE  256u
#define MAP_PAGE       4096u
#define MAP_SLOT_HDR   16u
#define MAP_PAGE_BITS  ((MAP_PAGE - MAP_SLOT_HDR) * 8u)
#define MAX_CHUNKS     (1u << 26)

struct ref {                       /* where one chunk lives; pack 0: all zeros */
    uint8_t hash[HASH_LEN];
    uint32_t pack;
    uint32_t clen;
    uint64_t offset;               /* of the record header in the pack */
};

struct manifest {
    uint64_t virtual_size;
    uint64_t ctime;
    uint32_t chunk_size;
    uint32_t nchunks;
    char parent[SNAPFS_NAME_MAX + 1];
    char label[SNAPFS_LABEL_MAX + 1];
    struct ref *refs;              /* nchunks entries, malloc'd */
};

struct record_hdr {
    uint32_t clen;
    uint32_t ulen;
    uint8_t hash[HASH_LEN];
};

struct ovl_head {
    uint64_t gen;
    uint64_t virtual_size;
    uint32_t block_size;
    char base[SNAPFS_NAME_MAX + 1];
    uint8_t base_digest[HASH_LEN];
};

struct map_hdr {
    uint64_t gen;
    uint64_t nblocks;
    uint32_t npages;
};

/* Parsers: bytes consumed, -1 malformed, -2 incomplete. why (may be NULL)
 * gets a static string describing a failure. */
long manifest_parse(const uint8_t *buf, size_t len, struct manifest *m, const char **why);
size_t manifest_size(uint32_t nchunks);
void manifest_encode(const struct manifest *m, uint8_t *buf);
void manifest_free(struct manifest *m);
uint32_t manifest_nchunks(uint64_t virtual_size, uint32_t chunk_size);
uint32_t chunk_len(const struct manifest *m, uint32_t idx);

long record_hdr_parse(const uint8_t *buf, size_t len, struct record_hdr *r, const char **why);
void record_hdr_encode(const struct record_hdr *r, uint8_t *buf);

long ovl_head_parse(const uint8_t *buf, size_t len, struct ovl_head *h, const char **why);
void ovl_head_encode(const struct ovl_head *h, uint8_t *buf);

long map_hdr_parse(const uint8_t *buf, size_t len, struct map_hdr *h, const char **why);
void map_hdr_encode(const struct map_hdr *h, uint8_t *buf);
/* One slot of the map page page_index: seq and bits (MAP_PAGE_BITS / 8 bytes). */
long map_slot_parse(const uint8_t *buf, size_t len, uint32_t page_index, uint64_t *seq,
                    const uint8_t **bits, const char **why);
void map_slot_encode(uint8_t *buf, uint32_t page_index, uint64_t seq, const uint8_t *bits);

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
bool ref_is_zero(const struct ref *r);

/* ---- util.c ---- */
void seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* Writes name in dirfd atomically: temporary file, fsync, rename, fsync dir. */
int write_atomic(int dirfd, const char *name, const void *buf, size_t len);
/* Reads a whole small file (at most max bytes) into a malloc'd buffer. */
int read_file(int dirfd, const char *name, size_t max, uint8_t **buf, size_t *len);
void sha256(const void *buf, size_t len, uint8_t out[HASH_LEN]);
bool all_zero(const void *buf, size_t len);
int ncpus(void);

/* ---- store.c ---- */
struct snapfs_store {
    char *path;
    int dirfd, packs_fd, images_fd, lock_fd;
    pthread_mutex_t lock;          /* pack fd table */
    int *pack_fds;                 /* index: pack id; -1 not open */
    uint32_t npack_fds;
};

/* Pack file descriptor for reading (opened on first use). */
int store_pack_fd(struct snapfs_store *s, uint32_t pack, const char *image);
int store_load_manifest(struct snapfs_store *s, const char *name, struct manifest *m,
                        uint8_t digest[HASH_LEN]);
int store_write_manifest(struct snapfs_store *s, const char *name, const struct manifest *m);
/* flock on the store: LOCK_SH for writers of packs, LOCK_EX for gc. */
int store_lock(struct snapfs_store *s, int how);
void store_unlock(struct snapfs_store *s);
/* Names of all images (malloc'd array of malloc'd strings). */
int store_names(struct snapfs_store *s, char ***names);
void free_names(char **names, int n);

/* Reads and checks the record of chunk idx of image and decompresses it into
 * out (chunk_len bytes). dctx may be NULL. Returns 0 or -EIO with seterr. */
struct ZSTD_DCtx_s;
int chunk_load(struct snapfs_store *s, const char *image, const struct manifest *m,
               uint32_t idx, uint8_t *out, struct ZSTD_DCtx_s *dctx);
/* Checks an already read record (header + payload) against ref and decompresses. */
int chunk_decode(const char *image, const struct ref *r, uint32_t idx, uint64_t voff,
                 uint32_t ulen, const uint8_t *rec, uint8_t *out, struct ZSTD_DCtx_s *dctx);

/* ---- writer.c: building an image from a chunk source ---- */
/* Fills chunk idx (len bytes) into buf, or points *direct at its bytes, or
 * sets *reuse to an existing ref and *reused. */
typedef int (*chunk_fill_fn)(void *ctx, uint32_t idx, uint8_t *buf, size_t len,
                             const uint8_t **direct, struct ref *reuse, bool *reused);
int image_build(struct snapfs_store *s, const char *name, struct manifest *m,
                const struct snapfs_import_opts *opts, int default_level,
                chunk_fill_fn fill, void *ctx);

/* ---- cache.c: bounded cache of decompressed chunks, keyed by location ---- */
struct cache;
struct cache *cache_new(uint64_t bytes, uint32_t chunk_size);
void cache_free(struct cache *c);
/* Copies [off, off + len) of the cached chunk at ref into dst; false if absent. */
bool cache_copy(struct cache *c, const struct ref *r, uint32_t off, void *dst, size_t len);
void cache_insert(struct cache *c, const struct ref *r, const uint8_t *data, size_t len);

/* ---- disk.c ---- */
struct layer {                     /* one overlay generation */
    uint64_t gen;
    int data_fd, map_fd;
    uint64_t *bits;                /* 1: block is in data_fd; atomic access */
    uint32_t npages;
    uint8_t *page_dirty;
    uint8_t *page_slot;            /* slot holding the newest written version */
    uint64_t seq;                  /* last map sequence number written */
};

struct aio_state;
struct capture_state;

struct snapfs_disk {
    struct snapfs_store *store;
    char image[SNAPFS_NAME_MAX + 1];
    struct manifest man;
    uint8_t digest[HASH_LEN];
    uint64_t size;                 /* >= man.virtual_size (an overlay may be larger) */
    int ovl_fd;                    /* overlay directory; -1: read-only image */
    int ovl_lock_fd;
    char *ovl_path;
    struct layer *active;
    struct layer *frozen;          /* being captured; NULL otherwise */
    struct cache *cache;
    pthread_mutex_t lock;          /* map bits changes, flush, dctx pool */
    struct ZSTD_DCtx_s **dctx_pool;
    int ndctx;
    struct aio_state *aio;
    struct capture_state *cap;
    unsigned ring_entries;
};

uint64_t disk_blocks(const struct snapfs_disk *d);
bool layer_test(const struct layer *l, uint64_t block);
void layer_set(struct layer *l, uint64_t first, uint64_t count, bool value);
/* Bytes of [off, off + len) that lie inside the image (a disk may be larger). */
size_t disk_base_len(const struct snapfs_disk *d, size_t len, uint64_t off);
/* Reads [off, off + len) of the image itself (no overlay); zeros past its end. */
int disk_read_base(struct snapfs_disk *d, uint8_t *buf, size_t len, uint64_t off);
/* Reads through all layers (active, frozen, base). */
int disk_read(struct snapfs_disk *d, uint8_t *buf, size_t len, uint64_t off);
/* A write-zeroes range split into the partial block at its start
 * [off, off + head_len), the whole blocks [first, first + count) and the
 * partial block at its end [tail_off, tail_off + tail_len); the last block of
 * a disk whose size is not a multiple of 4 KiB is whole when covered to the
 * disk's end. */
struct zero_plan {
    uint64_t head_len, first, count, tail_off, tail_len;
};
void zero_plan_make(const struct snapfs_disk *d, uint64_t len, uint64_t off,
                    struct zero_plan *p);
/* True if block reads as zeros when the active layer does not hold it: no
 * frozen copy, and past the image's end or in an all-zero chunk of it. */
bool disk_below_zero(const struct snapfs_disk *d, uint64_t block);
/* Updates the active layer's bits for the zeroed whole blocks [first,
 * first + count) of one kind: below_zero true clears the bits of blocks that
 * read as zeros without the overlay; false sets the others' (their data,
 * zeroed in data_fd, is then current). Takes d->lock. */
void disk_zeroed_bits(struct snapfs_disk *d, uint64_t first, uint64_t count, bool below_zero);
/* Bytes of data_fd to zero for the whole blocks [first, first + count). */
uint64_t zero_plan_bytes(const struct snapfs_disk *d, uint64_t first, uint64_t count);
/* Writes len zero bytes to fd at off (where a hole cannot be punched). */
int zero_fill(int fd, uint64_t len, uint64_t off);
struct ZSTD_DCtx_s *disk_dctx_get(struct snapfs_disk *d);
void disk_dctx_put(struct snapfs_disk *d, struct ZSTD_DCtx_s *dctx);
/* Copies the dirty map pages of l into a new buffer of *npages slot images,
 * choosing slots and sequence numbers; offsets get file offsets. */
int layer_snapshot_map(struct layer *l, uint8_t **pages, uint64_t **offsets, uint32_t *npages);
int layer_open(int dirfd, uint64_t gen, uint64_t nblocks, bool create, const char *ovl,
               struct layer **out);
void layer_close(struct layer *l);
int ovl_write_head(struct snapfs_disk *d, uint64_t gen);
/* Flush the active layer synchronously (data, then map). */
int layer_flush(struct snapfs_disk *d, struct layer *l);

/* ---- aio.c ---- */
int aio_init(struct snapfs_disk *d);
void aio_fini(struct snapfs_disk *d);
void aio_wake(struct snapfs_disk *d);
bool aio_idle_writes(struct snapfs_disk *d);
void aio_release_flushes(struct snapfs_disk *d);

/* ---- capture.c ---- */
void capture_fini(struct snapfs_disk *d);
bool capture_running(struct snapfs_disk *d);

#endif
