/* libsnapfs: zstd-compressed, content-addressed, copy-on-write disk images.
 *
 * A store (a directory) holds packs of compressed chunks and image manifests;
 * a disk is one image seen through an optional writable overlay (a directory of
 * its own, one per sandbox). The on-disk format is described in
 * snapfs/FORMAT.md.
 *
 * Errors: every function that can fail returns a negative errno (or NULL with
 * errno set) and leaves a one-line explanation, naming the image or overlay and
 * the offset where that applies, in snapfs_error() of the calling thread. */
#ifndef SBX_SNAPFS_H
#define SBX_SNAPFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SNAPFS_NAME_MAX   63          /* longest image name */
#define SNAPFS_LABEL_MAX  127         /* longest label */
#define SNAPFS_BLOCK_SIZE 4096u       /* overlay allocation granularity */
#define SNAPFS_DEFAULT_CHUNK (512u * 1024)   /* picked by bench/snapfs */
#define SNAPFS_MIN_CHUNK  (4u * 1024)
#define SNAPFS_MAX_CHUNK  (4u * 1024 * 1024)

struct snapfs_store;
struct snapfs_disk;

/* The last error message of this thread ("" if none). */
const char *snapfs_error(void);

/* ---- store ---- */

/* Opens the store at path, creating it when create is non-zero.
 * Returns NULL with errno set on failure. */
struct snapfs_store *snapfs_store_open(const char *path, int create);
void snapfs_store_close(struct snapfs_store *store);

/* Non-zero if name is a valid image name: 1..63 of [A-Za-z0-9._-], not
 * starting with '.'. */
int snapfs_name_valid(const char *name);

struct snapfs_import_opts {
    uint32_t chunk_size;   /* power of two in [MIN_CHUNK, MAX_CHUNK]; 0: default */
    int level;             /* zstd level; 0: 19 for import, 1 for capture */
    int threads;           /* compression threads; 0: one per CPU */
    const char *label;     /* may be NULL */
    const char *parent;    /* may be NULL */
};

/* Imports the raw image file raw_path (size a multiple of 512) as image name.
 * The image appears atomically once complete; an existing name is replaced.
 * Identical chunks already in the store are not stored again.
 * Returns 0 or negative errno. */
int snapfs_import(struct snapfs_store *store, const char *raw_path, const char *name,
                  const struct snapfs_import_opts *opts);

/* Writes image name (or, when ovl_path is not NULL, the disk ovl_path with its
 * overlay) to out_path as a raw file; zero chunks become holes.
 * Returns 0 or negative errno. */
int snapfs_export(struct snapfs_store *store, const char *name, const char *ovl_path,
                  const char *out_path);

struct snapfs_image_info {
    char name[SNAPFS_NAME_MAX + 1];
    char parent[SNAPFS_NAME_MAX + 1];
    char label[SNAPFS_LABEL_MAX + 1];
    uint64_t virtual_size;
    uint64_t ctime;          /* seconds since the epoch */
    uint32_t chunk_size;
    uint32_t nchunks;
    uint32_t zero_chunks;    /* chunks that are all zero (stored as nothing) */
    uint64_t stored_bytes;   /* compressed bytes of its distinct chunks */
};

/* Describes image name. Returns 0 or negative errno. */
int snapfs_image_info(struct snapfs_store *store, const char *name,
                      struct snapfs_image_info *info);

/* Lists the store's images, sorted by name, into a malloc'd array the caller
 * frees. Returns the count or negative errno. */
int snapfs_list(struct snapfs_store *store, struct snapfs_image_info **infos);

/* Removes image name (its chunks stay until snapfs_gc). Returns 0 or -errno. */
int snapfs_rm(struct snapfs_store *store, const char *name);

/* Frees the space of chunks no image refers to. Waits for imports and
 * captures in progress. *freed (may be NULL) gets the bytes released.
 * Returns 0 or negative errno. */
int snapfs_gc(struct snapfs_store *store, uint64_t *freed);

/* Checks every chunk of image name: record header, zstd checksum and content
 * hash. Each problem is reported through report (may be NULL) as one line
 * naming the image and the offset. Returns the number of problems found, or
 * negative errno if the image could not be read at all. */
int snapfs_verify(struct snapfs_store *store, const char *name,
                  void (*report)(void *opaque, const char *msg), void *opaque);

/* Total bytes the store occupies on disk (allocated blocks of packs and manifests). */
int64_t snapfs_store_bytes(struct snapfs_store *store);

/* ---- disks ---- */

/* Creates overlay directory ovl_path (must not exist) on top of image name,
 * a disk of the image's size. Returns 0 or negative errno. */
int snapfs_overlay_create(struct snapfs_store *store, const char *name, const char *ovl_path);

/* As snapfs_overlay_create, but the disk is size bytes (0: the image's size):
 * a multiple of 512, at least the image's virtual size and at most what a
 * capture can hold (2^26 of the image's chunks), else -EINVAL. The bytes past
 * the image's end read as zeros until written; a capture of the overlay is an
 * image of size bytes. Returns 0 or negative errno. */
int snapfs_overlay_create_sized(struct snapfs_store *store, const char *name,
                                const char *ovl_path, uint64_t size);

/* Checks the overlay's head and allocation map; problems go to report.
 * Returns the number of problems or negative errno. */
int snapfs_overlay_verify(const char *ovl_path,
                          void (*report)(void *opaque, const char *msg), void *opaque);

struct snapfs_disk_opts {
    uint64_t cache_bytes;  /* decompressed chunk cache; 0: 256 MiB */
    unsigned ring_entries; /* io_uring size; 0: 256 */
};

/* Opens a disk: image name read-only (ovl_path NULL), or the overlay ovl_path
 * read-write (name NULL: the overlay's base image). An overlay is opened by
 * one process at a time. Returns NULL with errno set on failure. The store
 * must outlive the disk. */
struct snapfs_disk *snapfs_disk_open(struct snapfs_store *store, const char *name,
                                     const char *ovl_path, const struct snapfs_disk_opts *opts);
/* Closes the disk; unflushed writes may be lost. Waits for a capture in
 * progress and for asynchronous requests in flight (running their callbacks). */
void snapfs_disk_close(struct snapfs_disk *disk);

/* Bytes of the disk: the image's, or the overlay's (which may be more). */
uint64_t snapfs_disk_size(const struct snapfs_disk *disk);
/* Name of the image under the disk (changes after a capture). */
const char *snapfs_disk_image(const struct snapfs_disk *disk);

/* Synchronous I/O at any offset and length inside the disk. Reads may run
 * from many threads at once; writes, discards, write-zeroes and flushes must
 * not overlap each other or reads of the same bytes. Return 0 or negative
 * errno. Writes are durable once snapfs_flush returns 0. Discarded bytes read
 * back as the image's content (or stale data) until written. */
int snapfs_pread(struct snapfs_disk *disk, void *buf, size_t len, uint64_t off);
int snapfs_pwrite(struct snapfs_disk *disk, const void *buf, size_t len, uint64_t off);
int snapfs_discard(struct snapfs_disk *disk, uint64_t len, uint64_t off);
/* Makes every byte of [off, off + len) read as 0, as a write of zeros would
 * (durable once snapfs_flush returns 0), without writing zero data: whole
 * 4 KiB blocks whose layers below read as zeros (past the image's end, or in
 * an all-zero chunk of it) are dropped from the overlay; other whole blocks
 * are punched out of the overlay's sparse data file and kept in its map; only
 * the partial blocks at either end are written. -EROFS on an image opened
 * without an overlay, -EINVAL outside the disk. */
int snapfs_write_zeroes(struct snapfs_disk *disk, uint64_t len, uint64_t off);
int snapfs_flush(struct snapfs_disk *disk);

/* ---- asynchronous I/O for an event loop (single thread) ----
 *
 * Poll snapfs_aio_fd() for readability; when it fires call
 * snapfs_aio_process(), which runs the callbacks of finished requests.
 * Callbacks run only inside snapfs_aio_process(), never inside submit.
 * Requests in flight at the same time complete in any order. Two writes that
 * touch the same 4 KiB block without covering it whole must not be in flight
 * together (advertise a 4 KiB logical block size to guests). */

enum snapfs_op {
    SNAPFS_OP_READ, SNAPFS_OP_WRITE, SNAPFS_OP_FLUSH, SNAPFS_OP_DISCARD,
    SNAPFS_OP_WRITE_ZEROES,  /* as snapfs_write_zeroes; its partial end blocks
                              * follow the rule for writes above */
};

struct snapfs_req {
    enum snapfs_op op;
    uint64_t offset;
    void *buf;              /* READ destination / WRITE source */
    size_t len;             /* bytes (READ, WRITE, DISCARD, WRITE_ZEROES) */
    /* WRITE only, instead of buf: gather the len bytes from iovcnt buffers
     * (at most 1024) with one vectored write. offset and len must be whole
     * 4 KiB blocks (len may end at the end of the disk): -EINVAL otherwise.
     * The array must stay valid until done is called. */
    const struct iovec *iov;
    unsigned iovcnt;
    /* Called once with 0 or negative errno. */
    void (*done)(struct snapfs_req *req, int result);
    void *opaque;
    /* private to libsnapfs */
    int pending_;
    int result_;
    struct snapfs_req *next_;
};

/* Non-zero when the disk has an io_uring (it may not: io_uring disabled by
 * policy); without one snapfs_aio_submit fails with -ENOSYS and only the
 * synchronous calls work. */
int snapfs_aio_available(const struct snapfs_disk *disk);

/* File descriptor that becomes readable when completions are waiting. */
int snapfs_aio_fd(struct snapfs_disk *disk);

/* Starts req; returns 0 (req->done will be called) or negative errno (it will
 * not: bad op or offset, read-only disk, out of memory). */
int snapfs_aio_submit(struct snapfs_disk *disk, struct snapfs_req *req);

/* Reaps finished I/O and runs callbacks; never blocks. Returns the number of
 * requests completed or negative errno. */
int snapfs_aio_process(struct snapfs_disk *disk);

/* Number of requests submitted and not yet completed. */
unsigned snapfs_aio_inflight(const struct snapfs_disk *disk);

/* ---- capture ---- */

/* Starts folding the overlay into a new image name (which must not exist yet;
 * -EEXIST) that shares the unchanged
 * chunks: the overlay's current content is frozen and compressed on a
 * background thread while the disk keeps serving I/O (flushes wait until the
 * capture is done). When it finishes, the disk's overlay sits on the new
 * image. Completion is signalled through snapfs_aio_fd(); call
 * snapfs_capture_poll(). No write, discard, write-zeroes or flush may be in
 * flight when it is called (-EBUSY); reads may. Returns 0 or negative errno. */
int snapfs_capture_start(struct snapfs_disk *disk, const char *name,
                         const struct snapfs_import_opts *opts);

/* 1 while a capture runs; else 0 if the last capture succeeded, or its
 * negative errno. Finishes the capture (switches the overlay) when the
 * background thread is done; call from the thread that does the I/O. */
int snapfs_capture_poll(struct snapfs_disk *disk);

/* Synchronous capture: start, wait, finish. Returns 0 or negative errno. */
int snapfs_capture(struct snapfs_disk *disk, const char *name,
                   const struct snapfs_import_opts *opts);

#endif
