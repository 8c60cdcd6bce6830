/* Snapshot records and the build threads' life cycle. */
#include "snapshot_int.h"

#include "apilog.h"
#include "oci_ref.h"
#include "oci_registry.h"
#include "startcmd.h"
#include "validate.h"

#include "../snapfs/snapfs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Set (under the lock) by snapshot_shutdown: the store may be closed. */
static bool shutting_down;

struct build_job {
    struct svc *svc;
    char id[STORE_ID_LEN];
    char name[STORE_NAME_LEN];
    char source[STORE_PATH_LEN];
    enum snap_source kind;
    int64_t capacity_gib;
    char *reg_user, *reg_password;  /* the registry login of a pull, or NULL */
    json_t *command;                /* the start_command replacing the image's, or NULL */
};

/* free() of a string that held a secret, wiped first. */
static void free_secret(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

/* Wipes and drops the job's registry login. */
static void job_forget_login(struct build_job *job)
{
    free_secret(job->reg_user);
    free_secret(job->reg_password);
    job->reg_user = job->reg_password = NULL;
}

static void job_free(struct build_job *job)
{
    job_forget_login(job);
    json_decref(job->command);
    free(job);
}

bool snap_lock(void)
{
    if (svc_lock_held())
        return false;
    svc_lock();
    return true;
}

void snap_unlock(bool taken)
{
    if (taken)
        svc_unlock();
}

void snapshot_store_path(const struct svc *svc, char *out, size_t len)
{
    snprintf(out, len, "%s/store", svc->state_dir);
}

static void tmp_path(const struct svc *svc, char *out, size_t len)
{
    snprintf(out, len, "%s/tmp", svc->state_dir);
}

struct rec_list {
    struct snapshot_rec *items;
    size_t n;
};

/* Appends a copy of rec to list; 1 (stop) when out of memory. */
static int collect(struct rec_list *list, const struct snapshot_rec *rec)
{
    struct snapshot_rec *copy = realloc(list->items, (list->n + 1) * sizeof(*copy));

    if (!copy)
        return 1;
    list->items = copy;
    list->items[list->n++] = *rec;
    return 0;
}

/* Builds that were running when sbx-api stopped cannot be resumed. */
static int fail_interrupted(void *arg, const struct snapshot_rec *rec)
{
    return strcmp(rec->status, "building") ? 0 : collect(arg, rec);
}

/* Ready rows of schema 1 name a registered file that was never imported into
 * the store: import it (in the background) so their sandboxes can boot. */
static int collect_legacy(void *arg, const struct snapshot_rec *rec)
{
    return strcmp(rec->status, "ready") || !rec->image_path[0] ? 0 : collect(arg, rec);
}

static void *build_main(void *arg);

static void import_legacy(struct svc *svc, struct snapfs_store *s)
{
    struct rec_list list = { 0 };
    struct snapfs_image_info info;

    store_snapshot_each(svc->store, collect_legacy, &list);
    for (size_t i = 0; i < list.n; i++) {
        struct snapshot_rec *r = &list.items[i];
        struct build_job *job;

        if (snapfs_image_info(s, r->id, &info) == 0 || !(job = calloc(1, sizeof(*job))))
            continue;
        *job = (struct build_job){ .svc = svc, .kind = SNAP_SRC_RAW };
        snprintf(job->id, sizeof(job->id), "%s", r->id);
        snprintf(job->name, sizeof(job->name), "%s", r->name);
        snprintf(job->source, sizeof(job->source), "%s", r->image_path);
        snprintf(r->status, sizeof(r->status), "building");
        if (store_snapshot_update(svc->store, r) || svc_start_detached(build_main, job)) {
            free(job);
            continue;
        }
        log_info("snapshot %s (%s): importing %s into the store", r->name, r->id,
                 r->image_path);
    }
    free(list.items);
}

int snapshot_init(struct svc *svc)
{
    struct rec_list list = { 0 };
    char store[STORE_PATH_LEN], tmp[STORE_PATH_LEN];
    struct snapfs_store *s;
    bool taken;

    snapshot_store_path(svc, store, sizeof(store));
    s = snapfs_store_open(store, 1);
    if (!s) {
        log_err("cannot create the snapshot store %s: %s", store, snapfs_error());
        return -EIO;
    }
    tmp_path(svc, tmp, sizeof(tmp));
    snapbuild_rmtree(tmp);
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
        log_err("cannot create %s: %s", tmp, strerror(errno));
        snapfs_store_close(s);
        return -errno;
    }
    taken = snap_lock();     /* the imports started below take it too */
    store_snapshot_each(svc->store, fail_interrupted, &list);
    for (size_t i = 0; i < list.n; i++) {
        struct snapshot_rec *r = &list.items[i];
        snapfs_rm(s, r->id);
        snprintf(r->status, sizeof(r->status), "failed");
        snprintf(r->status_message, sizeof(r->status_message),
                 "the build was interrupted by an sbx-api restart");
        store_snapshot_update(svc->store, r);
        log_warn("snapshot %s (%s): build interrupted", r->name, r->id);
    }
    free(list.items);
    import_legacy(svc, s);
    snap_unlock(taken);
    snapfs_store_close(s);
    return 0;
}

bool snapshot_is_shut_down(void)
{
    return shutting_down;
}

void snapshot_shutdown(struct svc *svc)
{
    bool taken = snap_lock();

    (void)svc;
    shutting_down = true;
    snap_unlock(taken);
}

void snapshot_finish(struct svc *svc, const char *id, bool ok, const char *msg,
                     const char *image_config)
{
    char store[STORE_PATH_LEN];
    struct snapshot_rec rec;
    bool taken;

    snapshot_store_path(svc, store, sizeof(store));
    taken = snap_lock();
    if (shutting_down || store_snapshot_get(svc->store, id, &rec))
        goto out;
    if (ok) {
        int rc = snapbuild_image_size(store, id, &rec.size_bytes, &rec.stored_bytes);
        if (rc) {
            ok = false;
            msg = "the image vanished from the store";
        }
    }
    if (ok && image_config && store_snapshot_set_config(svc->store, id, image_config)) {
        ok = false;
        msg = "cannot record the image config";
    }
    snprintf(rec.status, sizeof(rec.status), "%s", ok ? "ready" : "failed");
    snprintf(rec.status_message, sizeof(rec.status_message), "%s", ok ? "" : msg);
    if (store_snapshot_update(svc->store, &rec))
        log_err("snapshot %s: cannot record the end of its build", rec.name);
    else if (ok)
        log_info("snapshot %s (%s) ready: %lld bytes, %lld stored", rec.name, id,
                 (long long)rec.size_bytes, (long long)rec.stored_bytes);
    else
        log_warn("snapshot %s (%s) failed: %s", rec.name, id, msg);
out:
    snap_unlock(taken);
}

/* *config (run settings text, or NULL) with its command replaced by argv. */
static int replace_command(char **config, const json_t *argv)
{
    char *out;

    if (startcmd_replace(*config, argv, &out))
        return -1;
    free(*config);
    *config = out;
    return 0;
}

static void *build_main(void *arg)
{
    struct build_job *job = arg;
    struct oci_registry_auth auth = { .username = job->reg_user,
                                      .password = job->reg_password };
    char msg[STORE_MSG_LEN] = "", *config = NULL;
    int rc;

    rc = snapbuild_make_image(job->svc->state_dir, job->id, job->name, job->kind, job->source,
                              job->reg_user ? &auth : NULL, job->capacity_gib, &config, msg,
                              sizeof(msg));
    job_forget_login(job);
    if (rc == 0 && job->command && replace_command(&config, job->command)) {
        rc = -1;
        snprintf(msg, sizeof(msg), "out of memory");
    }
    snapshot_finish(job->svc, job->id, rc == 0, msg, config);
    free(config);
    job_free(job);
    return NULL;
}

int snapshot_insert_row(struct svc *svc, const char *name, const char *source,
                      struct snapshot_rec *out, struct apierr *err)
{
    int rc;

    if (valid_name("snapshot", name, err))
        return -1;
    memset(out, 0, sizeof(*out));
    if (svc_new_id(out->id))
        return apierr_set(err, APIERR_INTERNAL, "no randomness for an id");
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->status, sizeof(out->status), "building");
    snprintf(out->source, sizeof(out->source), "%.*s", (int)sizeof(out->source) - 1, source);
    out->created_ms = svc_now_ms();
    rc = store_snapshot_insert(svc->store, out);
    if (rc == -EEXIST)
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' already exists", name);
    if (rc)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    return 0;
}

/* A job for a build of kind, with copies of the registry login auth (NULL:
 * none) and of the start command (NULL: the image's); NULL when out of memory. */
static struct build_job *new_job(struct svc *svc, enum snap_source kind, int64_t capacity_gib,
                                 const struct oci_registry_auth *auth, const json_t *command)
{
    struct build_job *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    *job = (struct build_job){ .svc = svc, .kind = kind, .capacity_gib = capacity_gib };
    if (auth && (!(job->reg_user = strdup(auth->username)) ||
                 !(job->reg_password = strdup(auth->password)))) {
        job_free(job);
        return NULL;
    }
    if (command && !(job->command = json_deep_copy(command))) {
        job_free(job);
        return NULL;
    }
    return job;
}

static int start_build(struct svc *svc, const char *name, const char *source,
                       enum snap_source kind, int64_t capacity_gib,
                       const struct oci_registry_auth *auth, const json_t *command,
                       struct snapshot_rec *out, struct apierr *err)
{
    struct build_job *job = new_job(svc, kind, capacity_gib, auth, command);
    int rc;

    if (!job)
        return apierr_set(err, APIERR_INTERNAL, "out of memory");
    if (snapshot_insert_row(svc, name, source, out, err)) {
        job_free(job);
        return -1;
    }
    snprintf(job->id, sizeof(job->id), "%s", out->id);
    snprintf(job->name, sizeof(job->name), "%s", name);
    snprintf(job->source, sizeof(job->source), "%.*s", (int)sizeof(job->source) - 1, source);
    rc = svc_start_detached(build_main, job);
    if (rc) {
        job_free(job);
        store_snapshot_delete(svc->store, out->id);
        return apierr_set(err, APIERR_INTERNAL, "cannot start a build thread: %s",
                          strerror(-rc));
    }
    log_info("snapshot %s (%s): building from %s", name, out->id, source);
    return 0;
}

/* Image reference image: checks it now, pulls it on the build thread (with
 * the login auth when not NULL, and the start command when not NULL). */
static int build_from_registry(struct svc *svc, const char *name, const char *image,
                               int64_t capacity_gib, const struct oci_registry_auth *auth,
                               const json_t *command, struct snapshot_rec *out,
                               struct apierr *err)
{
    char why[STORE_MSG_LEN], full[STORE_PATH_LEN - 16], canon[STORE_PATH_LEN];
    struct oci_ref ref;
    bool taken;
    int rc;

    if (oci_ref_parse(image, &ref, why, sizeof(why)))
        return apierr_set(err, APIERR_VALIDATION, "docker_image %.200s: %s", image, why);
    oci_ref_format(&ref, full, sizeof(full));
    snprintf(canon, sizeof(canon), "%s%s", SNAP_DOCKER_PREFIX, full);
    taken = snap_lock();
    rc = start_build(svc, name, canon, SNAP_SRC_REGISTRY, capacity_gib, auth, command, out, err);
    snap_unlock(taken);
    return rc;
}

int snapshot_build_docker_cmd(struct svc *svc, const char *name, const char *image,
                              int64_t capacity_gib, const char *username, const char *password,
                              const json_t *start_command, struct snapshot_rec *out,
                              struct apierr *err)
{
    struct oci_registry_auth auth = { .username = username, .password = password };

    if (!username != !password)
        return apierr_set(err, APIERR_VALIDATION,
                          "registry_auth needs both username and password");
    if (start_command && startcmd_check(start_command, err))
        return -1;
    return build_from_registry(svc, name, image, capacity_gib, username ? &auth : NULL,
                               start_command, out, err);
}

int snapshot_build_docker(struct svc *svc, const char *name, const char *image,
                          int64_t capacity_gib, const char *username, const char *password,
                          struct snapshot_rec *out, struct apierr *err)
{
    return snapshot_build_docker_cmd(svc, name, image, capacity_gib, username, password, NULL,
                                     out, err);
}

int snapshot_build(struct svc *svc, const char *name, const char *source, int64_t capacity_gib,
                   struct snapshot_rec *out, struct apierr *err)
{
    return snapshot_build_cmd(svc, name, source, capacity_gib, NULL, out, err);
}

int snapshot_build_cmd(struct svc *svc, const char *name, const char *source,
                       int64_t capacity_gib, const json_t *start_command,
                       struct snapshot_rec *out, struct apierr *err)
{
    char why[STORE_MSG_LEN], real[PATH_MAX];
    enum snap_source kind;
    bool taken;
    int rc;

    if (start_command && startcmd_check(start_command, err))
        return -1;
    if (!strncmp(source, SNAP_DOCKER_PREFIX, strlen(SNAP_DOCKER_PREFIX)))
        return build_from_registry(svc, name, source + strlen(SNAP_DOCKER_PREFIX),
                                   capacity_gib, NULL, start_command, out, err);
    if (!realpath(source, real))
        return apierr_set(err, APIERR_VALIDATION, "source %.200s: %s", source, strerror(errno));
    if (strlen(real) >= STORE_PATH_LEN)
        return apierr_set(err, APIERR_VALIDATION, "source path is too long");
    if (snapbuild_source_kind(real, &kind, why, sizeof(why)))
        return apierr_set(err, APIERR_VALIDATION, "source %.200s: %s", source, why);
    taken = snap_lock();
    rc = start_build(svc, name, real, kind, capacity_gib, NULL, start_command, out, err);
    snap_unlock(taken);
    return rc;
}

int snapshot_ensure(struct svc *svc, const char *name, const char *path, struct apierr *err)
{
    struct snapshot_rec rec;
    bool taken = snap_lock();
    int rc = 0;

    if (store_snapshot_get(svc->store, name, &rec) == 0) {
        if (strcmp(rec.status, "failed"))
            goto out;
        log_info("snapshot %s failed before (%s): building it again", name, rec.status_message);
        store_snapshot_delete(svc->store, rec.id);
    }
    rc = snapshot_build(svc, name, path, SNAPSHOT_DEFAULT_CAPACITY_GIB, &rec, err);
out:
    snap_unlock(taken);
    return rc;
}

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

/* Imports path as image id, with the lock released meanwhile when held. */
static int import_unlocked(struct svc *svc, const char *id, const char *label, const char *path,
                           char *msg, size_t msglen)
{
    bool held = svc_lock_held();
    int rc;

    if (held)
        svc_unlock();
    rc = snapbuild_import(svc->state_dir, path, id, label, msg, msglen);
    if (held)
        svc_lock();
    return rc;
}

int snapshot_register(struct svc *svc, const char *name, const char *image_path,
                      struct snapshot_rec *out, struct apierr *err)
{
    char real[STORE_PATH_LEN], msg[STORE_MSG_LEN] = "";
    bool taken = snap_lock();
    int rc = -1;

    if (resolve_image(svc->snapshot_dir, image_path, real, err) ||
        snapshot_insert_row(svc, name, real, out, err))
        goto out;
    snap_unlock(taken);
    rc = import_unlocked(svc, out->id, name, real, msg, sizeof(msg));
    taken = snap_lock();
    snapshot_finish(svc, out->id, rc == 0, msg, NULL);
    if (store_snapshot_get(svc->store, out->id, out) || strcmp(out->status, "ready")) {
        rc = apierr_set(err, APIERR_VALIDATION, "image_path: %s", msg[0] ? msg : "not imported");
        store_snapshot_delete(svc->store, out->id);
        goto out;
    }
    log_info("snapshot %s (%s) imported from %s", name, out->id, real);
out:
    snap_unlock(taken);
    return rc;
}

int snapshot_get(struct svc *svc, const char *id_or_name, struct snapshot_rec *out,
                 struct apierr *err)
{
    bool taken = snap_lock();
    int rc = store_snapshot_get(svc->store, id_or_name, out);

    snap_unlock(taken);
    if (rc == -ENOENT)
        return apierr_set(err, APIERR_NOT_FOUND, "snapshot '%.64s' not found", id_or_name);
    if (rc)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    return 0;
}

/* Frees the chunks no image refers to any more; waits for builds in flight. */
static void *gc_main(void *arg)
{
    char *store_path = arg;
    struct snapfs_store *store = snapfs_store_open(store_path, 0);
    uint64_t freed = 0;

    if (store && snapfs_gc(store, &freed) == 0)
        log_info("snapshot store: %llu bytes freed", (unsigned long long)freed);
    else
        log_warn("snapshot store gc: %s", snapfs_error());
    snapfs_store_close(store);
    free(store_path);
    return NULL;
}

static void start_gc(const struct svc *svc)
{
    char *path = malloc(STORE_PATH_LEN);

    if (!path)
        return;
    snapshot_store_path(svc, path, STORE_PATH_LEN);
    if (svc_start_detached(gc_main, path))
        free(path);
}

static int delete_locked(struct svc *svc, const char *id_or_name, struct apierr *err)
{
    char store_path[STORE_PATH_LEN];
    struct snapfs_store *store;
    struct snapshot_rec rec;
    int64_t users;

    if (snapshot_get(svc, id_or_name, &rec, err))
        return -1;
    if (!strcmp(rec.status, "building"))
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' is still building", rec.name);
    users = store_snapshot_users(svc->store, rec.id);
    if (users < 0)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    if (users > 0)
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' is used by %lld sandbox(es)",
                          rec.name, (long long)users);
    if (store_snapshot_delete(svc->store, rec.id))
        return apierr_set(err, APIERR_INTERNAL, "database error");
    snapshot_store_path(svc, store_path, sizeof(store_path));
    store = snapfs_store_open(store_path, 0);
    if (store && snapfs_rm(store, rec.id) < 0 && errno != ENOENT)
        log_warn("snapshot %s: %s", rec.name, snapfs_error());
    snapfs_store_close(store);
    start_gc(svc);
    log_info("snapshot %s (%s) deleted", rec.name, rec.id);
    return 0;
}

int snapshot_delete(struct svc *svc, const char *id_or_name, struct apierr *err)
{
    bool taken = snap_lock();
    int rc = delete_locked(svc, id_or_name, err);

    snap_unlock(taken);
    return rc;
}

json_t *snapshot_config_json(struct svc *svc, const char *id)
{
    bool taken = snap_lock();
    char *text = NULL;
    json_t *obj = NULL;

    if (store_snapshot_get_config(svc->store, id, &text) == 0 && text[0])
        obj = json_loads(text, 0, NULL);
    snap_unlock(taken);
    free(text);
    return json_is_object(obj) ? obj : (json_decref(obj), json_null());
}

json_t *snapshot_to_json(struct svc *svc, const struct snapshot_rec *r)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "id", json_string(r->id));
    json_object_set_new(obj, "name", json_string(r->name));
    json_object_set_new(obj, "status", json_string(r->status));
    json_object_set_new(obj, "status_message",
                        r->status_message[0] ? json_string(r->status_message) : json_null());
    json_object_set_new(obj, "source", r->source[0] ? json_string(r->source) : json_null());
    json_object_set_new(obj, "size_bytes", json_integer(r->size_bytes));
    json_object_set_new(obj, "stored_bytes", json_integer(r->stored_bytes));
    json_object_set_new(obj, "created_at", svc_time_json(r->created_ms));
    json_object_set_new(obj, "image_config", snapshot_config_json(svc, r->id));
    return obj;
}

struct list_ctx {
    struct svc *svc;
    json_t *arr;
};

static int append_json(void *arg, const struct snapshot_rec *rec)
{
    struct list_ctx *l = arg;

    return json_array_append_new(l->arr, snapshot_to_json(l->svc, rec)) ? 1 : 0;
}

json_t *snapshot_list_json(struct svc *svc, struct apierr *err)
{
    json_t *arr = json_array();
    struct list_ctx l = { .svc = svc, .arr = arr };
    bool taken = snap_lock();
    int rc = arr ? store_snapshot_each(svc->store, append_json, &l) : -ENOMEM;

    snap_unlock(taken);
    if (rc) {
        json_decref(arr);
        apierr_set(err, APIERR_INTERNAL, "cannot list snapshots");
        return NULL;
    }
    return arr;
}
