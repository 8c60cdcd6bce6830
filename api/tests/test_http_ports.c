/* Public ports: PUT/DELETE /v1/sandboxes/{name}/ports/{port}/public, public_ports at
 * create and in the sandbox JSON, the marker files STATE/names/NAME/public/PORT that
 * sbx-router reads, validation, and that they survive a stop/start and an sbx-api
 * restart and go with the sandbox. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static long call(struct server *s, const char *method, const char *path, const char *body)
{
    struct reply r;
    long status;

    api(s, method, path, body, &r);
    status = r.status;
    reply_free(&r);
    return status;
}

/* public_ports of name as "1,2,3" into buf. */
static const char *ports_of(struct server *s, const char *name, char *buf, size_t len)
{
    char path[128];
    struct reply r;
    json_t *arr, *v;
    size_t i, used = 0;

    snprintf(path, sizeof(path), "/v1/sandboxes/%s", name);
    api(s, "GET", path, NULL, &r);
    CHECK(r.status == 200);
    arr = json_object_get(r.json, "public_ports");
    CHECK(json_is_array(arr));
    buf[0] = '\0';
    json_array_foreach(arr, i, v)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                 (long long)json_integer_value(v));
    reply_free(&r);
    return buf;
}

static bool marker(struct server *s, const char *name, unsigned port)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/state/names/%s/public/%u", s->dir, name, port);
    return access(path, F_OK) == 0;
}

static void check_ports(struct server *s, const char *name, const char *want)
{
    char buf[512];

    if (strcmp(ports_of(s, name, buf, sizeof(buf)), want)) {
        fprintf(stderr, "%s: public_ports [%s], want [%s]\n", name, buf, want);
        CHECK(0);
    }
}

static void validation(struct server *s)
{
    static const char *const bad[] = { "0", "65536", "-1", "08080", "80a", "99999999999", "x" };
    char path[128];
    struct reply r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/v1/sandboxes/web/ports/%s/public", bad[i]);
        api(s, "PUT", path, NULL, &r);
        CHECK(r.status == 400 && !strcmp(reply_error_type(&r), "validation"));
        reply_free(&r);
    }
    CHECK(call(s, "PUT", "/v1/sandboxes/nope/ports/80/public", NULL) == 404);
    CHECK(call(s, "GET", "/v1/sandboxes/web/ports/80/public", NULL) == 405);
    CHECK(call(s, "PUT", "/v1/sandboxes/web/ports/80/public", "{\"x\":1}") == 400);
    CHECK(call(s, "POST", "/v1/sandboxes",
                "{\"name\":\"bad\",\"snapshot\":\"base\",\"public_ports\":[0]}") == 400);
    CHECK(call(s, "POST", "/v1/sandboxes",
                "{\"name\":\"bad\",\"snapshot\":\"base\",\"public_ports\":8080}") == 400);
    CHECK(call(s, "POST", "/v1/sandboxes",
                "{\"name\":\"bad\",\"snapshot\":\"base\",\"public_ports\":[\"80\"]}") == 400);
    CHECK(call(s, "GET", "/v1/sandboxes/bad", NULL) == 404);
}

/* At most 64 public ports (web has 2): the 65th is refused (429), an existing one is fine. */
static void bound(struct server *s)
{
    char path[128];

    for (unsigned p = 10000; p < 10000 + 62; p++) {
        snprintf(path, sizeof(path), "/v1/sandboxes/web/ports/%u/public", p);
        CHECK(call(s, "PUT", path, NULL) == 204);
    }
    CHECK(call(s, "PUT", "/v1/sandboxes/web/ports/20000/public", NULL) == 429);
    CHECK(call(s, "PUT", "/v1/sandboxes/web/ports/10000/public", NULL) == 204);
    for (unsigned p = 10000; p < 10000 + 62; p++) {
        snprintf(path, sizeof(path), "/v1/sandboxes/web/ports/%u/public", p);
        CHECK(call(s, "DELETE", path, NULL) == 204);
    }
}

int main(void)
{
    char body[2048];
    size_t used;
    struct server s;

    server_init(&s, NULL);
    register_snapshot(&s, "base");

    /* at create, duplicates folded, ascending */
    CHECK(call(&s, "POST", "/v1/sandboxes",
               "{\"name\":\"web\",\"snapshot\":\"base\",\"public_ports\":[8080,3000,8080]}") ==
          201);
    check_ports(&s, "web", "3000,8080");
    CHECK(marker(&s, "web", 3000) && marker(&s, "web", 8080) && !marker(&s, "web", 80));
    CHECK(call(&s, "POST", "/v1/sandboxes", "{\"name\":\"plain\",\"snapshot\":\"base\"}") == 201);
    check_ports(&s, "plain", "");

    /* more than 64 at create */
    used = (size_t)snprintf(body, sizeof(body),
                            "{\"name\":\"many\",\"snapshot\":\"base\",\"public_ports\":[");
    for (int i = 0; i < 65; i++)
        used += (size_t)snprintf(body + used, sizeof(body) - used, "%s%d", i ? "," : "", 1 + i);
    snprintf(body + used, sizeof(body) - used, "]}");
    CHECK(call(&s, "POST", "/v1/sandboxes", body) == 400);

    /* PUT and DELETE, both idempotent */
    CHECK(call(&s, "PUT", "/v1/sandboxes/web/ports/80/public", NULL) == 204);
    CHECK(call(&s, "PUT", "/v1/sandboxes/web/ports/80/public", "{}") == 204);
    CHECK(marker(&s, "web", 80));
    CHECK(call(&s, "DELETE", "/v1/sandboxes/web/ports/3000/public", NULL) == 204);
    CHECK(call(&s, "DELETE", "/v1/sandboxes/web/ports/3000/public", NULL) == 204);
    CHECK(!marker(&s, "web", 3000));
    check_ports(&s, "web", "80,8080");
    CHECK(call(&s, "PUT", "/v1/sandboxes/web/ports/65535/public", NULL) == 204);
    CHECK(call(&s, "DELETE", "/v1/sandboxes/web/ports/65535/public", NULL) == 204);
    validation(&s);
    bound(&s);
    check_ports(&s, "web", "80,8080");

    /* a stopped sandbox keeps them, and may change them */
    CHECK(call(&s, "POST", "/v1/sandboxes/web/stop", NULL) == 200);
    check_ports(&s, "web", "80,8080");
    CHECK(call(&s, "PUT", "/v1/sandboxes/web/ports/9000/public", NULL) == 204);
    CHECK(call(&s, "POST", "/v1/sandboxes/web/start", NULL) == 200);
    CHECK(wait_status(&s, "web", "running", 10000));
    check_ports(&s, "web", "80,8080,9000");
    CHECK(marker(&s, "web", 9000));

    /* an sbx-api restart */
    server_stop(&s);
    server_start(&s, NULL);
    check_ports(&s, "web", "80,8080,9000");
    CHECK(marker(&s, "web", 80) && marker(&s, "web", 8080) && marker(&s, "web", 9000));
    {
        struct reply r;
        api(&s, "GET", "/v1/sandboxes", NULL, &r);
        CHECK(r.status == 200);
        json_t *first = json_array_get(json_object_get(r.json, "sandboxes"), 0);
        CHECK(json_array_size(json_object_get(first, "public_ports")) == 3);
        reply_free(&r);
    }

    /* deleting the sandbox removes them; a new one of the same name starts with none */
    CHECK(call(&s, "DELETE", "/v1/sandboxes/web", NULL) == 204);
    CHECK(!marker(&s, "web", 80));
    CHECK(call(&s, "POST", "/v1/sandboxes", "{\"name\":\"web\",\"snapshot\":\"base\"}") == 201);
    check_ports(&s, "web", "");
    CHECK(!marker(&s, "web", 80));

    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
