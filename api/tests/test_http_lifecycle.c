/* create / list / get / update / stop / start / delete through a real
 * sbx-api process with the stand-in VMM; VMM deaths and start failures are
 * reported on the sandbox. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *field(struct reply *r, const char *key)
{
    return json_object_get(r->json, key);
}

static const char *str(struct reply *r, const char *key)
{
    const char *v = json_string_value(field(r, key));

    return v ? v : "";
}

static pid_t vmm_pid(struct server *s, const char *name)
{
    char path[128];
    struct reply r;
    pid_t pid;

    snprintf(path, sizeof(path), "/v1/sandboxes/%s", name);
    api(s, "GET", path, NULL, &r);
    CHECK(r.status == 200);
    pid = (pid_t)json_integer_value(field(&r, "vmm_pid"));
    reply_free(&r);
    return pid;
}

static void create_and_inspect(struct server *s)
{
    struct reply r;
    pid_t pid;

    api(s, "POST", "/v1/sandboxes",
        "{\"name\":\"web-1\",\"snapshot\":\"base\",\"vcpus\":1,\"memory_mib\":256,"
        "\"disk_gib\":2,\"idle_ttl_seconds\":0,\"delete_after_stop_seconds\":0}", &r);
    CHECK(r.status == 201);
    CHECK(!strcmp(str(&r, "status"), "running") && !strcmp(str(&r, "name"), "web-1"));
    CHECK(json_integer_value(field(&r, "memory_mib")) == 256);
    CHECK(json_integer_value(field(&r, "disk_gib")) == 2);
    reply_free(&r);
    pid = vmm_pid(s, "web-1");
    CHECK(pid > 0 && pid_alive(pid));

    api(s, "GET", "/v1/sandboxes", NULL, &r);
    CHECK(r.status == 200 && json_array_size(field(&r, "sandboxes")) == 1);
    reply_free(&r);

    /* Defaults apply when fields are left out; snapshot_id is accepted. */
    api(s, "GET", "/v1/snapshots/base", NULL, &r);
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"web-2\",\"snapshot_id\":\"%s\"}", str(&r, "id"));
    reply_free(&r);
    api(s, "POST", "/v1/sandboxes", body, &r);
    CHECK(r.status == 201 && json_integer_value(field(&r, "vcpus")) == 2);
    CHECK(json_integer_value(field(&r, "idle_ttl_seconds")) == 600);
    reply_free(&r);
}

static void update_stop_start(struct server *s)
{
    struct reply r;
    pid_t old = vmm_pid(s, "web-1"), pid;

    api(s, "PATCH", "/v1/sandboxes/web-1", "{\"vcpus\":4,\"memory_mib\":512}", &r);
    CHECK(r.status == 200 && json_integer_value(field(&r, "vcpus")) == 4);
    reply_free(&r);

    api(s, "POST", "/v1/sandboxes/web-1/stop", NULL, &r);
    CHECK(r.status == 200 && !strcmp(str(&r, "status"), "stopped"));
    CHECK(json_is_null(field(&r, "vmm_pid")) && json_is_string(field(&r, "stopped_at")));
    reply_free(&r);
    CHECK(!pid_alive(old));

    api(s, "POST", "/v1/sandboxes/web-1/start", "{}", &r);
    CHECK(r.status == 200 && !strcmp(str(&r, "status"), "running"));
    reply_free(&r);
    pid = vmm_pid(s, "web-1");
    CHECK(pid > 0 && pid != old && pid_alive(pid));
}

static void vmm_death(struct server *s)
{
    struct reply r;
    pid_t pid = vmm_pid(s, "web-1");

    kill(pid, SIGKILL);
    CHECK(wait_status(s, "web-1", "failed", 10000));
    api(s, "GET", "/v1/sandboxes/web-1", NULL, &r);
    CHECK(strstr(str(&r, "status_message"), "signal 9") != NULL);
    reply_free(&r);

    /* A VMM that exits at once (the stand-in does for 77 MiB): reason and its last line. */
    api(s, "POST", "/v1/sandboxes", "{\"name\":\"bad-mem\",\"snapshot\":\"base\","
        "\"memory_mib\":77}", &r);
    CHECK(r.status == 201);
    reply_free(&r);
    CHECK(wait_status(s, "bad-mem", "failed", 10000));
    api(s, "GET", "/v1/sandboxes/bad-mem", NULL, &r);
    CHECK(strstr(str(&r, "status_message"), "status 3: vmm: cannot boot with 77 MiB") != NULL);
    reply_free(&r);

    /* A failed sandbox can be started again. */
    api(s, "POST", "/v1/sandboxes/web-1/start", NULL, &r);
    CHECK(r.status == 200 && !strcmp(str(&r, "status"), "running"));
    reply_free(&r);
}

static void start_failure(struct server *s)
{
    char vmm[300];
    struct reply r;

    /* An sbx-vmm that cannot be executed: create fails and leaves nothing. */
    snprintf(vmm, sizeof(vmm), "%s/vmm", s->dir);
    CHECK(chmod(vmm, 0644) == 0);
    api(s, "POST", "/v1/sandboxes", "{\"name\":\"no-exec\",\"snapshot\":\"base\"}", &r);
    CHECK(r.status == 500 && !strcmp(reply_error_type(&r), "internal"));
    CHECK(strstr(r.body, "Permission denied") != NULL);
    reply_free(&r);
    CHECK(chmod(vmm, 0755) == 0);
    api(s, "GET", "/v1/sandboxes/no-exec", NULL, &r);
    CHECK(r.status == 404);
    reply_free(&r);
}

static void delete_all(struct server *s)
{
    const char *names[] = { "web-1", "web-2", "bad-mem" };
    pid_t pid = vmm_pid(s, "web-1");
    struct reply r;

    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/sandboxes/%s", names[i]);
        api(s, "DELETE", path, NULL, &r);
        CHECK(r.status == 204);
        reply_free(&r);
        api(s, "GET", path, NULL, &r);
        CHECK(r.status == 404);
        reply_free(&r);
    }
    CHECK(!pid_alive(pid));
    api(s, "DELETE", "/v1/snapshots/base", NULL, &r);
    CHECK(r.status == 204);
    reply_free(&r);
    api(s, "GET", "/v1/snapshots", NULL, &r);
    CHECK(r.status == 200 && json_array_size(field(&r, "snapshots")) == 0);
    reply_free(&r);
}

int main(void)
{
    struct server s;

    server_init(&s, NULL);
    register_snapshot(&s, "base");
    create_and_inspect(&s);
    update_stop_start(&s);
    vmm_death(&s);
    start_failure(&s);
    delete_all(&s);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
