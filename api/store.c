/* SQLite persistence of snapshots and sandboxes. */
#include "store.h"

#include "apilog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store {
    sqlite3 *db;
};

/* migrations[i] takes the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    "CREATE TABLE snapshots ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, status TEXT NOT NULL,"
    "  image_path TEXT NOT NULL, size_bytes INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE sandboxes ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  snapshot_id TEXT NOT NULL REFERENCES snapshots(id),"
    "  status TEXT NOT NULL, status_message TEXT NOT NULL,"
    "  vcpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL, disk_gib INTEGER NOT NULL,"
    "  idle_ttl_seconds INTEGER NOT NULL, delete_after_stop_seconds INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL, stopped_ms INTEGER NOT NULL,"
    "  last_activity_ms INTEGER NOT NULL,"
    "  vmm_pid INTEGER NOT NULL, vmm_start_ticks INTEGER NOT NULL);",
    /* 2: snapshots are snapfs images built in the background. Rows of version 1
     * keep their image_path (the file they were registered from) as source. */
    "ALTER TABLE snapshots ADD COLUMN status_message TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE snapshots ADD COLUMN source TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE snapshots ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE snapshots SET source = image_path;",
    /* 3: the run settings of a container image's config (JSON text, '' when none). */
    "ALTER TABLE snapshots ADD COLUMN image_config TEXT NOT NULL DEFAULT '';",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define SANDBOX_COLS \
    "id, name, snapshot_id, status, status_message, vcpus, memory_mib, disk_gib," \
    " idle_ttl_seconds, delete_after_stop_seconds, created_ms, updated_ms," \
    " started_ms, stopped_ms, last_activity_ms, vmm_pid, vmm_start_ticks"
#define SNAPSHOT_COLS \
    "id, name, status, image_path, size_bytes, created_ms, status_message, source, stored_bytes"

int store_schema_version(void)
{
    return SCHEMA_VERSION;
}

static int db_fail(struct store *st, const char *what)
{
    log_err("sqlite: %s: %s", what, sqlite3_errmsg(st->db));
    return -EIO;
}

static int exec_sql(struct store *st, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    log_err("sqlite: %s", msg ? msg : "error");
    sqlite3_free(msg);
    return -EIO;
}

static int user_version(struct store *st, int *out)
{
    sqlite3_stmt *stmt;
    int rc;

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
        return db_fail(st, "user_version");
    rc = sqlite3_step(stmt);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

static int migrate(struct store *st)
{
    int version, err;
    char sql[64];

    err = user_version(st, &version);
    if (err)
        return err;
    if (version > SCHEMA_VERSION) {
        log_err("database schema version %d is newer than this sbx-api (%d)", version,
                SCHEMA_VERSION);
        return -EPROTO;
    }
    for (; version < SCHEMA_VERSION; version++) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d;", version + 1);
        if ((err = exec_sql(st, "BEGIN IMMEDIATE;")) ||
            (err = exec_sql(st, migrations[version])) || (err = exec_sql(st, sql)) ||
            (err = exec_sql(st, "COMMIT;"))) {
            exec_sql(st, "ROLLBACK;");
            return err;
        }
        log_info("database schema migrated to version %d", version + 1);
    }
    return 0;
}

int store_open(const char *path, struct store **out)
{
    struct store *st = calloc(1, sizeof(*st));
    int err;

    if (!st)
        return -ENOMEM;
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        err = db_fail(st, path);
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if ((err = exec_sql(st, "PRAGMA journal_mode = WAL;")) ||
        (err = exec_sql(st, "PRAGMA synchronous = NORMAL;")) ||
        (err = exec_sql(st, "PRAGMA foreign_keys = ON;")) || (err = migrate(st)))
        goto fail;
    *out = st;
    return 0;
fail:
    store_close(st);
    return err;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    sqlite3_close(st->db);
    free(st);
}

static int prepare(struct store *st, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return db_fail(st, "prepare");
    return 0;
}

/* Steps a statement that returns no rows; maps constraint failures. */
static int step_done(struct store *st, sqlite3_stmt *stmt, int want_changes)
{
    int rc = sqlite3_step(stmt);
    int err = 0;

    if (rc == SQLITE_CONSTRAINT)
        err = -EEXIST;
    else if (rc != SQLITE_DONE)
        err = db_fail(st, "step");
    else if (want_changes && sqlite3_changes(st->db) == 0)
        err = -ENOENT;
    sqlite3_finalize(stmt);
    return err;
}

static void copy_text(char *dst, size_t len, sqlite3_stmt *stmt, int col)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    snprintf(dst, len, "%s", text ? (const char *)text : "");
}

static void read_snapshot(sqlite3_stmt *stmt, struct snapshot_rec *rec)
{
    copy_text(rec->id, sizeof(rec->id), stmt, 0);
    copy_text(rec->name, sizeof(rec->name), stmt, 1);
    copy_text(rec->status, sizeof(rec->status), stmt, 2);
    copy_text(rec->image_path, sizeof(rec->image_path), stmt, 3);
    rec->size_bytes = sqlite3_column_int64(stmt, 4);
    rec->created_ms = sqlite3_column_int64(stmt, 5);
    copy_text(rec->status_message, sizeof(rec->status_message), stmt, 6);
    copy_text(rec->source, sizeof(rec->source), stmt, 7);
    rec->stored_bytes = sqlite3_column_int64(stmt, 8);
}

int store_snapshot_insert(struct store *st, const struct snapshot_rec *rec)
{
    sqlite3_stmt *stmt;

    if (prepare(st, "INSERT INTO snapshots (" SNAPSHOT_COLS ") VALUES (?,?,?,?,?,?,?,?,?)",
                &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, rec->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rec->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, rec->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, rec->image_path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, rec->size_bytes);
    sqlite3_bind_int64(stmt, 6, rec->created_ms);
    sqlite3_bind_text(stmt, 7, rec->status_message, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 8, rec->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, rec->stored_bytes);
    return step_done(st, stmt, 0);
}

int store_snapshot_update(struct store *st, const struct snapshot_rec *rec)
{
    sqlite3_stmt *stmt;

    if (prepare(st, "UPDATE snapshots SET status = ?2, status_message = ?3, size_bytes = ?4,"
                    " stored_bytes = ?5 WHERE id = ?1", &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, rec->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, rec->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, rec->status_message, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, rec->size_bytes);
    sqlite3_bind_int64(stmt, 5, rec->stored_bytes);
    return step_done(st, stmt, 1);
}

static int snapshot_get_by(struct store *st, const char *col_sql, const char *key,
                           struct snapshot_rec *out)
{
    sqlite3_stmt *stmt;
    int rc;

    if (prepare(st, col_sql, &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        read_snapshot(stmt, out);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : db_fail(st, "snapshot get");
}

int store_snapshot_get(struct store *st, const char *id_or_name, struct snapshot_rec *out)
{
    int err = snapshot_get_by(st, "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE id = ?",
                              id_or_name, out);

    if (err != -ENOENT)
        return err;
    return snapshot_get_by(st, "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE name = ?",
                           id_or_name, out);
}

int store_snapshot_delete(struct store *st, const char *id)
{
    sqlite3_stmt *stmt;

    if (prepare(st, "DELETE FROM snapshots WHERE id = ?", &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    return step_done(st, stmt, 1);
}

int store_snapshot_each(struct store *st, int (*cb)(void *arg, const struct snapshot_rec *rec),
                        void *arg)
{
    struct snapshot_rec rec;
    sqlite3_stmt *stmt;
    int rc;

    if (prepare(st, "SELECT " SNAPSHOT_COLS " FROM snapshots ORDER BY created_ms, id", &stmt))
        return -EIO;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        read_snapshot(stmt, &rec);
        if (cb(arg, &rec))
            break;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(st, "snapshot list");
}

int store_snapshot_set_config(struct store *st, const char *id, const char *config)
{
    sqlite3_stmt *stmt;

    if (prepare(st, "UPDATE snapshots SET image_config = ?2 WHERE id = ?1", &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, config ? config : "", -1, SQLITE_STATIC);
    return step_done(st, stmt, 1);
}

int store_snapshot_get_config(struct store *st, const char *id, char **out)
{
    const unsigned char *text;
    sqlite3_stmt *stmt;
    int rc, err = 0;

    *out = NULL;
    if (prepare(st, "SELECT image_config FROM snapshots WHERE id = ?", &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        text = sqlite3_column_text(stmt, 0);
        if (!(*out = strdup(text ? (const char *)text : "")))
            err = -ENOMEM;
    } else {
        err = rc == SQLITE_DONE ? -ENOENT : db_fail(st, "snapshot config");
    }
    sqlite3_finalize(stmt);
    return err;
}

static int64_t count_where(struct store *st, const char *sql, const char *key)
{
    sqlite3_stmt *stmt;
    int64_t n;

    if (prepare(st, sql, &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -EIO;
    sqlite3_finalize(stmt);
    return n;
}

int64_t store_snapshot_users(struct store *st, const char *id)
{
    return count_where(st, "SELECT COUNT(*) FROM sandboxes WHERE snapshot_id = ?", id);
}

int64_t store_sandbox_count(struct store *st, const char *status)
{
    return count_where(st, "SELECT COUNT(*) FROM sandboxes WHERE status = ?", status);
}

static void bind_sandbox(sqlite3_stmt *stmt, const struct sandbox_rec *r)
{
    const char *texts[] = { r->id, r->name, r->snapshot_id, r->status, r->status_message };
    const int64_t ints[] = { r->vcpus, r->memory_mib, r->disk_gib, r->idle_ttl_seconds,
                             r->delete_after_stop_seconds, r->created_ms, r->updated_ms,
                             r->started_ms, r->stopped_ms, r->last_activity_ms, r->vmm_pid,
                             r->vmm_start_ticks };
    int col = 1;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        sqlite3_bind_text(stmt, col++, texts[i], -1, SQLITE_STATIC);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        sqlite3_bind_int64(stmt, col++, ints[i]);
}

static void read_sandbox(sqlite3_stmt *stmt, struct sandbox_rec *r)
{
    int64_t *ints[] = { &r->vcpus, &r->memory_mib, &r->disk_gib, &r->idle_ttl_seconds,
                        &r->delete_after_stop_seconds, &r->created_ms, &r->updated_ms,
                        &r->started_ms, &r->stopped_ms, &r->last_activity_ms, &r->vmm_pid,
                        &r->vmm_start_ticks };

    copy_text(r->id, sizeof(r->id), stmt, 0);
    copy_text(r->name, sizeof(r->name), stmt, 1);
    copy_text(r->snapshot_id, sizeof(r->snapshot_id), stmt, 2);
    copy_text(r->status, sizeof(r->status), stmt, 3);
    copy_text(r->status_message, sizeof(r->status_message), stmt, 4);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        *ints[i] = sqlite3_column_int64(stmt, 5 + (int)i);
}

int store_sandbox_insert(struct store *st, const struct sandbox_rec *rec)
{
    sqlite3_stmt *stmt;

    if (prepare(st, "INSERT INTO sandboxes (" SANDBOX_COLS ") VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &stmt))
        return -EIO;
    bind_sandbox(stmt, rec);
    return step_done(st, stmt, 0);
}

int store_sandbox_update(struct store *st, const struct sandbox_rec *rec)
{
    sqlite3_stmt *stmt;

    /* Same column order as bind_sandbox; id (?1) selects the row. */
    if (prepare(st, "UPDATE sandboxes SET name = ?2, snapshot_id = ?3, status = ?4,"
                    " status_message = ?5, vcpus = ?6, memory_mib = ?7, disk_gib = ?8,"
                    " idle_ttl_seconds = ?9, delete_after_stop_seconds = ?10,"
                    " created_ms = ?11, updated_ms = ?12, started_ms = ?13, stopped_ms = ?14,"
                    " last_activity_ms = ?15, vmm_pid = ?16, vmm_start_ticks = ?17"
                    " WHERE id = ?1", &stmt))
        return -EIO;
    bind_sandbox(stmt, rec);
    return step_done(st, stmt, 1);
}

static int sandbox_get_by(struct store *st, const char *sql, const char *key,
                          struct sandbox_rec *out)
{
    sqlite3_stmt *stmt;
    int rc;

    if (prepare(st, sql, &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        read_sandbox(stmt, out);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : db_fail(st, "sandbox get");
}

int store_sandbox_get(struct store *st, const char *name, struct sandbox_rec *out)
{
    return sandbox_get_by(st, "SELECT " SANDBOX_COLS " FROM sandboxes WHERE name = ?", name,
                          out);
}

int store_sandbox_get_by_id(struct store *st, const char *id, struct sandbox_rec *out)
{
    return sandbox_get_by(st, "SELECT " SANDBOX_COLS " FROM sandboxes WHERE id = ?", id, out);
}

int store_sandbox_delete(struct store *st, const char *id)
{
    sqlite3_stmt *stmt;

    if (prepare(st, "DELETE FROM sandboxes WHERE id = ?", &stmt))
        return -EIO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    return step_done(st, stmt, 1);
}

int store_sandbox_each(struct store *st, int (*cb)(void *arg, const struct sandbox_rec *rec),
                       void *arg)
{
    struct sandbox_rec rec;
    sqlite3_stmt *stmt;
    int rc;

    if (prepare(st, "SELECT " SANDBOX_COLS " FROM sandboxes ORDER BY created_ms, id", &stmt))
        return -EIO;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        read_sandbox(stmt, &rec);
        if (cb(arg, &rec))
            break;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(st, "sandbox list");
}
