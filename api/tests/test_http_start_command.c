/* A snapshot's start command (startcmd.h) against a real guest agent
 * (dp_harness.h), where commands run as ordinary host processes: the command
 * is put in the run settings of registered snapshots with the store API, as a
 * build leaves it (test_oci_config checks the image side; the start_command
 * override is checked through startcmd_replace and through POST /v1/snapshots). A sandbox booted from such a snapshot runs it
 * (a marker file appears), shows its command id, whose output can be
 * re-attached; a stop and start runs it again; none without a command; a
 * missing binary leaves the sandbox running. */
#include "../agent_client.h"
#include "../oci_image.h"
#include "../startcmd.h"
#include "../store.h"
#include "dp_harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* Puts config (JSON text) on snapshot name beside the server. */
static void set_config(struct server *s, const char *name, const char *config)
{
    char path[400];
    struct snapshot_rec rec;
    struct store *st;

    snprintf(path, sizeof(path), "%s/state/sbx-api.db", s->dir);
    CHECK(store_open(path, &st) == 0);
    CHECK(store_snapshot_get(st, name, &rec) == 0);
    CHECK(store_snapshot_set_config(st, rec.id, config) == 0);
    store_close(st);
}

static void create_box(struct server *s, const char *name, const char *snapshot)
{
    char body[256];
    struct reply r;

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"snapshot\":\"%s\"}", name, snapshot);
    api(s, "POST", "/v1/sandboxes", body, &r);
    CHECK(r.status == 201);
    reply_free(&r);
    CHECK(wait_status(s, name, "running", 5000));
}

/* GET of sandbox name into *r; its start_command (borrowed). */
static json_t *start_command(struct server *s, const char *name, struct reply *r)
{
    char path[256];

    snprintf(path, sizeof(path), "/v1/sandboxes/%s", name);
    api(s, "GET", path, NULL, r);
    CHECK(r->status == 200 && r->json);
    return json_object_get(r->json, "start_command");
}

/* Whether sandbox name's start_command is null. */
static bool no_start_command(struct server *s, const char *name)
{
    struct reply r;
    json_t *sc = start_command(s, name, &r);
    bool none = json_is_null(sc);

    reply_free(&r);
    return none;
}

/* Waits up to 10 s for sandbox name's start command to have a command_id or
 * an error; returns the id (0 with an error, copied to error when not NULL). */
static long wait_started(struct server *s, const char *name, char *error, size_t len)
{
    for (int waited = 0; waited < 10000; waited += 100) {
        struct reply r;
        json_t *sc = start_command(s, name, &r);
        json_t *id = json_object_get(sc, "command_id");
        const char *e = json_string_value(json_object_get(sc, "error"));
        long got = json_is_integer(id) ? (long)json_integer_value(id) : e ? 0 : -1;

        CHECK(json_is_object(sc));
        if (e && error)
            snprintf(error, len, "%s", e);
        reply_free(&r);
        if (got >= 0)
            return got;
        harness_sleep_ms(100);
    }
    CHECK(!"the start command was not started within 10 s");
    return -1;
}

static bool wait_file(const char *path, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (access(path, F_OK) == 0)
            return true;
        harness_sleep_ms(50);
    }
    return false;
}

/* Re-attaches to command id of sandbox name (through its vsock bridge) and
 * expects its first output to be want. */
static void attach_expect(struct server *s, const char *name, long id, const char *want)
{
    struct timeval tv = { .tv_sec = 10 };
    struct agent_client c = { .fd = -1 };
    struct agent_exec_event ev;
    char path[600];
    struct reply r;
    int fd, running = 0;

    start_command(s, name, &r);
    snprintf(path, sizeof(path), "%s/state/sandboxes/%s/vsock.sock", s->dir,
             reply_str(&r, "id"));
    reply_free(&r);
    fd = agent_client_connect_vsock_uds(path, AGENT_VSOCK_PORT);
    CHECK(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    CHECK(agent_client_init(&c, fd) == 0);
    CHECK(agent_client_attach(&c, (uint32_t)id, 0, NULL, &running) == 0);
    CHECK(running);
    CHECK(agent_client_exec_next(&c, &ev) == 0);
    CHECK(ev.type == AGENT_STDOUT && ev.len == strlen(want) && !memcmp(ev.data, want, ev.len));
    agent_client_close(&c);
}

static void stop_start(struct server *s, const char *name)
{
    char path[256];
    struct reply r;

    snprintf(path, sizeof(path), "/v1/sandboxes/%s/stop", name);
    api(s, "POST", path, "{}", &r);
    CHECK(r.status == 200);
    reply_free(&r);
    CHECK(no_start_command(s, name));
    snprintf(path, sizeof(path), "/v1/sandboxes/%s/start", name);
    api(s, "POST", path, "{}", &r);
    CHECK(r.status == 200);
    reply_free(&r);
}

/* The override a build takes: checked, and put in (or taken out of) the run
 * settings. */
static void override(void)
{
    struct apierr err;
    char *out = NULL;
    json_t *v;

    v = json_loads("[\"nginx\",\"-g\",\"daemon off;\"]", 0, NULL);
    CHECK(startcmd_check(v, &err) == 0);
    CHECK(startcmd_replace("{\"user\":\"app\",\"command\":[\"sh\"]}", v, &out) == 0);
    CHECK(!strcmp(out, "{\"user\":\"app\",\"command\":[\"nginx\",\"-g\",\"daemon off;\"]}"));
    free(out);
    CHECK(startcmd_replace(NULL, v, &out) == 0);
    CHECK(!strcmp(out, "{\"command\":[\"nginx\",\"-g\",\"daemon off;\"]}"));
    free(out);
    json_decref(v);
    v = json_array();
    CHECK(startcmd_check(v, &err) == 0);
    CHECK(startcmd_replace("{\"user\":\"app\",\"command\":[\"sh\"]}", v, &out) == 0);
    CHECK(!strcmp(out, "{\"user\":\"app\"}"));
    free(out);
    CHECK(startcmd_replace("{\"command\":[\"sh\"]}", v, &out) == 0 && !strcmp(out, ""));
    free(out);
    json_decref(v);
    static const char *const bad[] = { "\"sh\"", "[\"\"]", "[\"sh\",\"\"]", "[1]",
                                       "[\"a\\u0000b\"]", "{}", NULL };
    for (int i = 0; bad[i]; i++) {
        v = json_loads(bad[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(v && startcmd_check(v, &err) == -1 && err.type == APIERR_VALIDATION);
        json_decref(v);
    }
    v = json_array();
    for (int i = 0; i <= OCI_CMD_ARGS_MAX; i++)
        json_array_append_new(v, json_string("x"));
    CHECK(startcmd_check(v, &err) == -1 && strstr(err.message, "at most"));
    json_decref(v);
}

/* sbx snapshot build --start-command CMD: ["sh", "-c", CMD]. */
static void cli_build(struct server *s, const char *dir)
{
    char sbx[PATH_MAX], cmd[PATH_MAX + 800];
    ssize_t n = readlink("/proc/self/exe", sbx, sizeof(sbx) - 16);
    struct reply r;
    json_t *command;

    CHECK(n > 0);
    sbx[n] = '\0';
    for (int i = 0; i < 3; i++)     /* build/tests/api/test_x -> build */
        *strrchr(sbx, '/') = '\0';
    strcat(sbx, "/bin/sbx");
    snprintf(cmd, sizeof(cmd), "SBX_API_URL=%s SBX_API_KEY=%s %s snapshot build clitree "
             "--source %s --capacity 1 --start-command 'echo hi; exec sleep 5' --wait "
             ">/dev/null", s->url, TEST_KEY, sbx, dir);
    CHECK(system(cmd) == 0);
    api(s, "GET", "/v1/snapshots/clitree", NULL, &r);
    command = json_object_get(json_object_get(r.json, "image_config"), "command");
    CHECK(json_array_size(command) == 3);
    CHECK(!strcmp(json_string_value(json_array_get(command, 2)), "echo hi; exec sleep 5"));
    reply_free(&r);
}

/* The override through the REST API: a folder build with start_command has it as
 * image_config.command, [] leaves none; bad ones and image_path with it are 400. */
static void rest_override(struct server *s)
{
    static const char *const bad[] = { "[\"\"]", "\"sh\"", "[1]", "{}", NULL };
    char body[600], dir[400];
    struct reply r;

    snprintf(dir, sizeof(dir), "%s/tree", s->dir);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(body, sizeof(body), "{\"name\":\"tree\",\"source\":\"%s\",\"capacity_gib\":1,"
             "\"start_command\":[\"sh\",\"-c\",\"exec sleep 5\"]}", dir);
    api(s, "POST", "/v1/snapshots", body, &r);
    CHECK(r.status == 201 || r.status == 202);
    reply_free(&r);
    wait_built(s, "tree", &r);
    CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    CHECK(json_array_size(json_object_get(json_object_get(r.json, "image_config"),
                                          "command")) == 3);
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"name\":\"bare\",\"source\":\"%s\",\"capacity_gib\":1,"
             "\"start_command\":[]}", dir);
    api(s, "POST", "/v1/snapshots", body, &r);
    reply_free(&r);
    wait_built(s, "bare", &r);
    CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    CHECK(json_is_null(json_object_get(r.json, "image_config")));
    reply_free(&r);
    for (int i = 0; bad[i]; i++) {
        snprintf(body, sizeof(body), "{\"name\":\"bad\",\"source\":\"%s\",\"start_command\":%s}",
                 dir, bad[i]);
        api(s, "POST", "/v1/snapshots", body, &r);
        CHECK(r.status == 400);
        reply_free(&r);
    }
    api(s, "POST", "/v1/snapshots",
        "{\"name\":\"bad\",\"image_path\":\"x.img\",\"start_command\":[\"sh\"]}", &r);
    CHECK(r.status == 400 && strstr(r.body, "start_command goes with"));
    reply_free(&r);
    cli_build(s, dir);
}

int main(void)
{
    static struct server s;
    char marker[400], config[1024], error[1024] = "";
    struct reply r;
    json_t *sc;
    long id;

    override();
    dp_setup(&s);
    /* DP_BOX's snapshot has no settings: no start command */
    CHECK(no_start_command(&s, DP_BOX));
    rest_override(&s);

    snprintf(marker, sizeof(marker), "%s/marker", s.dir);
    register_snapshot(&s, "svc");
    snprintf(config, sizeof(config),
             "{\"env\":[\"GREETING=started\"],\"command\":[\"sh\",\"-c\","
             "\"echo $GREETING; echo $GREETING > %s; exec sleep 30\"]}", marker);
    set_config(&s, "svc", config);
    api(&s, "GET", "/v1/snapshots/svc", NULL, &r);
    CHECK(r.status == 200);
    CHECK(json_array_size(json_object_get(json_object_get(r.json, "image_config"),
                                          "command")) == 3);
    reply_free(&r);

    create_box(&s, "web", "svc");
    CHECK(wait_file(marker, 10000));
    id = wait_started(&s, "web", NULL, 0);
    CHECK(id > 0);
    sc = start_command(&s, "web", &r);
    CHECK(json_array_size(json_object_get(sc, "command")) == 3);
    CHECK(!json_object_get(sc, "error"));
    reply_free(&r);
    attach_expect(&s, "web", id, "started\n");

    /* stop and start: it runs again */
    CHECK(unlink(marker) == 0);
    stop_start(&s, "web");
    CHECK(wait_file(marker, 10000));
    CHECK(wait_started(&s, "web", NULL, 0) > 0);

    /* [] (as a build's start_command [] leaves it): none */
    register_snapshot(&s, "quiet");
    set_config(&s, "quiet", "{\"working_dir\":\"/\"}");
    create_box(&s, "calm", "quiet");
    harness_sleep_ms(500);
    CHECK(no_start_command(&s, "calm"));

    /* a missing binary: an error (or an exit), the sandbox runs on */
    register_snapshot(&s, "broken");
    set_config(&s, "broken", "{\"command\":[\"/nonexistent/bin/server\",\"--port\",\"80\"]}");
    create_box(&s, "oops", "broken");
    id = wait_started(&s, "oops", error, sizeof(error));
    fprintf(stderr, "missing binary: id %ld, error '%s'\n", id, error);
    CHECK(id > 0 || error[0]);
    CHECK(wait_status(&s, "oops", "running", 0));
    api(&s, "POST", "/v1/sandboxes/oops/exec", "{\"command\":[\"echo\",\"alive\"]}", &r);
    CHECK(r.status == 200 && !strcmp(reply_str(&r, "stdout"), "alive\n"));
    reply_free(&r);

    api(&s, "DELETE", "/v1/sandboxes/web", NULL, &r);
    CHECK(r.status == 204);
    reply_free(&r);
    server_cleanup(&s);
    printf("test_http_start_command: ok\n");
    return 0;
}
