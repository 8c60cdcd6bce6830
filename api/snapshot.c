/* Snapshot records. */
#include "snapshot.h"

#include "apilog.h"
#include "validate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* realpath(path) if it names a regular file inside dir; -1 with err if not. */
static int resolve_image(const char *dir, const char *path, char *out, struct apierr *err)
{
    char real_dir[PATH_MAX], real_path[PATH_MAX];
    size_t dlen;
    struct stat st;

    if (!realpath(dir, real_dir))
        return apierr_set(err, APIERR_INTERNAL, "snapshot directory unavailable: %s",
                          strerror(errno));
    if (!realpath(path, real_path) || stat(real_path, &st) < 0)
        return apierr_set(err, APIERR_VALIDATION, "image_path: %s", strerror(errno));
    dlen = strlen(real_dir);
    if (strncmp(real_path, real_dir, dlen) || real_path[dlen] != '/')
        return apierr_set(err, APIERR_VALIDATION,
                          "image_path must be inside the snapshot directory %s", real_dir);
    if (!S_ISREG(st.st_mode))
        return apierr_set(err, APIERR_VALIDATION, "image_path must be a regular file");
    if (strlen(real_path) >= STORE_PATH_LEN)
        return apierr_set(err, APIERR_VALIDATION, "image_path is too long");
    strcpy(out, real_path);
    return 0;
}

int snapshot_register(struct svc *svc, const char *name, const char *image_path,
                      struct snapshot_rec *out, struct apierr *err)
{
    struct stat st;
    int rc;

    if (valid_name("snapshot", name, err))
        return -1;
    memset(out, 0, sizeof(*out));
    if (resolve_image(svc->snapshot_dir, image_path, out->image_path, err))
        return -1;
    if (stat(out->image_path, &st) < 0)
        return apierr_set(err, APIERR_VALIDATION, "image_path: %s", strerror(errno));
    if (svc_new_id(out->id))
        return apierr_set(err, APIERR_INTERNAL, "no randomness for an id");
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->status, sizeof(out->status), "ready");
    out->size_bytes = st.st_size;
    out->created_ms = svc_now_ms();
    rc = store_snapshot_insert(svc->store, out);
    if (rc == -EEXIST)
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' already exists", name);
    if (rc)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    log_info("snapshot %s (%s) registered: %s", name, out->id, out->image_path);
    return 0;
}

int snapshot_get(struct svc *svc, const char *id_or_name, struct snapshot_rec *out,
                 struct apierr *err)
{
    int rc = store_snapshot_get(svc->store, id_or_name, out);

    if (rc == -ENOENT)
        return apierr_set(err, APIERR_NOT_FOUND, "snapshot '%.64s' not found", id_or_name);
    if (rc)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    return 0;
}

int snapshot_delete(struct svc *svc, const char *id_or_name, struct apierr *err)
{
    struct snapshot_rec rec;
    int64_t users;

    if (snapshot_get(svc, id_or_name, &rec, err))
        return -1;
    users = store_snapshot_users(svc->store, rec.id);
    if (users < 0)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    if (users > 0)
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' is used by %lld sandbox(es)",
                          rec.name, (long long)users);
    if (store_snapshot_delete(svc->store, rec.id))
        return apierr_set(err, APIERR_INTERNAL, "database error");
    log_info("snapshot %s (%s) deleted", rec.name, rec.id);
    return 0;
}

json_t *snapshot_to_json(const struct snapshot_rec *r)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "id", json_string(r->id));
    json_object_set_new(obj, "name", json_string(r->name));
    json_object_set_new(obj, "status", json_string(r->status));
    json_object_set_new(obj, "image_path", json_string(r->image_path));
    json_object_set_new(obj, "size_bytes", json_integer(r->size_bytes));
    json_object_set_new(obj, "created_at", svc_time_json(r->created_ms));
    return obj;
}

static int append_json(void *arg, const struct snapshot_rec *rec)
{
    return json_array_append_new(arg, snapshot_to_json(rec)) ? 1 : 0;
}

json_t *snapshot_list_json(struct svc *svc, struct apierr *err)
{
    json_t *arr = json_array();

    if (!arr || store_snapshot_each(svc->store, append_json, arr)) {
        json_decref(arr);
        apierr_set(err, APIERR_INTERNAL, "cannot list snapshots");
        return NULL;
    }
    return arr;
}
