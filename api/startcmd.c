/* A snapshot's start command, run in each boot of its sandboxes (startcmd.h). */
#include "startcmd.h"

#include "agent_client.h"
#include "apilog.h"
#include "oci_image.h"
#include "snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STARTCMD_IO_TIMEOUT_S 10   /* for one agent exchange once connected */

/* One boot's start-up: what to run, and which boot of which sandbox it is for. */
struct startcmd_job {
    struct svc *svc;
    char id[STORE_ID_LEN], name[STORE_NAME_LEN];
    int64_t vmm_pid, vmm_start_ticks;
    char vsock[STORE_PATH_LEN + 32];
    json_t *settings;               /* the snapshot's run settings, with a command */
};

int startcmd_check(const json_t *argv, struct apierr *err)
{
    size_t i, total = 0;
    json_t *v;

    if (!json_is_array(argv) || json_array_size(argv) > OCI_CMD_ARGS_MAX)
        return apierr_set(err, APIERR_VALIDATION,
                          "start_command must be a list of at most %d strings", OCI_CMD_ARGS_MAX);
    json_array_foreach(argv, i, v) {
        const char *s = json_string_value(v);

        if (!s || !json_string_length(v) || strlen(s) != json_string_length(v))
            return apierr_set(err, APIERR_VALIDATION,
                              "start_command[%zu] must be a non-empty string without NUL", i);
        total += json_string_length(v) + 1;
        if (total > OCI_CMD_BYTES_MAX)
            return apierr_set(err, APIERR_VALIDATION,
                              "start_command is larger than %d bytes", OCI_CMD_BYTES_MAX);
    }
    return 0;
}

int startcmd_replace(const char *settings, const json_t *argv, char **out)
{
    json_t *obj = settings && settings[0] ? json_loads(settings, 0, NULL) : json_object();
    int rc = -1;

    *out = NULL;
    if (!json_is_object(obj))
        goto out;
    if (json_array_size(argv))
        json_object_set_new(obj, "command", json_deep_copy(argv));
    else
        json_object_del(obj, "command");
    *out = json_object_size(obj) ? json_dumps(obj, JSON_COMPACT) : strdup("");
    rc = *out ? 0 : -1;
out:
    json_decref(obj);
    return rc;
}

static void record_path(const struct svc *svc, const char *sandbox_id, char *out, size_t len)
{
    snprintf(out, len, "%s/sandboxes/%s/start-command.json", svc->state_dir, sandbox_id);
}

/* Replaces sandbox id's record with rec (written aside, then renamed). */
static void write_record(const struct svc *svc, const char *sandbox_id, json_t *rec)
{
    char path[STORE_PATH_LEN + 64], tmp[STORE_PATH_LEN + 80];

    record_path(svc, sandbox_id, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (json_dump_file(rec, tmp, JSON_COMPACT) || rename(tmp, path) < 0) {
        log_warn("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

/* {"command": argv} with "command_id": id (0: null, still starting) or
 * "error": error when not NULL. New reference. */
static json_t *new_record(json_t *argv, uint32_t id, const char *error)
{
    json_t *rec = json_object();

    json_object_set(rec, "command", argv);
    if (error)
        json_object_set_new(rec, "error", json_string(error));
    else
        json_object_set_new(rec, "command_id", id ? json_integer(id) : json_null());
    return rec;
}

void startcmd_forget(const struct svc *svc, const char *sandbox_id)
{
    char path[STORE_PATH_LEN + 64];

    record_path(svc, sandbox_id, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
}

json_t *startcmd_json(const struct svc *svc, const char *sandbox_id)
{
    char path[STORE_PATH_LEN + 64];
    json_t *rec;

    record_path(svc, sandbox_id, path, sizeof(path));
    rec = access(path, F_OK) ? NULL : json_load_file(path, 0, NULL);
    return json_is_object(rec) ? rec : (json_decref(rec), json_null());
}

/* Under the lock: whether the job's boot of its sandbox still runs (not
 * stopped, nor booted again since). */
static bool same_boot_locked(const struct startcmd_job *job)
{
    struct sandbox_rec rec;

    return !snapshot_is_shut_down() &&
           store_sandbox_get_by_id(job->svc->store, job->id, &rec) == 0 &&
           !strcmp(rec.status, "running") && rec.vmm_pid == job->vmm_pid &&
           rec.vmm_start_ticks == job->vmm_start_ticks;
}

static bool same_boot(const struct startcmd_job *job)
{
    bool same;

    svc_lock();
    same = same_boot_locked(job);
    svc_unlock();
    return same;
}

/* Records the outcome (command id, or error when not NULL) while the boot
 * still runs, and logs it. */
static void finish(struct startcmd_job *job, uint32_t cmd_id, const char *error)
{
    json_t *rec = new_record(json_object_get(job->settings, "command"), cmd_id, error);

    svc_lock();
    if (same_boot_locked(job)) {
        write_record(job->svc, job->id, rec);
        if (error)
            log_warn("sandbox %s: start command failed: %s", job->name, error);
        else
            log_info("sandbox %s: start command started, id %u", job->name, cmd_id);
    }
    svc_unlock();
    json_decref(rec);
}

/* The strings of JSON array arr as a NULL-terminated vector (borrowed
 * strings), or NULL. */
static const char **string_vector(json_t *arr)
{
    size_t i, n = json_array_size(arr);
    const char **v = calloc(n + 1, sizeof(*v));
    json_t *s;

    if (!v)
        return NULL;
    json_array_foreach(arr, i, s)
        v[i] = json_string_value(s);
    return v;
}

/* Sends the EXEC on connected client c. Returns 0 with *cmd_id, or -errno
 * with the agent's message in c->error. */
static int send_exec(struct agent_client *c, json_t *settings, uint32_t *cmd_id)
{
    const char *user = json_string_value(json_object_get(settings, "user"));
    const char *cwd = json_string_value(json_object_get(settings, "working_dir"));
    const char **argv = string_vector(json_object_get(settings, "command"));
    const char **envp = string_vector(json_object_get(settings, "env"));
    char *uname = user && strcspn(user, ":") ? strndup(user, strcspn(user, ":")) : NULL;
    struct agent_exec_opts o = {
        .argv = argv, .envp = envp && envp[0] ? envp : NULL, .cwd = cwd && cwd[0] ? cwd : NULL,
        .user = uname, .idle_timeout_ms = UINT64_MAX, .no_stdin = 1,
        .drop_unread = 1,
    };
    int rc = -ENOMEM;

    if (argv && envp && (uname || !user || !strcspn(user, ":")))
        rc = agent_client_exec(c, &o, cmd_id);
    if (rc == -ENOMEM && !c->error[0])
        snprintf(c->error, sizeof(c->error), "out of memory");
    free(uname);
    free(envp);
    free(argv);
    return rc;
}

/* One try: 0 when the agent took the command (*cmd_id) or refused it (error
 * filled), 1 when it did not answer (yet). */
static int try_start(struct startcmd_job *job, uint32_t *cmd_id, char *error, size_t len)
{
    struct agent_client c;
    int rc;

    if (agent_client_open_vsock(&c, job->vsock, STARTCMD_IO_TIMEOUT_S))
        return 1;
    rc = send_exec(&c, job->settings, cmd_id);
    if (rc)
        snprintf(error, len, "%s", c.error[0] ? c.error : strerror(-rc));
    agent_client_close(&c);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(struct startcmd_job *job)
{
    json_decref(job->settings);
    free(job);
}

static void *start_main(void *arg)
{
    struct startcmd_job *job = arg;
    const struct timespec pause = { .tv_nsec = STARTCMD_RETRY_MS * 1000000L };
    int64_t deadline = mono_ms() + STARTCMD_WAIT_MS;
    char error[1024] = "";
    uint32_t cmd_id = 0;

    for (;;) {
        if (!same_boot(job))
            goto out;
        if (try_start(job, &cmd_id, error, sizeof(error)) == 0)
            break;
        if (mono_ms() >= deadline) {
            snprintf(error, sizeof(error), "the guest agent did not answer within %d s",
                     STARTCMD_WAIT_MS / 1000);
            break;
        }
        nanosleep(&pause, NULL);
    }
    finish(job, cmd_id, error[0] ? error : NULL);
out:
    job_free(job);
    return NULL;
}

/* A job for rec's boot running settings' command; NULL when out of memory. */
static struct startcmd_job *new_job(struct svc *svc, const struct sandbox_rec *rec,
                                    json_t *settings)
{
    struct startcmd_job *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    job->svc = svc;
    snprintf(job->id, sizeof(job->id), "%s", rec->id);
    snprintf(job->name, sizeof(job->name), "%s", rec->name);
    job->vmm_pid = rec->vmm_pid;
    job->vmm_start_ticks = rec->vmm_start_ticks;
    snprintf(job->vsock, sizeof(job->vsock), "%s/sandboxes/%s/vsock.sock", svc->state_dir,
             rec->id);
    job->settings = json_incref(settings);
    return job;
}

void startcmd_launch(struct svc *svc, const struct sandbox_rec *rec)
{
    json_t *settings = snapshot_config_json(svc, rec->snapshot_id);
    json_t *argv = json_object_get(settings, "command");
    struct startcmd_job *job;
    json_t *pending;
    int rc;

    startcmd_forget(svc, rec->id);
    if (!json_array_size(argv))
        goto out;
    pending = new_record(argv, 0, NULL);
    write_record(svc, rec->id, pending);
    json_decref(pending);
    job = new_job(svc, rec, settings);
    rc = job ? svc_start_detached(start_main, job) : -ENOMEM;
    if (rc) {
        json_t *failed = new_record(argv, 0, strerror(-rc));

        write_record(svc, rec->id, failed);
        json_decref(failed);
        log_warn("sandbox %s: start command failed: %s", rec->name, strerror(-rc));
        if (job)
            job_free(job);
    }
out:
    json_decref(settings);
}
