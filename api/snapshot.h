/* Snapshot records. Building images (from a container image or by capturing
 * a sandbox) is not available yet; an existing snapfs image under the
 * snapshot directory can be registered. Calls return 0, or -1 with err. */
#ifndef SBX_API_SNAPSHOT_H
#define SBX_API_SNAPSHOT_H

#include "apierr.h"
#include "service.h"

#include <jansson.h>

/* Records image_path (which must resolve inside svc->snapshot_dir and be a
 * regular file) as snapshot name. */
int snapshot_register(struct svc *svc, const char *name, const char *image_path,
                      struct snapshot_rec *out, struct apierr *err);
/* By id or name. */
int snapshot_get(struct svc *svc, const char *id_or_name, struct snapshot_rec *out,
                 struct apierr *err);
/* Deletes the record (not the image file); conflict while sandboxes use it. */
int snapshot_delete(struct svc *svc, const char *id_or_name, struct apierr *err);
/* A JSON array of all snapshots, oldest first; NULL with err on failure. */
json_t *snapshot_list_json(struct svc *svc, struct apierr *err);

/* The public JSON form of a snapshot. New reference. */
json_t *snapshot_to_json(const struct snapshot_rec *rec);

#endif
