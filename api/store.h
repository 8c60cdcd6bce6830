/* sbx-api's state in one SQLite file (WAL mode, schema version in
 * PRAGMA user_version, migrated forward at open). Every sandbox state change
 * is written here before it is reported to a client. */
#ifndef SBX_API_STORE_H
#define SBX_API_STORE_H

#include <stdint.h>

#define STORE_ID_LEN 37     /* UUID text + NUL */
#define STORE_NAME_LEN 64   /* DNS label (63) + NUL */
#define STORE_PATH_LEN 1024
#define STORE_MSG_LEN 256
#define STORE_STATUS_LEN 16

/* A snapshot is the snapfs image named by its id in the store STATE/store. */
struct snapshot_rec {
    char id[STORE_ID_LEN];
    char name[STORE_NAME_LEN];
    char status[STORE_STATUS_LEN];      /* "building", "ready", "failed" */
    char status_message[STORE_MSG_LEN]; /* why it failed */
    char image_path[STORE_PATH_LEN];    /* schema 1 only: the registered file; else "" */
    char source[STORE_PATH_LEN];        /* what it was built from (a path, or "sandbox NAME") */
    int64_t size_bytes;                 /* the disk's size (image virtual size) */
    int64_t stored_bytes;               /* compressed bytes of its chunks */
    int64_t created_ms;
};

struct sandbox_rec {
    char id[STORE_ID_LEN];
    char name[STORE_NAME_LEN];
    char snapshot_id[STORE_ID_LEN];
    char status[STORE_STATUS_LEN];      /* "running", "stopped", "failed" */
    char status_message[STORE_MSG_LEN]; /* why it stopped or failed */
    int64_t vcpus;
    int64_t memory_mib;
    int64_t disk_gib;
    int64_t idle_ttl_seconds;           /* 0: never stopped for idleness */
    int64_t delete_after_stop_seconds;  /* 0: never deleted automatically */
    int64_t created_ms, updated_ms;
    int64_t started_ms, stopped_ms;     /* 0 when never */
    int64_t last_activity_ms;
    int64_t vmm_pid;                    /* 0 when not running */
    int64_t vmm_start_ticks;            /* /proc/PID/stat starttime, to detect pid reuse */
};

struct store;

/* Opens (creating if needed) the database at path (":memory:" for a
 * throw-away one), enables WAL and migrates the schema.
 * Returns 0 or negative errno; *out is set on success. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);

/* The schema version this build writes. */
int store_schema_version(void);

/* All calls below return 0, -ENOENT (no such row), -EEXIST (unique name or
 * id taken) or -EIO (database error, logged). */
int store_snapshot_insert(struct store *st, const struct snapshot_rec *rec);
/* Looks up by id first, then by name. */
int store_snapshot_get(struct store *st, const char *id_or_name, struct snapshot_rec *out);
/* Rewrites status, status_message, size_bytes and stored_bytes of the row with rec->id. */
int store_snapshot_update(struct store *st, const struct snapshot_rec *rec);
int store_snapshot_delete(struct store *st, const char *id);
/* Calls cb for each snapshot, oldest first; a non-zero cb return stops the walk. */
int store_snapshot_each(struct store *st, int (*cb)(void *arg, const struct snapshot_rec *rec),
                        void *arg);
/* The run settings of a container image (snapshot.h: JSON text, "" when none)
 * kept apart from snapshot_rec, which stays small. set: rewrites them for id;
 * get: a malloc'd copy in *out (-ENOMEM too). */
int store_snapshot_set_config(struct store *st, const char *id, const char *config);
int store_snapshot_get_config(struct store *st, const char *id, char **out);
/* How many sandboxes use snapshot id; negative errno on failure. */
int64_t store_snapshot_users(struct store *st, const char *id);

int store_sandbox_insert(struct store *st, const struct sandbox_rec *rec);
int store_sandbox_get(struct store *st, const char *name, struct sandbox_rec *out);
int store_sandbox_get_by_id(struct store *st, const char *id, struct sandbox_rec *out);
/* Rewrites every column of the row with rec->id. */
int store_sandbox_update(struct store *st, const struct sandbox_rec *rec);
int store_sandbox_delete(struct store *st, const char *id);
/* Calls cb for each sandbox, oldest first; a non-zero cb return stops the walk. */
int store_sandbox_each(struct store *st, int (*cb)(void *arg, const struct sandbox_rec *rec),
                       void *arg);
/* How many sandboxes have status; negative errno on failure. */
int64_t store_sandbox_count(struct store *st, const char *status);

#endif
