/* Bad requests to a real sbx-api process: each gets the right 4xx/5xx status
 * and a typed JSON error with a message, and the server stays up. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_error(struct server *s, const char *method, const char *path,
                         const char *key, const char *body, size_t len, long status,
                         const char *type)
{
    struct reply r;
    const char *msg;

    request(s, method, path, key, body, len, &r);
    msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    if (r.status != status || strcmp(reply_error_type(&r), type) || !msg || !*msg) {
        fprintf(stderr, "%s %s: got %ld %s, want %ld %s\n", method, path, r.status,
                r.body, status, type);
        exit(1);
    }
    reply_free(&r);
}

static void expect_body(struct server *s, const char *method, const char *path,
                        const char *body, long status, const char *type)
{
    expect_error(s, method, path, TEST_KEY, body, strlen(body), status, type);
}

static void expect_create_error(struct server *s, const char *body, long status,
                                const char *type)
{
    expect_error(s, "POST", "/v1/sandboxes", TEST_KEY, body, strlen(body), status, type);
}

static void auth_errors(struct server *s)
{
    struct reply r;

    expect_error(s, "GET", "/v1/sandboxes", NULL, NULL, 0, 401, "unauthorized");
    expect_error(s, "GET", "/v1/sandboxes", "wrong-key", NULL, 0, 401, "unauthorized");
    expect_error(s, "GET", "/v1/sandboxes", "", NULL, 0, 401, "unauthorized");
    expect_error(s, "GET", "/v1/no-such-route", NULL, NULL, 0, 401, "unauthorized");
    expect_error(s, "GET", "/v1/sandboxes", "Bearer nope", NULL, 0, 401, "unauthorized");
    request(s, "GET", "/v1/sandboxes", "Bearer " TEST_KEY, NULL, 0, &r);
    CHECK(r.status == 200);
    reply_free(&r);
    /* Authorization: Bearer works too; health and the OpenAPI document are public. */
    request(s, "GET", "/healthz", NULL, NULL, 0, &r);
    CHECK(r.status == 200);
    reply_free(&r);
    request(s, "GET", "/openapi.json", NULL, NULL, 0, &r);
    CHECK(r.status == 200 && json_object_get(r.json, "openapi"));
    {
        static const char *const paths[] = { "/v1/sandboxes", "/v1/sandboxes/{name}",
                                             "/v1/sandboxes/{name}/start",
                                             "/v1/sandboxes/{name}/stop", "/v1/snapshots",
                                             "/v1/snapshots/{id}" };
        json_t *doc_paths = json_object_get(r.json, "paths");
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
            CHECK(json_object_get(doc_paths, paths[i]) != NULL);
    }
    reply_free(&r);
    request(s, "GET", "/v1/sandboxes", NULL, NULL, 0, &r);
    CHECK(r.status == 401);
    reply_free(&r);
}

static void body_errors(struct server *s)
{
    size_t huge = 1 << 20;
    char *big = malloc(huge);

    CHECK(big != NULL);
    memset(big, ' ', huge);
    expect_create_error(s, "{\"name\":", 400, "validation");
    expect_create_error(s, "[1,2,3]", 400, "validation");
    expect_create_error(s, "\"just a string\"", 400, "validation");
    expect_create_error(s, "{\"name\":\"a\",\"name\":\"b\",\"snapshot\":\"base\"}", 400,
                        "validation");
    expect_create_error(s, "{\"name\":\"ok\",\"snapshot\":\"base\",\"colour\":\"red\"}", 400,
                        "validation");
    expect_create_error(s, "{\"name\":\"ok\",\"snapshot\":\"base\",\"vcpus\":\"2\"}", 400,
                        "validation");
    expect_create_error(s, "{\"name\":\"ok\",\"snapshot\":\"base\",\"vcpus\":0}", 400,
                        "validation");
    expect_create_error(s, "{\"name\":\"ok\",\"snapshot\":\"base\",\"memory_mib\":1e9}", 400,
                        "validation");
    expect_create_error(s, "{\"name\":\"ok\",\"snapshot\":\"base\",\"idle_ttl_seconds\":-1}",
                        400, "validation");
    expect_create_error(s, "{\"snapshot\":\"base\"}", 400, "validation");
    expect_create_error(s, "{\"name\":\"ok\"}", 400, "validation");
    expect_create_error(s, "{\"name\":\"ok\",\"snapshot\":\"nope\"}", 404, "not_found");
    expect_error(s, "POST", "/v1/sandboxes", TEST_KEY, big, huge, 413, "payload_too_large");
    free(big);
}

static void name_errors(struct server *s)
{
    static const char *const bad[] = {
        "", "Upper", "9starts-with-digit", "ends-with-", "has--double", "has_underscore",
        "has.dot", "has space", "a123456789012345678901234567890123456789012345678901234567890123",
        "caf\\u00e9",
    };
    char body[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"name\":\"%s\",\"snapshot\":\"base\"}", bad[i]);
        expect_create_error(s, body, 400, "validation");
    }
}

static void route_errors(struct server *s)
{
    expect_error(s, "GET", "/v1/sandboxes/missing", TEST_KEY, NULL, 0, 404, "not_found");
    expect_error(s, "POST", "/v1/sandboxes/missing/start", TEST_KEY, NULL, 0, 404, "not_found");
    expect_error(s, "GET", "/v1/nothing-here", TEST_KEY, NULL, 0, 404, "not_found");
    expect_error(s, "GET", "/v1/sandboxes/a/b/c/d/e/f/g", TEST_KEY, NULL, 0, 404, "not_found");
    expect_error(s, "PUT", "/v1/sandboxes", TEST_KEY, NULL, 0, 405, "method_not_allowed");
    expect_body(s, "POST", "/v1/snapshots", "{\"name\":\"py\",\"docker_image\":\"Python:3\"}",
                400, "validation");
    expect_body(s, "POST", "/v1/snapshots/capture", "{}", 400, "validation");
    expect_body(s, "POST", "/v1/snapshots/capture", "{\"name\":\"c\",\"sandbox\":\"missing\"}",
                404, "not_found");
    expect_body(s, "POST", "/v1/snapshots", "{\"name\":\"evil\",\"image_path\":\"/etc/passwd\"}",
                400, "validation");
}

static void state_errors(struct server *s)
{
    struct reply r;

    api(s, "POST", "/v1/sandboxes", "{\"name\":\"dup\",\"snapshot\":\"base\"}", &r);
    CHECK(r.status == 201);
    reply_free(&r);
    expect_create_error(s, "{\"name\":\"dup\",\"snapshot\":\"base\"}", 409, "conflict");
    expect_error(s, "POST", "/v1/sandboxes/dup/start", TEST_KEY, NULL, 0, 409, "conflict");
    expect_body(s, "POST", "/v1/sandboxes/dup/stop", "{\"force\":true}", 400, "validation");
    expect_body(s, "POST", "/v1/sandboxes/dup/exec", "{}", 400, "validation");
    expect_error(s, "DELETE", "/v1/snapshots/base", TEST_KEY, NULL, 0, 409, "conflict");
    expect_body(s, "PATCH", "/v1/sandboxes/dup", "{\"disk_gib\":9}", 400, "validation");
    /* --max-running 1: a second running sandbox is over quota. */
    expect_create_error(s, "{\"name\":\"second\",\"snapshot\":\"base\"}", 429, "quota");
}

int main(void)
{
    static const char *const args[] = { "--max-running", "1", NULL };
    struct server s;
    struct reply r;

    server_init(&s, args);
    register_snapshot(&s, "base");
    auth_errors(&s);
    body_errors(&s);
    name_errors(&s);
    route_errors(&s);
    state_errors(&s);
    api(&s, "GET", "/healthz", NULL, &r);       /* still serving */
    CHECK(r.status == 200);
    reply_free(&r);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
