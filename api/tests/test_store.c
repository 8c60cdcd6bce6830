/* The SQLite store on a real file: schema version, WAL, CRUD, uniqueness,
 * that rows survive closing and reopening, and that a database of schema 1
 * (snapshots registered by image_path) migrates with its rows intact, and a
 * snapshot's image config (schema 3) is kept apart from its record. */
#include "../store.h"
#include "harness.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void pragma_text(const char *db_path, const char *sql, char *out, size_t len)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;

    CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW);
    snprintf(out, len, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void fill_sandbox(struct sandbox_rec *sb, const char *id, const char *name,
                         const char *snap)
{
    memset(sb, 0, sizeof(*sb));
    snprintf(sb->id, sizeof(sb->id), "%s", id);
    snprintf(sb->name, sizeof(sb->name), "%s", name);
    snprintf(sb->snapshot_id, sizeof(sb->snapshot_id), "%s", snap);
    snprintf(sb->status, sizeof(sb->status), "running");
    sb->vcpus = 2;
    sb->memory_mib = 512;
    sb->disk_gib = 4;
    sb->idle_ttl_seconds = 600;
    sb->created_ms = 1000;
    sb->vmm_pid = 4242;
    sb->vmm_start_ticks = 99;
}

static int count_cb(void *arg, const struct sandbox_rec *rec)
{
    (void)rec;
    ++*(int *)arg;
    return 0;
}

static void first_session(const char *path)
{
    struct store *st;
    struct snapshot_rec snap = { .id = "snap-1", .name = "base", .status = "ready",
                                 .source = "/x/base.img", .size_bytes = 7, .created_ms = 1 };
    struct sandbox_rec sb, got;

    CHECK(store_open(path, &st) == 0);
    CHECK(store_snapshot_insert(st, &snap) == 0);
    snprintf(snap.id, sizeof(snap.id), "snap-0");
    CHECK(store_snapshot_insert(st, &snap) == -EEXIST);      /* name taken */
    snprintf(snap.id, sizeof(snap.id), "snap-1");
    CHECK(store_snapshot_insert(st, &snap) == -EEXIST);
    fill_sandbox(&sb, "sb-1", "alpha", "snap-1");
    CHECK(store_sandbox_insert(st, &sb) == 0);
    fill_sandbox(&sb, "sb-2", "alpha", "snap-1");
    CHECK(store_sandbox_insert(st, &sb) == -EEXIST);        /* name taken */
    fill_sandbox(&sb, "sb-3", "beta", "no-such-snapshot");
    CHECK(store_sandbox_insert(st, &sb) == -EEXIST);        /* foreign key */
    CHECK(store_sandbox_get(st, "alpha", &got) == 0);
    snprintf(got.status, sizeof(got.status), "stopped");
    snprintf(got.status_message, sizeof(got.status_message), "stopped by request");
    got.vmm_pid = 0;
    got.stopped_ms = 5000;
    CHECK(store_sandbox_update(st, &got) == 0);
    CHECK(store_snapshot_users(st, "snap-1") == 1);
    CHECK(store_sandbox_count(st, "stopped") == 1);
    CHECK(store_sandbox_get(st, "nope", &got) == -ENOENT);
    CHECK(store_snapshot_set_config(st, "snap-1", "{\"user\":\"app\"}") == 0);
    CHECK(store_snapshot_set_config(st, "no-such", "{}") == -ENOENT);
    store_close(st);
}

static void second_session(const char *path)
{
    struct store *st;
    struct snapshot_rec snap;
    struct sandbox_rec got;
    char *config;
    int n = 0;

    CHECK(store_open(path, &st) == 0);
    CHECK(store_snapshot_get_config(st, "snap-1", &config) == 0);
    CHECK(!strcmp(config, "{\"user\":\"app\"}"));
    free(config);
    CHECK(store_snapshot_get_config(st, "no-such", &config) == -ENOENT && !config);
    CHECK(store_snapshot_get(st, "base", &snap) == 0);      /* by name */
    CHECK(!strcmp(snap.id, "snap-1") && snap.size_bytes == 7);
    CHECK(!strcmp(snap.status, "ready") && !strcmp(snap.source, "/x/base.img"));
    snprintf(snap.status, sizeof(snap.status), "failed");
    snprintf(snap.status_message, sizeof(snap.status_message), "mke2fs: disk full");
    snap.stored_bytes = 3;
    CHECK(store_snapshot_update(st, &snap) == 0);
    CHECK(store_snapshot_get(st, "snap-1", &snap) == 0);
    CHECK(!strcmp(snap.status, "failed") && !strcmp(snap.status_message, "mke2fs: disk full"));
    CHECK(snap.stored_bytes == 3 && !strcmp(snap.name, "base"));
    CHECK(store_sandbox_get_by_id(st, "sb-1", &got) == 0);
    CHECK(!strcmp(got.status, "stopped") && got.stopped_ms == 5000 && got.vmm_pid == 0);
    CHECK(!strcmp(got.status_message, "stopped by request") && got.memory_mib == 512);
    CHECK(store_sandbox_each(st, count_cb, &n) == 0 && n == 1);
    CHECK(store_sandbox_delete(st, "sb-1") == 0);
    CHECK(store_sandbox_delete(st, "sb-1") == -ENOENT);
    CHECK(store_snapshot_users(st, "snap-1") == 0);
    CHECK(store_snapshot_delete(st, "snap-1") == 0);
    store_close(st);
}

/* A file as sbx-api of schema 1 left it: the old snapshots table and one row. */
static void schema1_migrates(const char *dir)
{
    static const char v1[] =
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
        "  vmm_pid INTEGER NOT NULL, vmm_start_ticks INTEGER NOT NULL);"
        "INSERT INTO snapshots VALUES ('old-1', 'legacy', 'ready', '/srv/old.img', 512, 9);"
        "PRAGMA user_version = 1;";
    struct snapshot_rec snap;
    struct store *st;
    char path[128];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/v1.db", dir);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, v1, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(store_open(path, &st) == 0);
    CHECK(store_snapshot_get(st, "legacy", &snap) == 0);
    CHECK(!strcmp(snap.id, "old-1") && !strcmp(snap.status, "ready") && snap.size_bytes == 512);
    CHECK(!strcmp(snap.image_path, "/srv/old.img") && !strcmp(snap.source, "/srv/old.img"));
    CHECK(snap.status_message[0] == '\0' && snap.stored_bytes == 0 && snap.created_ms == 9);
    {
        char *config;
        CHECK(store_snapshot_get_config(st, "old-1", &config) == 0 && !strcmp(config, ""));
        free(config);
    }
    store_close(st);
}

int main(void)
{
    char dir[] = "/tmp/sbx-store-test.XXXXXX", path[128], text[64];

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/state.db", dir);
    first_session(path);
    second_session(path);
    schema1_migrates(dir);
    pragma_text(path, "PRAGMA journal_mode", text, sizeof(text));
    CHECK(!strcmp(text, "wal"));
    pragma_text(path, "PRAGMA user_version", text, sizeof(text));
    CHECK(atoi(text) == store_schema_version());
    /* A database from a newer sbx-api is refused, not silently used. */
    {
        struct store *st;
        sqlite3 *db;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        CHECK(store_open(path, &st) == -EPROTO);
    }
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
