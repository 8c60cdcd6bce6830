/* Capturing a running sandbox's disk as a new snapshot.
 *
 * The sandbox's VMM holds its overlay open (and locked) and keeps the
 * overlay's allocation map in memory, writing it out only when the guest
 * flushes (virtio-blk FLUSH -> snapfs_flush: fdatasync of the data, then the
 * changed map pages, then fdatasync of the map). So the capture goes:
 *
 * 1. agent SYNC, then FIFREEZE of the guest's / : the guest writes back every
 *    dirty block and its journal and, with the virtio write cache advertised,
 *    ends with a FLUSH that the VMM completes before the freeze returns. From
 *    then on the guest sends no writes, and the overlay files hold exactly
 *    the frozen disk.
 * 2. The overlay directory is copied (sparse; a reflink where the file system
 *    has them) to STATE/tmp/capture-ID.
 * 3. FITHAW, always, also when a step failed.
 * 4. The copy, which is an ordinary overlay nobody else holds, is opened with
 *    libsnapfs and folded into the new image (snapfs_capture), sharing the
 *    chunks of the base image it did not change; then the copy is removed.
 *
 * The guest stays frozen only for the copy, not for the compression; the VMM
 * keeps running throughout. */
#include "snapshot_int.h"

#include "agent_client.h"
#include "apilog.h"
#include "sandbox.h"

#include "../snapfs/snapfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define AGENT_PORT 52
#define AGENT_TIMEOUT_S 120     /* a sync may write back much dirty data */

struct capture_job {
    char overlay[STORE_PATH_LEN + 16];
    char vsock[STORE_PATH_LEN + 16];
    char copy[STORE_PATH_LEN + 64];
    char store[STORE_PATH_LEN];
    char id[STORE_ID_LEN];
    char name[STORE_NAME_LEN];
    char base[STORE_ID_LEN];
    enum apierr_type fail_type;     /* what a failure is reported as */
};

static int copy_file(int sdir, int ddir, const char *name)
{
    int src = openat(sdir, name, O_RDONLY | O_CLOEXEC), dst = -1, rc;
    struct stat st;

    if (src < 0 || fstat(src, &st) < 0) {
        rc = -errno;
        goto out;
    }
    dst = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    rc = dst < 0 ? -errno : snapbuild_copy_extents(src, dst, st.st_size);
out:
    if (src >= 0)
        close(src);
    if (dst >= 0)
        close(dst);
    return rc;
}

/* The overlay's head, data.* and map.* (not its lock) into a new folder. */
static int copy_overlay(const char *src, const char *dst, char *msg, size_t len)
{
    DIR *dir = opendir(src);
    struct dirent *de;
    int ddir = -1, rc = 0;

    if (!dir || mkdir(dst, 0700) < 0 || (ddir = open(dst, O_RDONLY | O_DIRECTORY)) < 0) {
        rc = -errno;
        snprintf(msg, len, "copying the overlay: %s", strerror(errno));
        goto out;
    }
    while (rc == 0 && (de = readdir(dir))) {
        const char *n = de->d_name;
        if (strcmp(n, "head") && strncmp(n, "data.", 5) && strncmp(n, "map.", 4))
            continue;
        rc = copy_file(dirfd(dir), ddir, n);
        if (rc)
            snprintf(msg, len, "copying the overlay's %.40s: %s", n, strerror(-rc));
    }
out:
    if (dir)
        closedir(dir);
    if (ddir >= 0)
        close(ddir);
    return rc;
}

static int agent_open(struct agent_client *c, const char *vsock, char *msg, size_t len)
{
    struct timeval tv = { .tv_sec = AGENT_TIMEOUT_S };
    int fd = agent_client_connect_vsock_uds(vsock, AGENT_PORT), rc;

    if (fd < 0) {
        snprintf(msg, len, "the guest agent is not reachable: %s", strerror(-fd));
        return fd;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    rc = agent_client_init(c, fd);
    if (rc)
        snprintf(msg, len, "the guest agent did not answer: %s", strerror(-rc));
    return rc;
}

/* FITHAW, on a fresh connection if the first one broke. */
static int thaw(struct agent_client *c, const char *vsock)
{
    char msg[STORE_MSG_LEN];
    int rc = agent_client_thaw(c, "/");

    if (rc == 0)
        return 0;
    agent_client_close(c);
    if (agent_open(c, vsock, msg, sizeof(msg)))
        return rc;
    return agent_client_thaw(c, "/");
}

/* Steps 1 to 3: a frozen, consistent copy of the overlay. */
static int frozen_copy(struct capture_job *j, char *msg, size_t len)
{
    struct agent_client c = { .fd = -1 };
    int rc;

    j->fail_type = APIERR_TIMEOUT;
    rc = agent_open(&c, j->vsock, msg, len);
    if (rc)
        goto out;
    j->fail_type = APIERR_INTERNAL;
    rc = agent_client_sync(&c);
    if (rc) {
        snprintf(msg, len, "sync in the guest: %.160s", c.error[0] ? c.error : strerror(-rc));
        goto out;
    }
    rc = agent_client_freeze(&c, "/");
    if (rc) {
        if (rc == -EBUSY)
            j->fail_type = APIERR_CONFLICT;
        snprintf(msg, len, "freezing the guest's root filesystem: %.160s",
                 c.error[0] ? c.error : strerror(-rc));
        goto out;
    }
    rc = copy_overlay(j->overlay, j->copy, msg, len);
    int trc = thaw(&c, j->vsock);
    if (trc) {
        log_err("capture: cannot thaw the guest's root filesystem: %s", strerror(-trc));
        if (!rc)
            snprintf(msg, len, "thawing the guest's root filesystem: %s", strerror(-trc));
        rc = rc ? rc : trc;
    }
out:
    agent_client_close(&c);
    return rc;
}

/* Step 4: the copy folded into image j->id over the base image. */
static int fold(struct capture_job *j, char *msg, size_t len)
{
    struct snapfs_import_opts opts = { .label = j->name, .parent = j->base };
    struct snapfs_store *store = snapfs_store_open(j->store, 0);
    struct snapfs_disk *disk = store ? snapfs_disk_open(store, NULL, j->copy, NULL) : NULL;
    int rc = -1;

    if (disk && snapfs_capture(disk, j->id, &opts) == 0)
        rc = 0;
    else
        snprintf(msg, len, "capture: %s", snapfs_error());
    snapfs_disk_close(disk);
    snapfs_store_close(store);
    return rc;
}

/* The capture of a sandbox keeps the image config of the snapshot it runs. */
static int copy_config(struct svc *svc, const char *from, const char *to)
{
    char *config = NULL;
    int rc = store_snapshot_get_config(svc->store, from, &config);

    if (rc == 0 && config[0])
        rc = store_snapshot_set_config(svc->store, to, config);
    free(config);
    return rc;
}

/* Under the lock: the sandbox, its base snapshot and the new row. */
static int prepare(struct svc *svc, const char *name, const char *sandbox,
                   struct capture_job *j, struct snapshot_rec *out, struct apierr *err)
{
    struct sandbox_rec sb;
    char source[STORE_PATH_LEN];

    if (sandbox_get(svc, sandbox, &sb, err))
        return -1;
    if (strcmp(sb.status, "running"))
        return apierr_set(err, APIERR_CONFLICT, "sandbox %s is %s", sb.name, sb.status);
    snprintf(source, sizeof(source), "sandbox %s", sb.name);
    if (snapshot_insert_row(svc, name, source, out, err))
        return -1;
    if (copy_config(svc, sb.snapshot_id, out->id)) {
        store_snapshot_delete(svc->store, out->id);
        return apierr_set(err, APIERR_INTERNAL, "database error");
    }
    snprintf(j->overlay, sizeof(j->overlay), "%s/sandboxes/%s/overlay", svc->state_dir, sb.id);
    snprintf(j->vsock, sizeof(j->vsock), "%s/sandboxes/%s/vsock.sock", svc->state_dir, sb.id);
    snprintf(j->copy, sizeof(j->copy), "%s/tmp/capture-%s", svc->state_dir, out->id);
    snapshot_store_path(svc, j->store, sizeof(j->store));
    snprintf(j->id, sizeof(j->id), "%s", out->id);
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->base, sizeof(j->base), "%s", sb.snapshot_id);
    return 0;
}

int snapshot_capture(struct svc *svc, const char *name, const char *sandbox,
                     struct snapshot_rec *out, struct apierr *err)
{
    bool held = svc_lock_held();
    char msg[STORE_MSG_LEN] = "";
    struct capture_job j = { 0 };
    int rc;

    if (!held)
        svc_lock();
    if (prepare(svc, name, sandbox, &j, out, err)) {
        rc = -1;
        goto out;
    }
    log_info("snapshot %s (%s): capturing sandbox %s", name, j.id, sandbox);
    svc_unlock();
    rc = frozen_copy(&j, msg, sizeof(msg));
    if (rc == 0)
        rc = fold(&j, msg, sizeof(msg));
    snapbuild_rmtree(j.copy);
    svc_lock();
    snapshot_finish(svc, j.id, rc == 0, msg, NULL);
    if (store_snapshot_get(svc->store, j.id, out) == 0 && !strcmp(out->status, "ready")) {
        rc = 0;
        goto out;
    }
    store_snapshot_delete(svc->store, j.id);
    rc = apierr_set(err, rc ? j.fail_type : APIERR_INTERNAL, "capturing sandbox %s: %s",
                    sandbox, msg[0] ? msg : "failed");
out:
    if (!held)
        svc_unlock();
    return rc;
}
