/* A snapshot's image config (Env, WorkingDir, User) as the defaults of every
 * command run in its sandboxes, against a real guest agent (dp_harness.h):
 * one-shot exec and the WebSocket exec (through build/bin/sbx exec, the path
 * sbx console takes too). The config is put on the registered snapshot with
 * the store API, as a build from a container image leaves it (test_oci_registry
 * checks that part), with a cwd and user that exist on this host, where the
 * agent runs as an ordinary process. The request's env overrides per
 * variable, its cwd and user win, and a snapshot without a config changes
 * nothing. Unprivileged, the agent cannot switch users: the default user
 * shows as 403 instead of in `id -un`. */
#include "../store.h"
#include "dp_harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char workdir[400];
static bool as_root;

/* Puts config (JSON text, "" for none) on snapshot "base" beside the server. */
static void set_config(struct server *s, const char *config)
{
    char path[400];
    struct snapshot_rec rec;
    struct store *st;

    snprintf(path, sizeof(path), "%s/state/sbx-api.db", s->dir);
    CHECK(store_open(path, &st) == 0);
    CHECK(store_snapshot_get(st, "base", &rec) == 0);
    CHECK(store_snapshot_set_config(st, rec.id, config) == 0);
    store_close(st);
}

/* One-shot exec of body; expects status and, for 200, stdout want. */
static void exec_expect(struct server *s, const char *body, long status, const char *want)
{
    struct reply r;

    api(s, "POST", "/v1/sandboxes/" DP_BOX "/exec", body, &r);
    if (r.status != status || (want && strcmp(reply_str(&r, "stdout"), want)))
        fprintf(stderr, "%s -> %ld %s\nwanted %ld %s\n", body, r.status, r.body, status,
                want ? want : "");
    CHECK(r.status == status);
    if (want)
        CHECK(!strcmp(reply_str(&r, "stdout"), want));
    reply_free(&r);
}

#define SHOW "echo \\\"$GREETING|$WHO|$PATH\\\"; pwd; id -un"
#define IMAGE_PATH "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"

static void oneshot(struct server *s)
{
    char want[1024], body[1024];

    /* the image's Env (the later WHO wins, as in Docker), WorkingDir, User */
    snprintf(want, sizeof(want), "hello world|image2|" IMAGE_PATH "\n%s\n%s", workdir,
             as_root ? "nobody\n" : "");
    exec_expect(s, "{\"command\":[\"sh\",\"-c\",\"" SHOW "\"]}", as_root ? 200 : 403,
                as_root ? want : NULL);
    if (!as_root)
        return;
    /* the request's env per variable, its cwd and user */
    snprintf(body, sizeof(body),
             "{\"command\":[\"sh\",\"-c\",\"" SHOW "\"],\"env\":{\"WHO\":\"request\"},"
             "\"cwd\":\"/tmp\",\"user\":\"root\"}");
    exec_expect(s, body, 200, "hello world|request|" IMAGE_PATH "\n/tmp\nroot\n");
}

/* sbx exec runs its command through the WebSocket exec (as root: the
 * image's user is nobody, the request's root). */
static void websocket(struct server *s)
{
    char sbx[PATH_MAX], cmd[PATH_MAX + 600], out[1024] = "", want[1024];
    ssize_t n = readlink("/proc/self/exe", sbx, sizeof(sbx) - 16);
    size_t got;
    FILE *p;

    CHECK(n > 0);
    sbx[n] = '\0';
    for (int i = 0; i < 3; i++)     /* build/tests/api/test_x -> build */
        *strrchr(sbx, '/') = '\0';
    strcat(sbx, "/bin/sbx");
    snprintf(cmd, sizeof(cmd),
             "SBX_API_URL=%s SBX_API_KEY=%s %s exec %s --env WHO=cli -- sh -c '"
             "echo \"$GREETING|$WHO|$PATH\"; pwd; id -un'", s->url, TEST_KEY, sbx, DP_BOX);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = '\0';
    CHECK(pclose(p) == 0);
    snprintf(want, sizeof(want), "hello world|cli|" IMAGE_PATH "\n%s\nnobody\n", workdir);
    if (strcmp(out, want))
        fprintf(stderr, "sbx exec: %s\nwanted %s\n", out, want);
    CHECK(!strcmp(out, want));
}

static void shown(struct server *s, bool has)
{
    struct reply r;
    json_t *c;

    api(s, "GET", "/v1/snapshots/base", NULL, &r);
    CHECK(r.status == 200 && r.json);
    c = json_object_get(r.json, "image_config");
    if (has)
        CHECK(!strcmp(json_string_value(json_object_get(c, "working_dir")) ?: "", workdir));
    else
        CHECK(json_is_null(c));
    reply_free(&r);
}

int main(void)
{
    static struct server s;
    char config[2048];

    dp_setup(&s);
    as_root = geteuid() == 0;
    snprintf(workdir, sizeof(workdir), "%s/app", s.dir);
    CHECK(mkdir(workdir, 0755) == 0);
    shown(&s, false);
    snprintf(config, sizeof(config),
             "{\"env\":[\"PATH=" IMAGE_PATH "\",\"GREETING=hello world\",\"WHO=image\","
             "\"WHO=image2\"],\"working_dir\":\"%s\",\"user\":\"nobody:nogroup\"}", workdir);
    set_config(&s, config);
    shown(&s, true);
    oneshot(&s);
    if (as_root)
        websocket(&s);
    /* unprivileged: the same without the user, which the agent cannot take */
    snprintf(config, sizeof(config),
             "{\"env\":[\"PATH=" IMAGE_PATH "\",\"GREETING=hello world\",\"WHO=image\","
             "\"WHO=image2\"],\"working_dir\":\"%s\"}", workdir);
    set_config(&s, config);
    if (!as_root) {
        char want[1024];
        snprintf(want, sizeof(want), "hello world|image2|" IMAGE_PATH "\n%s\n", workdir);
        exec_expect(&s, "{\"command\":[\"sh\",\"-c\",\"echo \\\"$GREETING|$WHO|$PATH\\\"; "
                    "pwd\"]}", 200, want);
    }
    /* no config: as before (no image variables, the agent's own cwd and user) */
    set_config(&s, "");
    shown(&s, false);
    exec_expect(&s, "{\"command\":[\"sh\",\"-c\",\"echo \\\"[$GREETING]\\\"\"]}", 200, "[]\n");
    exec_expect(&s, "{\"command\":[\"sh\",\"-c\",\"id -un\"]}", 200, NULL);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
