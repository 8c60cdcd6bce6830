/* Authentication, routing and body validation for every request. */
#include "router.h"

#include "openapi.h"
#include "ports.h"
#include "sandbox.h"
#include "snapshot.h"
#include "startcmd.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 512
#define MAX_SEGMENTS 6
#define MAX_TTL_SECONDS (10LL * 365 * 24 * 3600)
#define MIN_MEMORY_MIB 64

struct route_ctx {
    struct router *r;
    const struct api_request *req;
    const char *param;          /* the first {} segment, if the route has one */
    const char *param2;         /* the second {} segment */
    struct api_response *resp;
    struct apierr err;
};

typedef int (*route_fn)(struct route_ctx *c);

struct route {
    const char *method;
    const char *pattern;        /* "{}" matches one segment */
    route_fn fn;
    bool auth;
};

static void reply(struct route_ctx *c, int status, json_t *obj)
{
    api_response_json(c->resp, status, obj);
}

/* Parses the body into an object and rejects unknown fields. */
static json_t *body_object(struct route_ctx *c, const char *const *allowed)
{
    json_t *obj;

    if (valid_parse_object(c->req->body, c->req->body_len, true, &obj, &c->err))
        return NULL;
    if (valid_known_fields(obj, allowed, &c->err)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int h_health(struct route_ctx *c)
{
    reply(c, 200, json_pack("{s:s}", "status", "ok"));
    return 0;
}

static int h_openapi(struct route_ctx *c)
{
    size_t len;
    const char *doc = openapi_document(&len);

    c->resp->status = 200;
    c->resp->body = strndup(doc, len);
    if (!c->resp->body)
        return apierr_set(&c->err, APIERR_INTERNAL, "out of memory");
    return 0;
}

static int h_snapshot_list(struct route_ctx *c)
{
    json_t *arr = snapshot_list_json(c->r->svc, &c->err);

    if (!arr)
        return -1;
    reply(c, 200, json_pack("{s:o}", "snapshots", arr));
    return 0;
}

#define REGISTRY_USER_MAX 256
#define REGISTRY_PASSWORD_MAX 8192

/* String field key of the registry_auth object a (1..max bytes, no NUL) into
 * *out; the messages never quote the value. */
static int auth_str(struct route_ctx *c, json_t *a, const char *key, size_t max,
                    const char **out)
{
    json_t *v = json_object_get(a, key);
    size_t len = json_string_length(v);

    *out = NULL;
    if (!json_is_string(v) || len == 0 || len > max || strlen(json_string_value(v)) != len)
        return apierr_set(&c->err, APIERR_VALIDATION,
                          "registry_auth.%s is required: a string of 1 to %zu bytes", key, max);
    *out = json_string_value(v);
    return 0;
}

/* The optional registry_auth object {username, password} of a snapshot build
 * body into *user and *pass (borrowed from obj; both NULL when absent). */
static int registry_auth_field(struct route_ctx *c, json_t *obj, const char **user,
                               const char **pass)
{
    static const char *const allowed[] = { "username", "password", NULL };
    json_t *a = json_object_get(obj, "registry_auth");

    *user = *pass = NULL;
    if (!a)
        return 0;
    if (!json_is_object(a))
        return apierr_set(&c->err, APIERR_VALIDATION,
                          "registry_auth must be an object {username, password}");
    if (valid_known_fields(a, allowed, &c->err) ||
        auth_str(c, a, "username", REGISTRY_USER_MAX, user) ||
        auth_str(c, a, "password", REGISTRY_PASSWORD_MAX, pass))
        return -1;
    for (const char *p = *user; *p; p++)
        if (*p == ':' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return apierr_set(&c->err, APIERR_VALIDATION, "registry_auth.username must not "
                              "contain ':' or control characters");
    return 0;
}

/* Wipes the password of the body's registry_auth (jansson's copy) before the
 * body is freed. */
static void wipe_registry_auth(json_t *obj)
{
    json_t *p = json_object_get(json_object_get(obj, "registry_auth"), "password");

    if (json_is_string(p))
        explicit_bzero((char *)json_string_value(p), json_string_length(p));
}

/* {name, source, capacity_gib} and {name, docker_image, capacity_gib,
 * registry_auth} build in the background (201, building); {name, image_path}
 * imports a raw image from the snapshot directory at once. */
static int h_snapshot_create(struct route_ctx *c)
{
    static const char *const allowed[] = { "name", "source", "capacity_gib", "image_path",
                                           "docker_image", "registry_auth", "start_command",
                                           NULL };
    const char *name, *source, *image, *docker, *reg_user, *reg_pass;
    int64_t capacity = SNAPSHOT_DEFAULT_CAPACITY_GIB;
    struct snapshot_rec rec;
    json_t *obj = body_object(c, allowed), *start_command;
    bool has_capacity;
    int rc = -1;

    if (!obj)
        return -1;
    if (valid_str_field(obj, "name", 63, &name, &c->err) ||
        valid_str_field(obj, "source", 1000, &source, &c->err) ||
        valid_str_field(obj, "image_path", 1000, &image, &c->err) ||
        valid_str_field(obj, "docker_image", 1000, &docker, &c->err) ||
        valid_int_field(obj, "capacity_gib", 1, c->r->svc->limits.max_disk_gib, &capacity,
                        &has_capacity, &c->err) ||
        registry_auth_field(c, obj, &reg_user, &reg_pass))
        goto out;
    if (!name || (!!source + !!image + !!docker) != 1) {
        apierr_set(&c->err, APIERR_VALIDATION,
                   "name and one of source, docker_image, image_path are required");
        goto out;
    }
    if (reg_user && !docker) {
        apierr_set(&c->err, APIERR_VALIDATION, "registry_auth goes with docker_image only");
        goto out;
    }
    start_command = json_object_get(obj, "start_command");
    if (start_command && image) {
        apierr_set(&c->err, APIERR_VALIDATION, "start_command goes with source or docker_image");
        goto out;
    }
    if (start_command && startcmd_check(start_command, &c->err))
        goto out;
    if (docker)
        rc = snapshot_build_docker_cmd(c->r->svc, name, docker, capacity, reg_user, reg_pass,
                                       start_command, &rec, &c->err);
    else if (source)
        rc = snapshot_build_cmd(c->r->svc, name, source,
                                has_capacity ? capacity : SNAPSHOT_DEFAULT_CAPACITY_GIB,
                                start_command, &rec, &c->err);
    else
        rc = snapshot_register(c->r->svc, name, image, &rec, &c->err);
    if (rc == 0)
        reply(c, 201, snapshot_to_json(c->r->svc, &rec));
out:
    wipe_registry_auth(obj);
    json_decref(obj);
    return rc;
}

static int h_snapshot_capture(struct route_ctx *c)
{
    static const char *const allowed[] = { "name", "sandbox", NULL };
    const char *name, *sandbox;
    struct snapshot_rec rec;
    json_t *obj = body_object(c, allowed);
    int rc = -1;

    if (!obj)
        return -1;
    if (valid_str_field(obj, "name", 63, &name, &c->err) ||
        valid_str_field(obj, "sandbox", 63, &sandbox, &c->err))
        goto out;
    if (!name || !sandbox) {
        apierr_set(&c->err, APIERR_VALIDATION, "name and sandbox are required");
        goto out;
    }
    rc = snapshot_capture(c->r->svc, name, sandbox, &rec, &c->err);
    if (rc == 0)
        reply(c, 201, snapshot_to_json(c->r->svc, &rec));
out:
    json_decref(obj);
    return rc;
}

static int h_snapshot_get(struct route_ctx *c)
{
    struct snapshot_rec rec;

    if (snapshot_get(c->r->svc, c->param, &rec, &c->err))
        return -1;
    reply(c, 200, snapshot_to_json(c->r->svc, &rec));
    return 0;
}

static int h_snapshot_delete(struct route_ctx *c)
{
    if (snapshot_delete(c->r->svc, c->param, &c->err))
        return -1;
    c->resp->status = 204;
    return 0;
}

static int h_sandbox_list(struct route_ctx *c)
{
    struct sandbox_rec *recs;
    json_t *arr;
    size_t n;

    if (sandbox_list(c->r->svc, &recs, &n, &c->err))
        return -1;
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, sandbox_to_json(c->r->svc, &recs[i]));
    free(recs);
    reply(c, 200, json_pack("{s:o}", "sandboxes", arr));
    return 0;
}

/* Reads the resource fields shared by create and update. */
static int read_resources(struct route_ctx *c, json_t *obj, struct sandbox_changes *ch)
{
    const struct svc_limits *l = &c->r->svc->limits;

    return valid_int_field(obj, "vcpus", 1, l->max_vcpus, &ch->vcpus, &ch->has_vcpus,
                           &c->err) ||
           valid_int_field(obj, "memory_mib", MIN_MEMORY_MIB, l->max_memory_mib,
                           &ch->memory_mib, &ch->has_memory_mib, &c->err) ||
           valid_int_field(obj, "idle_ttl_seconds", 0, MAX_TTL_SECONDS, &ch->idle_ttl_seconds,
                           &ch->has_idle_ttl, &c->err) ||
           valid_int_field(obj, "delete_after_stop_seconds", 0, MAX_TTL_SECONDS,
                           &ch->delete_after_stop_seconds, &ch->has_delete_after_stop, &c->err)
               ? -1 : 0;
}

static int read_create(struct route_ctx *c, json_t *obj, struct sandbox_spec *spec)
{
    const struct svc_limits *l = &c->r->svc->limits;
    struct sandbox_changes ch = { 0 };
    const char *snap_id;
    bool has_disk;

    if (valid_str_field(obj, "name", 63, &spec->name, &c->err) ||
        valid_str_field(obj, "snapshot", 63, &spec->snapshot, &c->err) ||
        valid_str_field(obj, "snapshot_id", 63, &snap_id, &c->err) ||
        read_resources(c, obj, &ch) ||
        valid_int_field(obj, "disk_gib", 1, l->max_disk_gib, &spec->disk_gib, &has_disk,
                        &c->err))
        return -1;
    if (!spec->name)
        return apierr_set(&c->err, APIERR_VALIDATION, "name is required");
    if (spec->snapshot && snap_id)
        return apierr_set(&c->err, APIERR_VALIDATION, "give snapshot or snapshot_id, not both");
    if (!spec->snapshot && !(spec->snapshot = snap_id))
        return apierr_set(&c->err, APIERR_VALIDATION, "snapshot is required");
    spec->vcpus = ch.has_vcpus ? ch.vcpus : l->default_vcpus;
    spec->memory_mib = ch.has_memory_mib ? ch.memory_mib : l->default_memory_mib;
    spec->disk_gib = has_disk ? spec->disk_gib : 0;    /* 0: sandbox.c's default */
    spec->idle_ttl_seconds = ch.has_idle_ttl ? ch.idle_ttl_seconds
                                             : l->default_idle_ttl_seconds;
    spec->delete_after_stop_seconds = ch.has_delete_after_stop
                                          ? ch.delete_after_stop_seconds
                                          : l->default_delete_after_stop_seconds;
    return 0;
}

/* public_ports: optional; spec->public_ports has room for PORTS_MAX_PUBLIC. */
static int read_public_ports(struct route_ctx *c, json_t *obj, struct sandbox_spec *spec)
{
    json_t *arr = json_object_get(obj, "public_ports");
    unsigned *ports = (unsigned *)spec->public_ports;

    spec->n_public_ports = 0;
    if (!arr)
        return 0;
    return ports_parse(arr, ports, &spec->n_public_ports, &c->err);
}

static int h_sandbox_create(struct route_ctx *c)
{
    static const char *const allowed[] = { "name", "snapshot", "snapshot_id", "vcpus",
                                           "memory_mib", "disk_gib", "idle_ttl_seconds",
                                           "delete_after_stop_seconds", "public_ports", NULL };
    unsigned public_ports[PORTS_MAX_PUBLIC];
    struct sandbox_spec spec = { .public_ports = public_ports };
    struct sandbox_rec rec;
    json_t *obj = body_object(c, allowed);
    int rc = -1;

    if (!obj)
        return -1;
    if (read_create(c, obj, &spec) == 0 && read_public_ports(c, obj, &spec) == 0)
        rc = sandbox_create(c->r->svc, &spec, &rec, &c->err);
    if (rc == 0)
        reply(c, 201, sandbox_to_json(c->r->svc, &rec));
    json_decref(obj);
    return rc;
}

static int h_sandbox_get(struct route_ctx *c)
{
    struct sandbox_rec rec;

    if (sandbox_get(c->r->svc, c->param, &rec, &c->err))
        return -1;
    reply(c, 200, sandbox_to_json(c->r->svc, &rec));
    return 0;
}

static int h_sandbox_update(struct route_ctx *c)
{
    static const char *const allowed[] = { "vcpus", "memory_mib", "idle_ttl_seconds",
                                           "delete_after_stop_seconds", NULL };
    struct sandbox_changes ch = { 0 };
    struct sandbox_rec rec;
    json_t *obj = body_object(c, allowed);
    int rc = -1;

    if (!obj)
        return -1;
    if (read_resources(c, obj, &ch) == 0)
        rc = sandbox_update(c->r->svc, c->param, &ch, &rec, &c->err);
    if (rc == 0)
        reply(c, 200, sandbox_to_json(c->r->svc, &rec));
    json_decref(obj);
    return rc;
}

/* start and stop take no fields; an empty body or {} is fine. */
static int empty_body(struct route_ctx *c)
{
    static const char *const allowed[] = { NULL };
    json_t *obj = body_object(c, allowed);

    json_decref(obj);
    return obj ? 0 : -1;
}

static int h_sandbox_start(struct route_ctx *c)
{
    struct sandbox_rec rec;

    if (empty_body(c) || sandbox_start(c->r->svc, c->param, &rec, &c->err))
        return -1;
    reply(c, 200, sandbox_to_json(c->r->svc, &rec));
    return 0;
}

static int h_sandbox_stop(struct route_ctx *c)
{
    struct sandbox_rec rec;

    if (empty_body(c) ||
        sandbox_stop(c->r->svc, c->param, "stopped by request", &rec, &c->err))
        return -1;
    reply(c, 200, sandbox_to_json(c->r->svc, &rec));
    return 0;
}

static int h_sandbox_delete(struct route_ctx *c)
{
    if (sandbox_delete(c->r->svc, c->param, &c->err))
        return -1;
    c->resp->status = 204;
    return 0;
}

/* PUT and DELETE /v1/sandboxes/{name}/ports/{port}/public (no body): 204. */
static int set_port(struct route_ctx *c, bool public)
{
    unsigned port;

    if (empty_body(c) || ports_parse_segment(c->param2, &port, &c->err) ||
        sandbox_set_port_public(c->r->svc, c->param, port, public, &c->err))
        return -1;
    c->resp->status = 204;
    return 0;
}

static int h_port_public(struct route_ctx *c)
{
    return set_port(c, true);
}

static int h_port_private(struct route_ctx *c)
{
    return set_port(c, false);
}

/* The data-plane routes (/v1/sandboxes/{}/exec, files, tunnel, service-url)
 * stream and block on the guest agent: httpd.c hands them to dataplane.c. */
static const struct route routes[] = {
    { "GET", "/healthz", h_health, false },
    { "GET", "/openapi.json", h_openapi, false },
    { "GET", "/v1/snapshots", h_snapshot_list, true },
    { "POST", "/v1/snapshots", h_snapshot_create, true },
    { "POST", "/v1/snapshots/capture", h_snapshot_capture, true },
    { "GET", "/v1/snapshots/{}", h_snapshot_get, true },
    { "DELETE", "/v1/snapshots/{}", h_snapshot_delete, true },
    { "GET", "/v1/sandboxes", h_sandbox_list, true },
    { "POST", "/v1/sandboxes", h_sandbox_create, true },
    { "GET", "/v1/sandboxes/{}", h_sandbox_get, true },
    { "PATCH", "/v1/sandboxes/{}", h_sandbox_update, true },
    { "DELETE", "/v1/sandboxes/{}", h_sandbox_delete, true },
    { "POST", "/v1/sandboxes/{}/start", h_sandbox_start, true },
    { "POST", "/v1/sandboxes/{}/stop", h_sandbox_stop, true },
    { "PUT", "/v1/sandboxes/{}/ports/{}/public", h_port_public, true },
    { "DELETE", "/v1/sandboxes/{}/ports/{}/public", h_port_private, true },
};

/* Splits a copy of path at '/' into segs; returns the count or -1. */
static int split_path(char *buf, char **segs)
{
    int n = 0;
    char *p = buf;

    if (*p != '/')
        return -1;
    while (*p == '/') {
        *p++ = '\0';
        if (n == MAX_SEGMENTS)
            return -1;
        segs[n++] = p;
        p += strcspn(p, "/");
    }
    return n;
}

/* Does pattern match segs? Sets params[0] and [1] to the {} segments. */
static bool match(const char *pattern, char **segs, int nsegs, const char **params)
{
    int np = 0;
    char pbuf[64], *psegs[MAX_SEGMENTS];
    int n;

    snprintf(pbuf, sizeof(pbuf), "%s", pattern);
    n = split_path(pbuf, psegs);
    if (n != nsegs)
        return false;
    for (int i = 0; i < n; i++) {
        if (!strcmp(psegs[i], "{}")) {
            if (!*segs[i] || np == 2)
                return false;
            params[np++] = segs[i];
        } else if (strcmp(psegs[i], segs[i])) {
            return false;
        }
    }
    return true;
}

/* Constant-time comparison so response timing does not leak the key. */
static bool key_equal(const char *given, const char *want)
{
    size_t glen = strlen(given), wlen = strlen(want);
    unsigned char diff = glen != wlen;

    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)(want[i] ^ (i < glen ? given[i] : 0));
    return diff == 0;
}

int router_auth(const struct router *r, const char *x_api_key, const char *authorization,
                struct apierr *err)
{
    const char *given = x_api_key;

    if (!given && authorization && !strncasecmp(authorization, "Bearer ", 7))
        given = authorization + 7;
    if (!given)
        return apierr_set(err, APIERR_UNAUTHORIZED,
                          "missing API key (X-Api-Key or Authorization: Bearer)");
    if (!r->api_key || !*r->api_key || !key_equal(given, r->api_key))
        return apierr_set(err, APIERR_UNAUTHORIZED, "invalid API key");
    return 0;
}

static const struct route *find_route(const struct api_request *req, char **segs, int n,
                                      const char **params, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!match(routes[i].pattern, segs, n, params))
            continue;
        *path_known = true;
        if (!strcmp(routes[i].method, req->method))
            return &routes[i];
    }
    return NULL;
}

static int dispatch(struct route_ctx *c)
{
    const struct api_request *req = c->req;
    char buf[PATH_MAX_LEN], *segs[MAX_SEGMENTS];
    const char *params[2] = { NULL, NULL };
    const struct route *route;
    bool path_known;
    int n;

    if (!strncmp(req->path, "/v1/", 4) || !strcmp(req->path, "/v1")) {
        if (router_auth(c->r, req->x_api_key, req->authorization, &c->err))
            return -1;
    }
    if (strlen(req->path) >= sizeof(buf))
        return apierr_set(&c->err, APIERR_NOT_FOUND, "no such path");
    strcpy(buf, req->path);
    n = split_path(buf, segs);
    route = n < 0 ? NULL : find_route(req, segs, n, params, &path_known);
    c->param = params[0];
    c->param2 = params[1];
    if (!route && n >= 0 && path_known)
        return apierr_set(&c->err, APIERR_METHOD, "method %.16s not allowed on %.128s",
                          req->method, req->path);
    if (!route)
        return apierr_set(&c->err, APIERR_NOT_FOUND, "no such path: %.128s", req->path);
    if (req->body_too_large)
        return apierr_set(&c->err, APIERR_TOO_LARGE, "request body too large");
    return route->fn(c);
}

void router_handle(struct router *r, const struct api_request *req, struct api_response *resp)
{
    struct route_ctx c = { .r = r, .req = req, .resp = resp };

    resp->status = 500;
    resp->body = NULL;
    if (dispatch(&c) == 0)
        return;
    api_response_free(resp);
    api_response_error(resp, &c.err);
}
