/* Snapshots against the real sbx-api and a real SQLite file, with the
 * stand-in VMM api/tests/snap_vmm.py (argument log + a tiny guest agent):
 * builds from a folder, a .tar.gz, a .tar.zst and a raw ext4 image, as is and
 * grown (contents checked with debugfs on the exported image), a corrupt
 * tarball that fails with a message,
 * validation, the VMM's --disk and --cmdline, the STATE/names links, delete
 * refused while used, capture (agent sync/freeze/thaw, the captured bytes in
 * the new image, freeze refused), a build cut short by a restart, rows of
 * schema 1 imported and booted after a restart, and --default-snapshot. */
#include "../../snapfs/snapfs.h"
#include "../store.h"
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WRITE_OFF (100ull << 20)
#define GIB (1ll << 30)

static char state[300], store_path[320], vmm[PATH_MAX];
static const char *vmm_args_only[] = { "--vmm", vmm, NULL };

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd), fmt, a, b);
    if (system(cmd) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        CHECK(0);
    }
}

static void post_build_gib(struct server *s, const char *name, const char *source, int gib,
                           struct reply *r)
{
    char body[1200];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"source\":\"%s\",\"capacity_gib\":%d}",
             name, source, gib);
    api(s, "POST", "/v1/snapshots", body, r);
}

static void post_build(struct server *s, const char *name, const char *source, struct reply *r)
{
    post_build_gib(s, name, source, 1, r);
}

/* Builds name from source with capacity_gib gib, expects it ready, returns its id in id. */
static void build_gib(struct server *s, const char *name, const char *source, int gib, char *id)
{
    struct reply r;

    post_build_gib(s, name, source, gib, &r);
    if (r.status != 201)
        fprintf(stderr, "%s\n", r.body);
    CHECK(r.status == 201 && !strcmp(reply_str(&r, "status"), "building"));
    reply_free(&r);
    wait_built(s, name, &r);
    if (strcmp(reply_str(&r, "status"), "ready"))
        fprintf(stderr, "%s\n", r.body);
    CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    CHECK(json_integer_value(json_object_get(r.json, "size_bytes")) == gib * GIB);
    CHECK(json_integer_value(json_object_get(r.json, "stored_bytes")) > 0);
    snprintf(id, STORE_ID_LEN, "%s", reply_str(&r, "id"));
    reply_free(&r);
}

static void build_ok(struct server *s, const char *name, const char *source, char *id)
{
    build_gib(s, name, source, 1, id);
}

/* The image's file /hello.txt, through snapfs export and debugfs. */
static void check_contents(const char *id, const char *dir)
{
    char raw[400], cmd[1200];
    struct snapfs_store *st = snapfs_store_open(store_path, 0);

    CHECK(st != NULL);
    snprintf(raw, sizeof(raw), "%s/export.img", dir);
    unlink(raw);
    CHECK(snapfs_export(st, id, NULL, raw) == 0);
    snapfs_store_close(st);
    snprintf(cmd, sizeof(cmd),
             "debugfs -R 'cat /hello.txt' %s 2>/dev/null | grep -qx 'hello from the rootfs' && "
             "debugfs -R 'stat /etc/deep/er/file' %s 2>/dev/null | grep -q 'Size: 6'", raw, raw);
    CHECK(system(cmd) == 0);
}

static void builds(struct server *s, char *dir_id)
{
    char src[400], tgz[400], tzst[400], bad[400], raw[400], shm_raw[100] = "", id[STORE_ID_LEN];
    struct reply r;

    snprintf(src, sizeof(src), "%s/rootfs", s->dir);
    sh("mkdir -p %s/etc/deep/er %s/dev", src, src);
    sh("echo 'hello from the rootfs' > %s/hello.txt && printf 1234 > %s/etc/deep/er/file", src,
       src);
    sh("echo x >> %s/etc/deep/er/file && ln -s hello.txt %s/link", src, src);
    snprintf(tgz, sizeof(tgz), "%s/rootfs.tar.gz", s->dir);
    snprintf(tzst, sizeof(tzst), "%s/rootfs.tar.zst", s->dir);
    sh("tar -czf %s -C %s .", tgz, src);
    sh("tar --zstd -cf %s -C %s .", tzst, src);

    build_ok(s, "from-dir", src, dir_id);
    check_contents(dir_id, s->dir);
    build_ok(s, "from-tgz", tgz, id);
    check_contents(id, s->dir);
    build_ok(s, "from-zst", tzst, id);
    check_contents(id, s->dir);
    /* A raw ext4 image (the last export) as it is, and grown to 2 GiB; from
     * tmpfs when there is one, so the copy crosses file systems. */
    snprintf(raw, sizeof(raw), "%s/raw.img", s->dir);
    sh("cp --sparse=always %s/export.img %s", s->dir, raw);
    build_ok(s, "from-raw", raw, id);
    check_contents(id, s->dir);
    if (access("/dev/shm", W_OK) == 0) {
        snprintf(shm_raw, sizeof(shm_raw), "/dev/shm/sbx-snap-test.%d.img", (int)getpid());
        sh("cp --sparse=always %s %s", raw, shm_raw);
    }
    build_gib(s, "grown", shm_raw[0] ? shm_raw : raw, 2, id);
    if (shm_raw[0])
        unlink(shm_raw);
    check_contents(id, s->dir);
    sh("dumpe2fs -h %s/export.img 2>/dev/null | grep -q '^Block count: *524288$'%s", s->dir, "");

    /* A corrupt tarball: accepted, then failed with tar's complaint. */
    snprintf(bad, sizeof(bad), "%s/broken.tar.gz", s->dir);
    sh("head -c 4000 /dev/urandom > %s%s", bad, "");
    post_build(s, "broken", bad, &r);
    CHECK(r.status == 201);
    reply_free(&r);
    wait_built(s, "broken", &r);
    CHECK(!strcmp(reply_str(&r, "status"), "failed"));
    CHECK(strstr(reply_str(&r, "status_message"), "tar exited with status") != NULL);
    reply_free(&r);
    /* A failed snapshot cannot back a sandbox. */
    api(s, "POST", "/v1/sandboxes", "{\"name\":\"on-broken\",\"snapshot\":\"broken\"}", &r);
    CHECK(r.status == 409);
    reply_free(&r);
    api(s, "DELETE", "/v1/snapshots/broken", NULL, &r);
    CHECK(r.status == 204);
    reply_free(&r);
}

static void expect_status(struct server *s, const char *method, const char *path,
                          const char *body, long want)
{
    struct reply r;

    api(s, method, path, body, &r);
    if (r.status != want)
        fprintf(stderr, "%s %s %s: got %ld %s\n", method, path, body, r.status, r.body);
    CHECK(r.status == want);
    reply_free(&r);
}

static void validation(struct server *s)
{
    char body[800];

    expect_status(s, "POST", "/v1/snapshots", "{\"name\":\"x\",\"source\":\"/no/such/path\"}", 400);
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"source\":\"%s/vmm\"}", s->dir);
    expect_status(s, "POST", "/v1/snapshots", body, 400);           /* not a rootfs */
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"source\":\"%s/rootfs\",\"capacity_gib\":0}",
             s->dir);
    expect_status(s, "POST", "/v1/snapshots", body, 400);
    snprintf(body, sizeof(body), "{\"name\":\"Bad_Name\",\"source\":\"%s/rootfs\"}", s->dir);
    expect_status(s, "POST", "/v1/snapshots", body, 400);
    snprintf(body, sizeof(body), "{\"name\":\"from-dir\",\"source\":\"%s/rootfs\"}", s->dir);
    expect_status(s, "POST", "/v1/snapshots", body, 409);           /* name taken */
    snprintf(body, sizeof(body),
             "{\"name\":\"x\",\"source\":\"%s/rootfs\",\"image_path\":\"%s/state/snapshots/base.img\"}",
             s->dir, s->dir);
    expect_status(s, "POST", "/v1/snapshots", body, 400);           /* both */
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    CHECK(f != NULL);
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
}

/* Waits for the stand-in to have written its files; returns the sandbox id. */
static void wait_vmm(const char *sandbox_id)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/sandboxes/%s/vsock.sock", state, sandbox_id);
    for (int i = 0; i < 100 && access(path, F_OK); i++)
        harness_sleep_ms(50);
    CHECK(access(path, F_OK) == 0);
}

static void create_box(struct server *s, const char *name, const char *snapshot, char *id)
{
    char body[300];
    struct reply r;

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"snapshot\":\"%s\"}", name, snapshot);
    api(s, "POST", "/v1/sandboxes", body, &r);
    if (r.status != 201)
        fprintf(stderr, "%s\n", r.body);
    CHECK(r.status == 201 && !strcmp(reply_str(&r, "status"), "running"));
    snprintf(id, STORE_ID_LEN, "%s", reply_str(&r, "id"));
    reply_free(&r);
    wait_vmm(id);
}

static void check_link(const char *name, const char *id, bool present)
{
    char path[400], target[400], want[100];
    ssize_t n;

    snprintf(path, sizeof(path), "%s/names/%s", state, name);
    n = readlink(path, target, sizeof(target) - 1);
    if (!present) {
        CHECK(n < 0 && errno == ENOENT);
        return;
    }
    CHECK(n > 0);
    target[n] = '\0';
    snprintf(want, sizeof(want), "../sandboxes/%s", id);
    CHECK(!strcmp(target, want));
}

/* The VMM got the snapshot as a snapfs overlay and the root/hostname flags. */
static void vmm_args(const char *box_id, const char *snap_id)
{
    char path[600], args[8192], want[1200], overlay[600];
    struct snapfs_image_info info;
    struct snapfs_store *st;

    snprintf(path, sizeof(path), "%s/sandboxes/%s/vmm-args", state, box_id);
    read_file(path, args, sizeof(args));
    snprintf(overlay, sizeof(overlay), "%s/sandboxes/%s/overlay", state, box_id);
    snprintf(want, sizeof(want), "\n--disk\nstore=%s,overlay=%s\n", store_path, overlay);
    CHECK(strstr(args, want) != NULL);
    CHECK(strstr(args, "\n--cmdline\nconsole=ttyS0 ") != NULL);
    CHECK(strstr(args, " quiet sbx.root=/dev/vda sbx.hostname=web "
                       "sbx.net=10.0.2.15/24,10.0.2.2,10.0.2.3\n") != NULL);
    CHECK(strstr(args, "\n--net\nuser\n") != NULL);  /* sbx-api's default --guest-net */
    /* The overlay sits on the snapshot's image. */
    st = snapfs_store_open(store_path, 0);
    CHECK(st != NULL);
    CHECK(snapfs_image_info(st, snap_id, &info) == 0 && info.virtual_size == GIB);
    struct snapfs_disk *d = snapfs_disk_open(st, NULL, overlay, NULL);
    CHECK(d != NULL && !strcmp(snapfs_disk_image(d), snap_id));
    snapfs_disk_close(d);
    snapfs_store_close(st);
}

static void sandboxes(struct server *s, const char *snap_id)
{
    char id[STORE_ID_LEN];

    create_box(s, "web", "from-dir", id);
    vmm_args(id, snap_id);
    check_link("web", id, true);
    expect_status(s, "DELETE", "/v1/snapshots/from-dir", NULL, 409);  /* used */
    /* The link is made again at start-up. */
    server_stop(s);
    {
        char path[400];
        snprintf(path, sizeof(path), "%s/names/web", state);
        CHECK(unlink(path) == 0);
    }
    server_start(s, vmm_args_only);
    check_link("web", id, true);
    expect_status(s, "DELETE", "/v1/sandboxes/web", NULL, 204);
    check_link("web", id, false);
}

/* Writes a pattern into the sandbox's overlay the way the VMM would. */
static void write_overlay(const char *box_id, char *pattern, size_t len)
{
    char overlay[600];
    struct snapfs_store *st = snapfs_store_open(store_path, 0);
    struct snapfs_disk *d;

    for (size_t i = 0; i < len; i++)
        pattern[i] = (char)('a' + i % 23);
    snprintf(overlay, sizeof(overlay), "%s/sandboxes/%s/overlay", state, box_id);
    CHECK(st != NULL);
    d = snapfs_disk_open(st, NULL, overlay, NULL);
    CHECK(d != NULL);
    CHECK(snapfs_pwrite(d, pattern, len, WRITE_OFF) == 0);
    CHECK(snapfs_flush(d) == 0);
    snapfs_disk_close(d);
    snapfs_store_close(st);
}

static void check_image_bytes(const char *image, const char *parent, const char *pattern,
                              size_t len, bool want_equal)
{
    char *buf = malloc(len);
    struct snapfs_store *st = snapfs_store_open(store_path, 0);
    struct snapfs_image_info info;
    struct snapfs_disk *d;

    CHECK(buf && st);
    CHECK(snapfs_image_info(st, image, &info) == 0);
    /* A capture has the sandbox's disk size: the default 8 GiB over a 1 GiB snapshot. */
    if (parent)
        CHECK(!strcmp(info.parent, parent) && info.virtual_size == 8 * GIB);
    d = snapfs_disk_open(st, image, NULL, NULL);
    CHECK(d != NULL);
    CHECK(snapfs_pread(d, buf, len, WRITE_OFF) == 0);
    CHECK((memcmp(buf, pattern, len) == 0) == want_equal);
    snapfs_disk_close(d);
    snapfs_store_close(st);
    free(buf);
}

static void capture(struct server *s, const char *base_id)
{
    char id[STORE_ID_LEN], cap_id[STORE_ID_LEN], pattern[8192], path[600], log[4096];
    struct reply r;

    create_box(s, "cap-box", "from-dir", id);
    write_overlay(id, pattern, sizeof(pattern));
    api(s, "POST", "/v1/snapshots/capture", "{\"name\":\"cap\",\"sandbox\":\"cap-box\"}", &r);
    if (r.status != 201)
        fprintf(stderr, "%s\n", r.body);
    CHECK(r.status == 201 && !strcmp(reply_str(&r, "status"), "ready"));
    CHECK(!strcmp(reply_str(&r, "source"), "sandbox cap-box"));
    snprintf(cap_id, sizeof(cap_id), "%s", reply_str(&r, "id"));
    reply_free(&r);
    snprintf(path, sizeof(path), "%s/sandboxes/%s/agent.log", state, id);
    read_file(path, log, sizeof(log));
    CHECK(!strcmp(log, "HELLO\nSYNC\nFREEZE /\nTHAW /\n"));
    check_image_bytes(cap_id, base_id, pattern, sizeof(pattern), true);
    check_image_bytes(base_id, NULL, pattern, sizeof(pattern), false);
    snprintf(path, sizeof(path), "%s/tmp", state);
    CHECK(rmdir(path) == 0 && mkdir(path, 0700) == 0);      /* the copy is gone */

    /* A freeze the guest refuses: 409, no snapshot, no thaw. */
    snprintf(path, sizeof(path), "%s/sandboxes/%s/freeze-fails", state, id);
    CHECK(fclose(fopen(path, "w")) == 0);
    api(s, "POST", "/v1/snapshots/capture", "{\"name\":\"cap2\",\"sandbox\":\"cap-box\"}", &r);
    CHECK(r.status == 409 && strstr(r.body, "Device or resource busy"));
    reply_free(&r);
    expect_status(s, "GET", "/v1/snapshots/cap2", NULL, 404);
    snprintf(path, sizeof(path), "%s/sandboxes/%s/agent.log", state, id);
    read_file(path, log, sizeof(log));
    CHECK(!strcmp(log, "HELLO\nSYNC\nFREEZE /\nTHAW /\nHELLO\nSYNC\nFREEZE /\n"));

    /* Only running sandboxes; the captured snapshot boots. */
    expect_status(s, "POST", "/v1/sandboxes/cap-box/stop", NULL, 200);
    expect_status(s, "POST", "/v1/snapshots/capture", "{\"name\":\"cap3\",\"sandbox\":\"cap-box\"}",
                  409);
    create_box(s, "from-cap", "cap", id);
    expect_status(s, "DELETE", "/v1/sandboxes/from-cap", NULL, 204);
    /* A disk smaller than the snapshot is refused. */
    api(s, "POST", "/v1/sandboxes", "{\"name\":\"small\",\"snapshot\":\"cap\",\"disk_gib\":4}", &r);
    CHECK(r.status == 400 && strstr(r.body, "smaller than snapshot"));
    reply_free(&r);
    expect_status(s, "DELETE", "/v1/sandboxes/cap-box", NULL, 204);
    expect_status(s, "DELETE", "/v1/snapshots/cap", NULL, 204);
    snprintf(path, sizeof(path), "%s/images/%s", store_path, cap_id);
    CHECK(access(path, F_OK) < 0);
}

/* A row left building by a stopped sbx-api is failed at the next start; the
 * default snapshot is built from an ext4 image. */
static void restarts(struct server *s, const char *exported)
{
    struct snapshot_rec rec = { .id = "cut-short", .name = "cut", .status = "building",
                                .source = "/somewhere", .created_ms = 1 };
    const char *args[] = { "--vmm", vmm, "--default-snapshot", exported, NULL };
    char db[400];
    struct store *st;
    struct reply r;

    struct snapshot_rec old = { .id = "legacy-1", .name = "legacy", .status = "ready",
                                .created_ms = 2 };
    struct sandbox_rec box = { .id = "legacy-box-1", .name = "old-box", .snapshot_id = "legacy-1",
                               .status = "stopped", .vcpus = 1, .memory_mib = 256,
                               .disk_gib = 1, .created_ms = 3 };
    char dir[400];

    server_stop(s);
    snprintf(db, sizeof(db), "%s/sbx-api.db", state);
    CHECK(store_open(db, &st) == 0);
    CHECK(store_snapshot_insert(st, &rec) == 0);
    /* As schema 1 left them: a registered file never imported, and a sandbox on it. */
    snprintf(old.image_path, sizeof(old.image_path), "%s/snapshots/base.img", state);
    snprintf(old.source, sizeof(old.source), "%s", old.image_path);
    CHECK(store_snapshot_insert(st, &old) == 0);
    CHECK(store_sandbox_insert(st, &box) == 0);
    store_close(st);
    snprintf(dir, sizeof(dir), "%s/sandboxes/legacy-box-1", state);
    CHECK(mkdir(dir, 0700) == 0);
    server_start(s, args);
    api(s, "GET", "/v1/snapshots/cut", NULL, &r);
    CHECK(!strcmp(reply_str(&r, "status"), "failed") && strstr(reply_str(&r, "status_message"), "interrupted"));
    reply_free(&r);
    wait_built(s, "legacy", &r);
    CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    CHECK(json_integer_value(json_object_get(r.json, "size_bytes")) == 1 << 20);
    reply_free(&r);
    expect_status(s, "POST", "/v1/sandboxes/old-box/start", NULL, 200);
    wait_vmm("legacy-box-1");
    check_link("old-box", "legacy-box-1", true);
    expect_status(s, "DELETE", "/v1/sandboxes/old-box", NULL, 204);
    wait_built(s, "debian-12", &r);
    CHECK(!strcmp(reply_str(&r, "status"), "ready") && !strcmp(reply_str(&r, "source"), exported));
    CHECK(json_integer_value(json_object_get(r.json, "size_bytes")) == 4 * GIB);  /* grown */
    reply_free(&r);
}

static void find_stand_in(size_t len)
{
    char self[PATH_MAX - 64];
    const char *src = getenv("SBX_SRC_DIR");
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    CHECK(n > 0);
    self[n] = '\0';
    for (int i = 0; i < 4; i++)             /* SRC/build/tests/api/test_x -> SRC */
        *strrchr(self, '/') = '\0';
    snprintf(vmm, len, "%s/api/tests/snap_vmm.py", src ? src : self);
}

int main(void)
{
    char pid[32], dir_id[STORE_ID_LEN], exported[400];
    struct server s;

    find_stand_in(sizeof(vmm));
    if (access(vmm, X_OK) || system("python3 -c '' && which mke2fs debugfs tar zstd >/dev/null")) {
        fprintf(stderr, "SKIP: needs %s, python3, mke2fs, debugfs, tar and zstd\n", vmm);
        return 77;
    }
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("SBX_TEST_PID", pid, 1);
    server_init(&s, vmm_args_only);
    snprintf(state, sizeof(state), "%s/state", s.dir);
    snprintf(store_path, sizeof(store_path), "%s/store", state);
    builds(&s, dir_id);
    validation(&s);
    sandboxes(&s, dir_id);
    capture(&s, dir_id);
    snprintf(exported, sizeof(exported), "%s/export.img", s.dir);
    restarts(&s, exported);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
