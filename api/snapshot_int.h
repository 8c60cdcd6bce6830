/* Internals shared by snapshot.c (records), snapshot_build.c (making images)
 * and snapshot_capture.c. */
#ifndef SBX_API_SNAPSHOT_INT_H
#define SBX_API_SNAPSHOT_INT_H

#include "snapshot.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct oci_registry_auth;

/* OCI_DIR, OCI_TAR: an image layout folder or tarball (oci_layout.h);
 * REGISTRY: "docker://REF", pulled (oci_registry.h). */
enum snap_source { SNAP_SRC_TAR, SNAP_SRC_DIR, SNAP_SRC_RAW, SNAP_SRC_OCI_DIR, SNAP_SRC_OCI_TAR,
                   SNAP_SRC_REGISTRY };

/* The prefix of a source that names a registry image. */
#define SNAP_DOCKER_PREFIX "docker://"

/* zstd level of imports: snapfs's default 19 takes over a minute for a Debian
 * root on two CPUs (bench/snapfs); 9 is about 15 times faster for about 10 %
 * more bytes. Captures keep snapfs's level 1. */
#define SNAPSHOT_IMPORT_LEVEL 9

/* What source is: a tarball by its name, a folder, or a raw ext4 image (by
 * its superblock); tarballs and folders holding a container image layout
 * are OCI_TAR and OCI_DIR. Returns 0, or -1 with why filled. */
int snapbuild_source_kind(const char *source, enum snap_source *kind, char *why, size_t len);

/* Makes snapfs image id (label: the snapshot name) in the store from source:
 * tarballs are unpacked into STATE/tmp/build-ID/root (tar), tarballs and
 * folders become an ext4 of capacity_gib (mke2fs -d), a raw ext4 image smaller
 * than capacity_gib (when not 0) is grown on a copy (e2fsck -f, resize2fs),
 * container images (a layout, or pulled: source "docker://REF", with the
 * registry login auth when not NULL) have their
 * layers applied into that root folder, and the result is imported; their
 * config's run settings (oci_run_config) are left in *image_config (malloc'd;
 * NULL for other sources). Blocking; touches no shared state. Returns 0,
 * or -1 with msg. */
int snapbuild_make_image(const char *state_dir, const char *id, const char *label,
                         enum snap_source kind, const char *source,
                         const struct oci_registry_auth *auth, int64_t capacity_gib,
                         char **image_config, char *msg, size_t msglen);

/* Imports the raw image raw as image id (label: the snapshot name) into
 * STATE/store. Blocking. Returns 0, or -1 with msg. */
int snapbuild_import(const char *state_dir, const char *raw, const char *id, const char *label,
                     char *msg, size_t len);

/* Virtual size and stored bytes of image id. Returns 0 or negative errno. */
int snapbuild_image_size(const char *store_path, const char *id, int64_t *size,
                         int64_t *stored);

/* Copies the data extents of src into dst (both open; dst empty) at the same
 * offsets: a reflink where the file system has them, else a sparse copy.
 * Returns 0 or negative errno. */
int snapbuild_copy_extents(int src, int dst, off_t size);

/* rm -rf path (no symlinks followed). */
void snapbuild_rmtree(const char *path);

/* The lock around store calls from code that may run with or without it
 * (the build threads never hold it; request handlers do). */
bool snap_lock(void);
void snap_unlock(bool taken);

/* Under the lock: a new row for snapshot name (status building, source as
 * given); conflict if the name is taken. Returns 0, or -1 with err. */
int snapshot_insert_row(struct svc *svc, const char *name, const char *source,
                        struct snapshot_rec *out, struct apierr *err);

/* Records the end of a build (under the lock): ready with its sizes (and
 * image_config, the image's run settings, when not NULL), or failed with msg.
 * Skipped once snapshot_shutdown() ran. */
void snapshot_finish(struct svc *svc, const char *id, bool ok, const char *msg,
                     const char *image_config);

#endif
