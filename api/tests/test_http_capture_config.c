/* The image config's run settings of a snapshot built from a container image
 * layout on this host (api/tests/registry_image.sh, no registry needed) in
 * its JSON, kept across an sbx-api restart and by a capture of a sandbox made
 * from it (stand-in VMM api/tests/snap_vmm.py with its tiny guest agent);
 * a snapshot from a plain folder has none. */
#include "../store.h"
#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char src[PATH_MAX - 128], vmm[PATH_MAX];

static void find_src(void)
{
    ssize_t n = readlink("/proc/self/exe", src, sizeof(src) - 1);

    CHECK(n > 0);
    src[n] = '\0';
    for (int i = 0; i < 4; i++)             /* SRC/build/tests/api/test_x -> SRC */
        *strrchr(src, '/') = '\0';
    if (getenv("SBX_SRC_DIR"))
        snprintf(src, sizeof(src), "%s", getenv("SBX_SRC_DIR"));
    snprintf(vmm, sizeof(vmm), "%s/api/tests/snap_vmm.py", src);
}

static void build(struct server *s, const char *name, const char *source)
{
    char body[PATH_MAX + 100];
    struct reply r;

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"source\":\"%s\",\"capacity_gib\":1}", name,
             source);
    api(s, "POST", "/v1/snapshots", body, &r);
    CHECK(r.status == 201 && json_is_null(json_object_get(r.json, "image_config")));
    reply_free(&r);
    wait_built(s, name, &r);
    if (strcmp(reply_str(&r, "status"), "ready"))
        fprintf(stderr, "%s\n", r.body);
    CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    reply_free(&r);
}

/* Snapshot name's image_config as compact JSON text ("null" when none). */
static void config_of(struct server *s, const char *name, char *out, size_t len)
{
    char path[200], *text;
    struct reply r;

    snprintf(path, sizeof(path), "/v1/snapshots/%s", name);
    api(s, "GET", path, NULL, &r);
    CHECK(r.status == 200 && r.json);
    text = json_dumps(json_object_get(r.json, "image_config"),
                      JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    CHECK(text != NULL);
    snprintf(out, len, "%s", text);
    free(text);
    reply_free(&r);
}

static void expect_config(struct server *s, const char *name, const char *want)
{
    char got[1024];

    config_of(s, name, got, sizeof(got));
    if (strcmp(got, want))
        fprintf(stderr, "%s: image_config %s, wanted %s\n", name, got, want);
    CHECK(!strcmp(got, want));
}

static void wait_vmm(struct server *s, const char *id)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/state/sandboxes/%s/vsock.sock", s->dir, id);
    for (int i = 0; i < 100 && access(path, F_OK); i++)
        harness_sleep_ms(50);
    CHECK(access(path, F_OK) == 0);
}

int main(void)
{
    static const char want[] =
        "{\"env\":[\"PATH=/opt/venv/bin:/bin\",\"GREETING=hello world\"],"
        "\"working_dir\":\"/opq\",\"user\":\"app\"}";
    const char *args[] = { "--vmm", vmm, NULL };
    char cmd[PATH_MAX * 2], path[PATH_MAX], pid[32];
    struct server s;
    struct reply r;

    find_src();
    if (access(vmm, X_OK) ||
        system("python3 -c '' && which mke2fs tar gzip zstd busybox sha256sum >/dev/null")) {
        fprintf(stderr, "SKIP: needs %s, python3, mke2fs, tar, gzip, zstd, busybox\n", vmm);
        return 77;
    }
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("SBX_TEST_PID", pid, 1);
    server_init(&s, args);
    snprintf(cmd, sizeof(cmd), "mkdir %s/img && %s/api/tests/registry_image.sh %s/img", s.dir,
             src, s.dir);
    CHECK(system(cmd) == 0);

    snprintf(path, sizeof(path), "%s/img/layout", s.dir);
    build(&s, "img", path);
    expect_config(&s, "img", want);
    snprintf(path, sizeof(path), "%s/img/layout/blobs", s.dir);     /* a plain folder */
    build(&s, "plain", path);
    expect_config(&s, "plain", "null");

    server_stop(&s);
    server_start(&s, args);
    expect_config(&s, "img", want);

    api(&s, "POST", "/v1/sandboxes", "{\"name\":\"box\",\"snapshot\":\"img\"}", &r);
    CHECK(r.status == 201);
    wait_vmm(&s, reply_str(&r, "id"));
    reply_free(&r);
    api(&s, "POST", "/v1/snapshots/capture", "{\"name\":\"cap\",\"sandbox\":\"box\"}", &r);
    if (r.status != 201)
        fprintf(stderr, "%s\n", r.body);
    CHECK(r.status == 201 && !strcmp(reply_str(&r, "status"), "ready"));
    reply_free(&r);
    expect_config(&s, "cap", want);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
