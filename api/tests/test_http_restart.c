/* State survives an sbx-api restart: rows come back from the SQLite file,
 * running VMMs are adopted (and still watched), and a VMM that died while
 * sbx-api was down is reported as failed. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static json_t *get_sandbox(struct server *s, const char *name, struct reply *r)
{
    char path[128];

    snprintf(path, sizeof(path), "/v1/sandboxes/%s", name);
    api(s, "GET", path, NULL, r);
    CHECK(r->status == 200);
    return r->json;
}

static pid_t pid_of(struct server *s, const char *name)
{
    struct reply r;
    pid_t pid = (pid_t)json_integer_value(json_object_get(get_sandbox(s, name, &r), "vmm_pid"));

    reply_free(&r);
    return pid;
}

static void create(struct server *s, const char *name)
{
    char body[128];
    struct reply r;

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"snapshot\":\"base\",\"vcpus\":3}", name);
    api(s, "POST", "/v1/sandboxes", body, &r);
    CHECK(r.status == 201);
    reply_free(&r);
}

static void check_field(struct server *s, const char *name, const char *key, const char *want)
{
    struct reply r;
    const char *got = json_string_value(json_object_get(get_sandbox(s, name, &r), key));

    if (!got || !strstr(got, want)) {
        fprintf(stderr, "%s.%s = %s, want %s\n", name, key, got ? got : "null", want);
        CHECK(0);
    }
    reply_free(&r);
}

int main(void)
{
    struct server s;
    struct reply r;
    pid_t keep, lost;

    server_init(&s, NULL);
    register_snapshot(&s, "base");
    create(&s, "keeps-running");
    create(&s, "dies-while-down");
    create(&s, "was-stopped");
    api(&s, "POST", "/v1/sandboxes/was-stopped/stop", NULL, &r);
    CHECK(r.status == 200);
    reply_free(&r);
    keep = pid_of(&s, "keeps-running");
    lost = pid_of(&s, "dies-while-down");

    server_stop(&s);
    CHECK(pid_alive(keep) && pid_alive(lost));     /* VMMs outlive sbx-api */
    kill(lost, SIGKILL);
    for (int i = 0; i < 100 && pid_alive(lost); i++)
        nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
    server_start(&s, NULL);

    check_field(&s, "keeps-running", "status", "running");
    CHECK(pid_of(&s, "keeps-running") == keep);
    CHECK(json_integer_value(json_object_get(get_sandbox(&s, "keeps-running", &r), "vcpus")) == 3);
    reply_free(&r);
    check_field(&s, "was-stopped", "status", "stopped");
    check_field(&s, "dies-while-down", "status", "failed");
    check_field(&s, "dies-while-down", "status_message", "while sbx-api was not running");

    /* The adopted VMM is watched: its death is noticed ... */
    kill(keep, SIGKILL);
    CHECK(wait_status(&s, "keeps-running", "failed", 10000));
    /* ... and a restarted one can be stopped by the new sbx-api. */
    api(&s, "POST", "/v1/sandboxes/keeps-running/start", NULL, &r);
    CHECK(r.status == 200);
    reply_free(&r);
    keep = pid_of(&s, "keeps-running");
    server_stop(&s);
    server_start(&s, NULL);
    api(&s, "POST", "/v1/sandboxes/keeps-running/stop", NULL, &r);
    CHECK(r.status == 200);
    reply_free(&r);
    CHECK(!pid_alive(keep));

    api(&s, "GET", "/v1/snapshots", NULL, &r);
    CHECK(json_array_size(json_object_get(r.json, "snapshots")) == 1);
    reply_free(&r);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
