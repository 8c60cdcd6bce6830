/* Sandbox lifecycle on top of the store and the driver. */
#include "sandbox.h"

#include "agent_client.h"
#include "apilog.h"
#include "ports.h"
#include "snapshot.h"
#include "startcmd.h"
#include "validate.h"

#include "../snapfs/snapfs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POWEROFF_ASK_TIMEOUT_S 5  /* for the agent to take a power-off request */

struct sandbox_paths {
    char dir[STORE_PATH_LEN];
    char store[STORE_PATH_LEN];
    char link[STORE_PATH_LEN + STORE_NAME_LEN];     /* STATE/names/NAME */
    char overlay[STORE_PATH_LEN + 16];
    char console[STORE_PATH_LEN + 16];
    char vsock[STORE_PATH_LEN + 16];
    char log[STORE_PATH_LEN + 16];
};

static void sandbox_paths(const struct svc *svc, const struct sandbox_rec *rec,
                          struct sandbox_paths *p)
{
    snprintf(p->dir, sizeof(p->dir), "%s/sandboxes/%s", svc->state_dir, rec->id);
    snapshot_store_path(svc, p->store, sizeof(p->store));
    snprintf(p->link, sizeof(p->link), "%s/names/%s", svc->state_dir, rec->name);
    snprintf(p->overlay, sizeof(p->overlay), "%s/overlay", p->dir);
    snprintf(p->console, sizeof(p->console), "%s/console.log", p->dir);
    snprintf(p->vsock, sizeof(p->vsock), "%s/vsock.sock", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/vmm.log", p->dir);
}

static int store_err(int rc, const char *what, const char *name, struct apierr *err)
{
    if (rc == -ENOENT)
        return apierr_set(err, APIERR_NOT_FOUND, "%s '%s' not found", what, name);
    if (rc == -EEXIST)
        return apierr_set(err, APIERR_CONFLICT, "%s '%s' already exists", what, name);
    return apierr_set(err, APIERR_INTERNAL, "database error");
}

int sandbox_get(struct svc *svc, const char *name, struct sandbox_rec *out, struct apierr *err)
{
    int rc = store_sandbox_get(svc->store, name, out);

    return rc ? store_err(rc, "sandbox", name, err) : 0;
}

static int save(struct svc *svc, struct sandbox_rec *rec, struct apierr *err)
{
    rec->updated_ms = svc_now_ms();
    if (store_sandbox_update(svc->store, rec))
        return apierr_set(err, APIERR_INTERNAL, "database error");
    return 0;
}

/* The sandbox's snapfs overlay on its snapshot's image, disk_bytes large (0:
 * the image's size; never less). sbx-init grows the root file system to fill it. */
static int make_overlay(const struct sandbox_paths *p, const char *snapshot_id,
                        uint64_t disk_bytes, struct apierr *err)
{
    struct snapfs_store *store = snapfs_store_open(p->store, 0);
    int rc;

    if (!store)
        return apierr_set(err, APIERR_INTERNAL, "cannot open the snapshot store: %s",
                          snapfs_error());
    rc = snapfs_overlay_create_sized(store, snapshot_id, p->overlay, disk_bytes);
    snapfs_store_close(store);
    if (rc < 0)
        return apierr_set(err, APIERR_INTERNAL, "cannot create the disk overlay: %s",
                          snapfs_error());
    return 0;
}

/* STATE/sandboxes/ID/ with the overlay in it. */
static int make_state_dir(const struct sandbox_paths *p, const char *snapshot_id,
                          uint64_t disk_bytes, struct apierr *err)
{
    char parent[STORE_PATH_LEN];

    snprintf(parent, sizeof(parent), "%s", p->dir);
    *strrchr(parent, '/') = '\0';
    if ((mkdir(parent, 0700) < 0 && errno != EEXIST) || mkdir(p->dir, 0700) < 0)
        return apierr_set(err, APIERR_INTERNAL, "cannot create %s: %s", p->dir,
                          strerror(errno));
    return make_overlay(p, snapshot_id, disk_bytes, err);
}

/* STATE/names/NAME -> ../sandboxes/ID, replaced atomically (sbx-router reads it). */
static int make_name_link(const struct svc *svc, const struct sandbox_rec *rec,
                          const struct sandbox_paths *p)
{
    char dir[STORE_PATH_LEN], target[STORE_PATH_LEN], tmp[STORE_PATH_LEN + STORE_NAME_LEN + 8];

    snprintf(dir, sizeof(dir), "%s/names", svc->state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    snprintf(target, sizeof(target), "../sandboxes/%s", rec->id);
    snprintf(tmp, sizeof(tmp), "%s/.tmp.%s", dir, rec->name);
    unlink(tmp);
    if (symlink(target, tmp) < 0)
        return -errno;
    if (rename(tmp, p->link) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) < 0)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static void remove_state_dir(const struct sandbox_paths *p)
{
    nftw(p->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int check_running_quota(struct svc *svc, struct apierr *err)
{
    int64_t running = store_sandbox_count(svc->store, "running"),
            stopping = store_sandbox_count(svc->store, "stopping");

    if (running < 0 || stopping < 0)
        return apierr_set(err, APIERR_INTERNAL, "database error");
    running += stopping;        /* still holding their memory */
    if (running >= svc->limits.max_running)
        return apierr_set(err, APIERR_QUOTA, "at most %lld sandboxes may run at once",
                          (long long)svc->limits.max_running);
    return 0;
}

/* Boots rec (stopped or failed) and records the outcome either way. */
static int boot(struct svc *svc, struct sandbox_rec *rec, struct apierr *err)
{
    struct snapshot_rec snap;
    struct sandbox_paths p;
    struct driver_handle h = { 0 };
    char why[STORE_MSG_LEN] = "";
    int rc;

    if (store_snapshot_get(svc->store, rec->snapshot_id, &snap))
        return apierr_set(err, APIERR_CONFLICT, "snapshot %s of sandbox '%s' is gone",
                          rec->snapshot_id, rec->name);
    if (strcmp(snap.status, "ready"))
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' is %s", snap.name, snap.status);
    sandbox_paths(svc, rec, &p);
    /* Sandboxes made by an sbx-api of schema 1 have no snapfs overlay yet. */
    if (access(p.overlay, F_OK) < 0 && make_overlay(&p, rec->snapshot_id, 0, err))
        return -1;
    struct driver_launch launch = {
        .sandbox_id = rec->id, .hostname = rec->name, .vcpus = rec->vcpus,
        .memory_mib = rec->memory_mib, .store_path = p.store, .overlay_path = p.overlay,
        .console_path = p.console, .vsock_path = p.vsock, .log_path = p.log,
    };
    rc = svc->driver->ops->start(svc->driver->self, &launch, &h, why, sizeof(why));
    rec->stopped_ms = 0;
    if (rc) {
        snprintf(rec->status, sizeof(rec->status), "failed");
        snprintf(rec->status_message, sizeof(rec->status_message), "%s", why);
        rec->stopped_ms = svc_now_ms();
        save(svc, rec, err);
        return apierr_set(err, APIERR_INTERNAL, "sandbox '%s' failed to start: %s", rec->name,
                          why);
    }
    snprintf(rec->status, sizeof(rec->status), "running");
    rec->status_message[0] = '\0';
    rec->vmm_pid = h.pid;
    rec->vmm_start_ticks = h.start_ticks;
    rec->started_ms = rec->last_activity_ms = svc_now_ms();
    if (save(svc, rec, err))
        return -1;
    startcmd_launch(svc, rec);
    return 0;
}

/* The disk's size in GiB: spec's (never below the snapshot's size), or by
 * default the larger of the default and the snapshot's size rounded up. */
static int disk_size(struct svc *svc, const struct sandbox_spec *spec,
                     const struct snapshot_rec *snap, int64_t *gib, struct apierr *err)
{
    int64_t snap_gib = (snap->size_bytes + (1ll << 30) - 1) >> 30;

    if (spec->disk_gib && spec->disk_gib < snap_gib)
        return apierr_set(err, APIERR_VALIDATION,
                          "disk_gib %lld is smaller than snapshot '%s' (%lld bytes; at least %lld)",
                          (long long)spec->disk_gib, snap->name, (long long)snap->size_bytes,
                          (long long)snap_gib);
    *gib = spec->disk_gib ? spec->disk_gib : svc->limits.default_disk_gib;
    if (*gib < snap_gib)
        *gib = snap_gib;
    return 0;
}

static int new_record(struct svc *svc, const struct sandbox_spec *spec, struct sandbox_rec *rec,
                      struct apierr *err)
{
    struct snapshot_rec snap;
    int64_t total;
    int rc;

    if (valid_name("sandbox", spec->name, err))
        return -1;
    if (store_sandbox_get(svc->store, spec->name, rec) == 0)
        return apierr_set(err, APIERR_CONFLICT, "sandbox '%s' already exists", spec->name);
    rc = store_snapshot_get(svc->store, spec->snapshot, &snap);
    if (rc)
        return store_err(rc, "snapshot", spec->snapshot, err);
    if (strcmp(snap.status, "ready"))
        return apierr_set(err, APIERR_CONFLICT, "snapshot '%s' is %s", snap.name, snap.status);
    total = store_sandbox_count(svc->store, "running") + store_sandbox_count(svc->store, "stopping") +
            store_sandbox_count(svc->store, "stopped") + store_sandbox_count(svc->store, "failed");
    if (total >= svc->limits.max_sandboxes)
        return apierr_set(err, APIERR_QUOTA, "at most %lld sandboxes may exist",
                          (long long)svc->limits.max_sandboxes);
    memset(rec, 0, sizeof(*rec));
    if (svc_new_id(rec->id))
        return apierr_set(err, APIERR_INTERNAL, "no randomness for an id");
    snprintf(rec->name, sizeof(rec->name), "%s", spec->name);
    snprintf(rec->snapshot_id, sizeof(rec->snapshot_id), "%s", snap.id);
    snprintf(rec->status, sizeof(rec->status), "stopped");
    rec->vcpus = spec->vcpus;
    rec->memory_mib = spec->memory_mib;
    if (disk_size(svc, spec, &snap, &rec->disk_gib, err))
        return -1;
    rec->idle_ttl_seconds = spec->idle_ttl_seconds;
    rec->delete_after_stop_seconds = spec->delete_after_stop_seconds;
    rec->created_ms = rec->updated_ms = rec->last_activity_ms = svc_now_ms();
    return 0;
}

static int mark_public(struct svc *svc, const struct sandbox_spec *spec, const char *id,
                       struct apierr *err)
{
    for (size_t i = 0; i < spec->n_public_ports; i++)
        if (ports_set(svc, id, spec->public_ports[i], true, err))
            return -1;
    return 0;
}

int sandbox_create(struct svc *svc, const struct sandbox_spec *spec, struct sandbox_rec *out,
                   struct apierr *err)
{
    struct sandbox_paths p;
    int rc;

    if (new_record(svc, spec, out, err) || check_running_quota(svc, err))
        return -1;
    rc = store_sandbox_insert(svc->store, out);
    if (rc)
        return store_err(rc, "sandbox", spec->name, err);
    sandbox_paths(svc, out, &p);
    if (make_state_dir(&p, out->snapshot_id, (uint64_t)out->disk_gib << 30, err) ||
        mark_public(svc, spec, out->id, err) ||
        boot(svc, out, err)) {
        remove_state_dir(&p);
        store_sandbox_delete(svc->store, out->id);
        return -1;
    }
    if ((rc = make_name_link(svc, out, &p)))
        log_warn("sandbox %s: cannot link %s: %s", out->name, p.link, strerror(-rc));
    log_info("sandbox %s (%s) created", out->name, out->id);
    return 0;
}

int sandbox_update(struct svc *svc, const char *name, const struct sandbox_changes *ch,
                   struct sandbox_rec *out, struct apierr *err)
{
    if (sandbox_get(svc, name, out, err))
        return -1;
    if (ch->has_vcpus)
        out->vcpus = ch->vcpus;
    if (ch->has_memory_mib)
        out->memory_mib = ch->memory_mib;
    if (ch->has_idle_ttl)
        out->idle_ttl_seconds = ch->idle_ttl_seconds;
    if (ch->has_delete_after_stop)
        out->delete_after_stop_seconds = ch->delete_after_stop_seconds;
    return save(svc, out, err);
}

int sandbox_start(struct svc *svc, const char *name, struct sandbox_rec *out,
                  struct apierr *err)
{
    if (sandbox_get(svc, name, out, err))
        return -1;
    if (!strcmp(out->status, "running"))
        return apierr_set(err, APIERR_CONFLICT, "sandbox '%s' is already running", name);
    if (!strcmp(out->status, "stopping"))
        return apierr_set(err, APIERR_CONFLICT, "sandbox '%s' is stopping", name);
    if (check_running_quota(svc, err))
        return -1;
    if (boot(svc, out, err))
        return -1;
    log_info("sandbox %s started", name);
    return 0;
}

/* Asks the guest agent behind vsock to power the guest off: it stops the
 * guest's processes, syncs and makes the root disk read-only first. */
static int ask_poweroff(const char *vsock)
{
    struct agent_client c;
    int rc = agent_client_open_vsock(&c, vsock, POWEROFF_ASK_TIMEOUT_S);

    if (rc == 0)
        rc = agent_client_shutdown(&c);
    agent_client_close(&c);
    return rc;
}

/* The orderly first half of a stop, so that what the guest wrote without a
 * sync survives: the guest is asked to power off and its VMM given
 * svc->poweroff_timeout_ms to exit by itself. The service lock is released
 * meanwhile, the sandbox marked "stopping" so that no request starts, execs
 * in or deletes it; *rec is read again afterwards. */
static int power_off_guest(struct svc *svc, struct sandbox_rec *rec, struct apierr *err)
{
    struct driver_handle h = { .pid = rec->vmm_pid, .start_ticks = rec->vmm_start_ticks };
    struct sandbox_paths p;
    int64_t t0 = svc_now_ms();
    int rc, gone = 0;

    if (svc->poweroff_timeout_ms <= 0)
        return 0;
    sandbox_paths(svc, rec, &p);
    snprintf(rec->status, sizeof(rec->status), "stopping");
    if (save(svc, rec, err))
        return -1;
    svc_unlock();
    rc = ask_poweroff(p.vsock);
    if (rc == 0)
        gone = svc->driver->ops->wait_exit(svc->driver->self, &h, (int)svc->poweroff_timeout_ms);
    svc_lock();
    if (rc)
        log_warn("sandbox %s: the guest agent did not take the power-off: %s", rec->name,
                 strerror(-rc));
    else if (!gone)
        log_warn("sandbox %s: the guest did not power off within %lld ms", rec->name,
                 (long long)svc->poweroff_timeout_ms);
    else
        log_debug("sandbox %s: the guest powered off in %lld ms", rec->name,
                  (long long)(svc_now_ms() - t0));
    rc = store_sandbox_get_by_id(svc->store, rec->id, rec);
    return rc ? apierr_set(err, APIERR_INTERNAL, "database error") : 0;
}

/* Stops rec's VMM: orderly (a guest power-off) unless the sandbox's disk is
 * about to be thrown away, then forced for what is left. */
static int halt(struct svc *svc, struct sandbox_rec *rec, const char *reason, bool orderly,
                struct apierr *err)
{
    struct driver_handle h;
    int rc;

    if (orderly && power_off_guest(svc, rec, err))
        return -1;
    h = (struct driver_handle){ .pid = rec->vmm_pid, .start_ticks = rec->vmm_start_ticks };
    rc = svc->driver->ops->stop(svc->driver->self, rec->id, &h);

    if (rc == -ETIMEDOUT)
        return apierr_set(err, APIERR_TIMEOUT, "sbx-vmm of sandbox '%s' did not exit",
                          rec->name);
    if (rc)
        return apierr_set(err, APIERR_INTERNAL, "cannot stop sandbox '%s': %s", rec->name,
                          strerror(-rc));
    snprintf(rec->status, sizeof(rec->status), "stopped");
    snprintf(rec->status_message, sizeof(rec->status_message), "%s", reason);
    rec->vmm_pid = rec->vmm_start_ticks = 0;
    rec->stopped_ms = svc_now_ms();
    startcmd_forget(svc, rec->id);
    return save(svc, rec, err);
}

int sandbox_stop(struct svc *svc, const char *name, const char *reason, struct sandbox_rec *out,
                 struct apierr *err)
{
    if (sandbox_get(svc, name, out, err))
        return -1;
    if (strcmp(out->status, "running"))
        return apierr_set(err, APIERR_CONFLICT, "sandbox '%s' is not running (status %s)",
                          name, out->status);
    if (halt(svc, out, reason, true, err))
        return -1;
    log_info("sandbox %s stopped: %s", name, reason);
    return 0;
}

int sandbox_delete(struct svc *svc, const char *name, struct apierr *err)
{
    struct sandbox_rec rec;
    struct sandbox_paths p;
    int rc;

    if (sandbox_get(svc, name, &rec, err))
        return -1;
    if (!strcmp(rec.status, "stopping"))
        return apierr_set(err, APIERR_CONFLICT, "sandbox '%s' is stopping", name);
    if (!strcmp(rec.status, "running") && halt(svc, &rec, "deleted", false, err))
        return -1;
    rc = store_sandbox_delete(svc->store, rec.id);
    if (rc)
        return store_err(rc, "sandbox", name, err);
    sandbox_paths(svc, &rec, &p);
    if (unlink(p.link) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", p.link, strerror(errno));
    remove_state_dir(&p);
    log_info("sandbox %s (%s) deleted", name, rec.id);
    return 0;
}

int sandbox_set_port_public(struct svc *svc, const char *name, unsigned port, bool public,
                            struct apierr *err)
{
    struct sandbox_rec rec;

    if (sandbox_get(svc, name, &rec, err) || ports_set(svc, rec.id, port, public, err))
        return -1;
    log_info("sandbox %s: port %u made %s", name, port, public ? "public" : "private");
    return 0;
}

int sandbox_touch(struct svc *svc, const char *name, struct apierr *err)
{
    struct sandbox_rec rec;

    if (sandbox_get(svc, name, &rec, err))
        return -1;
    rec.last_activity_ms = svc_now_ms();
    return save(svc, &rec, err);
}

void sandbox_on_vmm_exit(void *arg, const char *sandbox_id, bool powered_off,
                         const char *reason)
{
    struct svc *svc = arg;
    struct sandbox_rec rec;
    struct apierr err;

    if (store_sandbox_get_by_id(svc->store, sandbox_id, &rec) ||
        strcmp(rec.status, "running"))
        return;
    snprintf(rec.status, sizeof(rec.status), "%s", powered_off ? "stopped" : "failed");
    snprintf(rec.status_message, sizeof(rec.status_message), "%s", reason);
    rec.vmm_pid = rec.vmm_start_ticks = 0;
    rec.stopped_ms = svc_now_ms();
    startcmd_forget(svc, rec.id);
    if (save(svc, &rec, &err))
        log_err("sandbox %s: cannot record failure: %s", rec.name, err.message);
}

struct rec_array {
    struct sandbox_rec *items;
    size_t count, cap;
    int oom;
};

static int append_rec(void *arg, const struct sandbox_rec *rec)
{
    struct rec_array *a = arg;

    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct sandbox_rec *items = realloc(a->items, cap * sizeof(*items));
        if (!items) {
            a->oom = 1;
            return 1;
        }
        a->items = items;
        a->cap = cap;
    }
    a->items[a->count++] = *rec;
    return 0;
}

int sandbox_list(struct svc *svc, struct sandbox_rec **out, size_t *count, struct apierr *err)
{
    struct rec_array a = { 0 };

    if (store_sandbox_each(svc->store, append_rec, &a) || a.oom) {
        free(a.items);
        return apierr_set(err, APIERR_INTERNAL, "cannot list sandboxes");
    }
    *out = a.items;
    *count = a.count;
    return 0;
}

int sandbox_adopt_all(struct svc *svc)
{
    /* Snapshot imports may already run on their threads at start-up. */
    bool taken = !svc_lock_held();
    struct sandbox_rec *recs;
    struct apierr err;
    size_t n;
    int adopted = 0;

    if (taken)
        svc_lock();
    if (sandbox_list(svc, &recs, &n, &err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct sandbox_rec *rec = &recs[i];
        struct driver_handle h = { .pid = rec->vmm_pid, .start_ticks = rec->vmm_start_ticks };
        struct sandbox_paths p;
        int rc;

        sandbox_paths(svc, rec, &p);
        if ((rc = make_name_link(svc, rec, &p)))
            log_warn("sandbox %s: cannot link %s: %s", rec->name, p.link, strerror(-rc));
        if (!strcmp(rec->status, "stopping")) {     /* an sbx-api stopped amid a stop */
            if (halt(svc, rec, "stopped while sbx-api restarted", false, &err))
                log_err("sandbox %s: %s", rec->name, err.message);
            continue;
        }
        if (strcmp(rec->status, "running"))
            continue;
        if (svc->driver->ops->adopt(svc->driver->self, rec->id, &h) == 0) {
            adopted++;
            continue;
        }
        log_warn("sandbox %s: sbx-vmm pid %lld is gone", rec->name, (long long)rec->vmm_pid);
        sandbox_on_vmm_exit(svc, rec->id, false, "sbx-vmm exited while sbx-api was not running");
    }
    free(recs);
out:
    if (taken)
        svc_unlock();
    return adopted;
}

json_t *sandbox_to_json(struct svc *svc, const struct sandbox_rec *r)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "id", json_string(r->id));
    json_object_set_new(obj, "name", json_string(r->name));
    json_object_set_new(obj, "snapshot_id", json_string(r->snapshot_id));
    json_object_set_new(obj, "status", json_string(r->status));
    json_object_set_new(obj, "status_message",
                        r->status_message[0] ? json_string(r->status_message) : json_null());
    json_object_set_new(obj, "vcpus", json_integer(r->vcpus));
    json_object_set_new(obj, "memory_mib", json_integer(r->memory_mib));
    json_object_set_new(obj, "disk_gib", json_integer(r->disk_gib));
    json_object_set_new(obj, "idle_ttl_seconds", json_integer(r->idle_ttl_seconds));
    json_object_set_new(obj, "delete_after_stop_seconds",
                        json_integer(r->delete_after_stop_seconds));
    json_object_set_new(obj, "vmm_pid", r->vmm_pid ? json_integer(r->vmm_pid) : json_null());
    json_object_set_new(obj, "created_at", svc_time_json(r->created_ms));
    json_object_set_new(obj, "updated_at", svc_time_json(r->updated_ms));
    json_object_set_new(obj, "started_at", svc_time_json(r->started_ms));
    json_object_set_new(obj, "stopped_at", svc_time_json(r->stopped_ms));
    json_object_set_new(obj, "last_activity_at", svc_time_json(r->last_activity_ms));
    json_object_set_new(obj, "public_ports", ports_json(svc, r->id));
    json_object_set_new(obj, "start_command", startcmd_json(svc, r->id));
    return obj;
}
