/* Shared helpers of the snapfs unit tests. */
#ifndef SBX_SNAPFS_TESTS_HELPERS_H
#define SBX_SNAPFS_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../snapfs.h"

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s (snapfs: %s)\n", __FILE__,        \
                    __LINE__, #cond, snapfs_error());                                 \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* A fresh temporary directory (removed by tmpdir_remove). */
char *tmpdir_make(void);
void tmpdir_remove(char *dir);
/* dir/name in a static rotating buffer. */
const char *path_in(const char *dir, const char *name);
/* Deterministic disk content: text-like, compressible, with zero and
 * repeated regions. */
void fill_disk(uint8_t *buf, size_t len, uint32_t seed);
/* Writes buf to path. */
void write_raw(const char *path, const uint8_t *buf, size_t len);
/* Reads the whole of path (malloc'd); *len gets its size. */
uint8_t *read_raw(const char *path, size_t *len);
uint32_t rnd(uint32_t *state);
/* Bytes allocated on disk under dir, recursively. */
int64_t du_bytes(const char *dir);
/* Runs one asynchronous request on d to completion, polling snapfs_aio_fd:
 * the submit's negative errno, or the request's result. */
int aio_run_one(struct snapfs_disk *d, enum snapfs_op op, void *buf, size_t len, uint64_t off);

#endif
