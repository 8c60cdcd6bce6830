/* Snapshots: snapfs images in the store STATE/store, each named by its
 * snapshot id (snapfs/FORMAT.md). A snapshot is built in the background from
 * a root filesystem (tarball, folder or raw ext4 image), captured from a
 * running sandbox, or (the older way) imported from a raw disk image under the
 * snapshot directory. Calls return 0, or -1 with err filled; they run with
 * svc_lock held unless said otherwise. */
#ifndef SBX_API_SNAPSHOT_H
#define SBX_API_SNAPSHOT_H

#include "apierr.h"
#include "service.h"

#include <jansson.h>
#include <stddef.h>

/* The default capacity of an ext4 made from a tarball or folder. */
#define SNAPSHOT_DEFAULT_CAPACITY_GIB 4

/* STATE/store into out. */
void snapshot_store_path(const struct svc *svc, char *out, size_t len);

/* At start-up, before serving: creates the store and STATE/tmp, removes
 * leftovers of builds cut short and marks their snapshots failed. */
int snapshot_init(struct svc *svc);
/* At shut-down: build threads still running stop touching the database (their
 * snapshots are marked failed at the next start). */
void snapshot_shutdown(struct svc *svc);

/* Starts building snapshot name from source, a path on this host: a tarball
 * (.tar, .tar.gz, .tgz, .tar.zst), a folder, or a raw ext4 image. Tarballs and
 * folders become an ext4 of capacity_gib. *out is the new row (building); the
 * build runs on its own thread and ends ready or failed (status_message). */
int snapshot_build(struct svc *svc, const char *name, const char *source, int64_t capacity_gib,
                   struct snapshot_rec *out, struct apierr *err);

/* Starts building snapshot name from container image reference image (as
 * snapshot_build with source "docker://IMAGE"), pulled with the registry login
 * username and password when both are given (both NULL: anonymously). The
 * login is copied for the build thread alone: never stored, logged or put in
 * a message, and wiped once the pull is over. */
int snapshot_build_docker(struct svc *svc, const char *name, const char *image,
                          int64_t capacity_gib, const char *username, const char *password,
                          struct snapshot_rec *out, struct apierr *err);

/* snapshot_build and snapshot_build_docker with a start command (startcmd.h)
 * that replaces the image's: start_command a list passed by startcmd_check
 * (checked again here; [] means none), or NULL for the image's own (none for
 * other sources). The build's run settings keep it as their "command". */
int snapshot_build_cmd(struct svc *svc, const char *name, const char *source,
                       int64_t capacity_gib, const json_t *start_command,
                       struct snapshot_rec *out, struct apierr *err);
int snapshot_build_docker_cmd(struct svc *svc, const char *name, const char *image,
                              int64_t capacity_gib, const char *username, const char *password,
                              const json_t *start_command, struct snapshot_rec *out,
                              struct apierr *err);

/* Under the service lock: whether snapshot_shutdown() ran, after which the
 * store may be closed (for the background threads of other modules). */
bool snapshot_is_shut_down(void);

/* Imports image_path (a raw disk image that must resolve inside
 * svc->snapshot_dir) as snapshot name, synchronously: *out is ready. */
int snapshot_register(struct svc *svc, const char *name, const char *image_path,
                      struct snapshot_rec *out, struct apierr *err);

/* Captures running sandbox `sandbox` as snapshot name: the guest's root
 * filesystem is synced and frozen through its agent while the overlay is
 * copied, then thawed (also on failure); the copy is folded into a new image
 * over the sandbox's snapshot. *out is ready. Releases svc_lock while it
 * waits on the guest and the disk. */
int snapshot_capture(struct svc *svc, const char *name, const char *sandbox,
                     struct snapshot_rec *out, struct apierr *err);

/* At start-up: when no snapshot called name exists (or it failed), builds one
 * from the raw ext4 image at path in the background. */
int snapshot_ensure(struct svc *svc, const char *name, const char *path, struct apierr *err);

/* By id or name. */
int snapshot_get(struct svc *svc, const char *id_or_name, struct snapshot_rec *out,
                 struct apierr *err);
/* Deletes the record and its image; conflict while sandboxes use it or while
 * it builds. Unreferenced chunks are freed later on a background thread. */
int snapshot_delete(struct svc *svc, const char *id_or_name, struct apierr *err);
/* A JSON array of all snapshots, oldest first; NULL with err on failure. */
json_t *snapshot_list_json(struct svc *svc, struct apierr *err);

/* The public JSON form of a snapshot, its image_config included. New reference. */
json_t *snapshot_to_json(struct svc *svc, const struct snapshot_rec *rec);
/* The run settings kept from snapshot id's container image config as a JSON
 * object {"env": ["K=V", ...], "working_dir": "/app", "user": "app"} (only
 * those the image sets), or JSON null when it has none. New reference. */
json_t *snapshot_config_json(struct svc *svc, const char *id);

#endif
