/* sbx: command-line client of sbx-api, shaped like the LangSmith sandbox CLI.
 *   sbx [--api-url URL] [--api-key KEY] [--format json|pretty] COMMAND ...
 * Exit status: 0 success, 1 the API (or the network) said no, 2 usage;
 * exec and console exit with the command's status. */
#include "cli_cmds.h"
#include "cli_exec.h"
#include "cli_format.h"
#include "cli_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    OPT_URL = 256, OPT_KEY, OPT_FORMAT, OPT_ENV,
    OPT_SNAPSHOT, OPT_VCPUS, OPT_MEMORY, OPT_DISK, OPT_IDLE_TTL, OPT_DELETE_AFTER, OPT_IMAGE,
    OPT_CWD, OPT_USER, OPT_TIMEOUT, OPT_TTY, OPT_STDIN, OPT_SHELL, OPT_REMOTE_PORT,
    OPT_LOCAL_PORT, OPT_STDIO, OPT_IDENTITY, OPT_SSH_DIR, OPT_PORT, OPT_EXPIRES, OPT_SOURCE,
    OPT_CAPACITY, OPT_WAIT, OPT_BOX, OPT_DOCKER_IMAGE, OPT_PUBLIC_PORT, OPT_REGISTRY_USER,
    OPT_REGISTRY_PASSWORD_STDIN, OPT_START_COMMAND,
    OPT_COUNT,
};
#define BIT(o) (1ull << ((o) - OPT_ENV))

/* Positional arguments a command takes after its name. */
enum { ARGS_NONE, ARGS_ONE, ARGS_TWO, ARGS_CMD };

struct cli {
    struct cli_conn conn;
    bool pretty;
    char **args;                    /* positional arguments, nargs of them */
    int nargs;
    char **envs;                    /* --env K=V values, nenvs of them */
    int nenvs;
    char **pubs;                    /* --public-port P values, npubs of them */
    int npubs;
    const char *opt[OPT_COUNT];     /* command options' values by id */
    unsigned long long seen;        /* BIT() of command options given */
};

struct command {
    const char *name;               /* "create", "snapshot list", ... */
    int args;                       /* ARGS_* */
    unsigned long long allowed;     /* BIT() of options it takes */
    int (*run)(struct cli *cli, char **args, int nargs);
};

static const char usage[] =
    "usage: sbx [--api-url URL] [--api-key KEY] [--format json|pretty] COMMAND\n"
    "  create NAME --snapshot ID|NAME [--vcpus N] [--memory SIZE] [--disk SIZE]\n"
    "              [--idle-ttl SECONDS] [--delete-after-stop SECONDS] [--wait]\n"
    "              [--public-port P]...\n"
    "  list | get NAME | start NAME [--wait] | stop NAME | delete NAME | wait NAME\n"
    "  update NAME [--vcpus N] [--memory SIZE] [--idle-ttl S] [--delete-after-stop S]\n"
    "  exec NAME [--cwd D] [--env K=V]... [--user U] [--timeout S] [--tty] [--stdin]\n"
    "       -- CMD ARGS...\n"
    "  console NAME [--shell /bin/bash]\n"
    "  tunnel NAME --remote-port P [--local-port L | --stdio]\n"
    "  cp LOCAL NAME:/path | cp NAME:/path LOCAL   (- for stdin/stdout)\n"
    "  ssh-setup NAME [--identity KEY.pub] [--ssh-dir DIR]\n"
    "  service-url NAME --port P [--expires SECONDS]   (a public port's URL has no token)\n"
    "  port public NAME PORT | port private NAME PORT   (served without a token or not)\n"
    "  snapshot list | snapshot get ID | snapshot delete ID | snapshot wait ID\n"
    "  snapshot build NAME --source PATH|--docker-image REF [--capacity SIZE] [--wait]\n"
    "                 [--registry-user USER [--registry-password-stdin]]\n"
    "                 [--start-command CMD]   (run with sh -c at each boot, in place of the\n"
    "                 image's Entrypoint/Cmd; '' for none)\n"
    "  snapshot capture NAME --box SANDBOX [--wait]\n"
    "  snapshot register NAME --image PATH   (an image already in sbx-api's snapshot dir)\n"
    "SIZE: 512mb, 1gb, 2gib; bare numbers are MiB for --memory, GiB for --disk, --capacity.\n"
    "Environment: SBX_API_URL (default http://127.0.0.1:8080), SBX_API_KEY (else the file\n"
    "~/.config/sbx/api-key), SBX_REGISTRY_PASSWORD (the registry password of --registry-user\n"
    "when --registry-password-stdin is not given).\n";

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "sbx: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* Prints the API's typed error; returns the exit status. */
static int api_error(const struct cli_reply *r)
{
    json_t *e = json_object_get(r->json, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    if (type && msg)
        fprintf(stderr, "sbx: %s: %s\n", type, msg);
    else
        fprintf(stderr, "sbx: sbx-api answered HTTP %ld\n", r->status);
    return 1;
}

/* Sends the request; on success hands the reply to show (may be NULL) and,
 * when keep is not NULL, a reference to the reply in *keep. */
static int call_keep(struct cli *cli, const char *method, const char *path, json_t *body,
                     void (*show)(struct cli *cli, json_t *json), json_t **keep)
{
    struct cli_reply r;
    char err[512];
    int rc = 0;

    if (cli_request(&cli->conn, method, path, body, &r, err, sizeof(err))) {
        fprintf(stderr, "sbx: %s\n", err);
        return 1;
    }
    if (r.status >= 400)
        rc = api_error(&r);
    else if (show)
        show(cli, r.json);
    if (rc == 0 && keep)
        *keep = json_incref(r.json);
    cli_reply_free(&r);
    return rc;
}

static int call(struct cli *cli, const char *method, const char *path, json_t *body,
                void (*show)(struct cli *cli, json_t *json))
{
    return call_keep(cli, method, path, body, show, NULL);
}

static void show_object(struct cli *cli, json_t *json)
{
    if (cli->pretty)
        cli_print_object(json);
    else
        cli_print_json(json);
}

static void show_sandboxes(struct cli *cli, json_t *json)
{
    json_t *arr = json_object_get(json, "sandboxes");

    if (cli->pretty)
        cli_print_sandbox_table(arr);
    else
        cli_print_json(arr);
}

static void show_snapshots(struct cli *cli, json_t *json)
{
    json_t *arr = json_object_get(json, "snapshots");

    if (cli->pretty)
        cli_print_snapshot_table(arr);
    else
        cli_print_json(arr);
}

static int show_deleted(struct cli *cli, const char *kind, const char *name)
{
    json_t *obj;

    if (cli->pretty) {
        printf("deleted %s %s\n", kind, name);
        return 0;
    }
    obj = json_pack("{s:s,s:b}", "name", name, "deleted", 1);
    cli_print_json(obj);
    json_decref(obj);
    return 0;
}

static int whole_number(const char *text, long long lo, long long hi, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(text, &end, 10);
    if (errno || end == text || *end || *out < lo || *out > hi)
        return usage_error("'%s' is not a whole number in range", text);
    return 0;
}

static int set_int(json_t *body, const char *key, const char *text, int64_t unit_mib)
{
    long long v;

    if (unit_mib) {
        int64_t size;
        if (cli_parse_size(text, unit_mib, &size))
            return usage_error("bad size '%s'", text);
        v = size;
    } else if (whole_number(text, INT64_MIN, INT64_MAX, &v)) {
        return 2;
    }
    json_object_set_new(body, key, json_integer(v));
    return 0;
}

/* The resource options shared by create and update, into body. */
static int resource_fields(struct cli *cli, json_t *body)
{
    static const struct { int opt; const char *key; int64_t unit; } map[] = {
        { OPT_VCPUS, "vcpus", 0 }, { OPT_MEMORY, "memory_mib", 1 },
        { OPT_DISK, "disk_gib", 1024 }, { OPT_IDLE_TTL, "idle_ttl_seconds", 0 },
        { OPT_DELETE_AFTER, "delete_after_stop_seconds", 0 },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!(cli->seen & BIT(map[i].opt)))
            continue;
        if (set_int(body, map[i].key, cli->opt[map[i].opt], map[i].unit))
            return 2;
    }
    return 0;
}

/* ---- waiting ---- */

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long wait_limit_ms(struct cli *cli)
{
    long long s = 600;

    if (cli->opt[OPT_TIMEOUT] && whole_number(cli->opt[OPT_TIMEOUT], 0, 86400 * 7, &s))
        return -1;
    return (long)s * 1000L;
}

/* Polls GET path until "status" is ready_status (0) or one of bad (1). */
static int poll_status(struct cli *cli, const char *path, const char *ready_status,
                       const char *const *bad, json_t **last)
{
    long limit = wait_limit_ms(cli), deadline = now_ms() + limit;

    if (limit < 0)
        return 2;
    for (;;) {
        json_t *j = NULL;
        int rc = call_keep(cli, "GET", path, NULL, NULL, &j);
        const char *st = json_string_value(json_object_get(j, "status"));

        if (rc) {
            json_decref(j);
            return rc;
        }
        if (st && !strcmp(st, ready_status)) {
            *last = j;
            return 0;
        }
        for (int i = 0; st && bad[i]; i++) {
            if (!strcmp(st, bad[i])) {
                const char *m = json_string_value(json_object_get(j, "status_message"));
                fprintf(stderr, "sbx: it is %s%s%s\n", st, m ? ": " : "", m ? m : "");
                *last = j;
                return 1;
            }
        }
        json_decref(j);
        if (now_ms() >= deadline) {
            fprintf(stderr, "sbx: still not %s after %ld s\n", ready_status, limit / 1000);
            return 1;
        }
        usleep(500 * 1000);
    }
}

/* The guest agent answers: a one-shot `true`, retried while it times out.
 * A server without exec (501) counts as ready. */
static int wait_agent(struct cli *cli, const char *name)
{
    long deadline = now_ms() + wait_limit_ms(cli);
    json_t *body = json_pack("{s:[s],s:i}", "command", "true", "timeout_seconds", 10);
    char path[512];
    int rc = 1;

    if (cli_path(path, sizeof(path), "/v1/sandboxes/", name, "/exec"))
        goto out;
    for (;;) {
        struct cli_reply r;
        char err[512];

        if (cli_request(&cli->conn, "POST", path, body, &r, err, sizeof(err))) {
            fprintf(stderr, "sbx: %s\n", err);
            goto out;
        }
        long st = r.status;
        if (st < 300 || st == 501) {
            cli_reply_free(&r);
            rc = 0;
            goto out;
        }
        if ((st != 504 && st != 502 && st != 503) || now_ms() >= deadline) {
            rc = api_error(&r);
            cli_reply_free(&r);
            goto out;
        }
        cli_reply_free(&r);
        usleep(500 * 1000);
    }
out:
    json_decref(body);
    return rc;
}

static int wait_sandbox(struct cli *cli, const char *name)
{
    static const char *const bad[] = { "failed", "stopped", NULL };
    json_t *last = NULL;
    char path[512];
    int rc;

    if (cli_path(path, sizeof(path), "/v1/sandboxes/", name, ""))
        return usage_error("bad name '%s'", name);
    rc = poll_status(cli, path, "running", bad, &last);
    if (rc == 0)
        rc = wait_agent(cli, name);
    if (rc == 0) {
        json_decref(last);
        last = NULL;
        rc = call_keep(cli, "GET", path, NULL, NULL, &last);
    }
    if (rc == 0)
        show_object(cli, last);
    json_decref(last);
    return rc;
}

static int wait_snapshot(struct cli *cli, const char *id)
{
    static const char *const bad[] = { "failed", NULL };
    json_t *last = NULL;
    char path[512];
    int rc;

    if (cli_path(path, sizeof(path), "/v1/snapshots/", id, ""))
        return usage_error("bad id '%s'", id);
    rc = poll_status(cli, path, "ready", bad, &last);
    if (rc == 0)
        show_object(cli, last);
    json_decref(last);
    return rc;
}

/* ---- control plane ---- */

static int port_number(const char *text, long long *out)
{
    return whole_number(text, 1, 65535, out);
}

/* --public-port P... as public_ports of body. */
static int public_ports_field(struct cli *cli, json_t *body)
{
    json_t *arr;

    if (!cli->npubs)
        return 0;
    arr = json_array();
    json_object_set_new(body, "public_ports", arr);
    for (int i = 0; i < cli->npubs; i++) {
        long long p;
        if (port_number(cli->pubs[i], &p))
            return 2;
        json_array_append_new(arr, json_integer(p));
    }
    return 0;
}

static int run_create(struct cli *cli, char **args, int nargs)
{
    json_t *body = json_pack("{s:s}", "name", args[0]), *made = NULL;
    int rc;

    (void)nargs;
    if (!cli->opt[OPT_SNAPSHOT]) {
        json_decref(body);
        return usage_error("%s needs --snapshot", "create");
    }
    json_object_set_new(body, "snapshot", json_string(cli->opt[OPT_SNAPSHOT]));
    rc = resource_fields(cli, body);
    if (rc == 0)
        rc = public_ports_field(cli, body);
    if (rc == 0)
        rc = call_keep(cli, "POST", "/v1/sandboxes", body,
                       cli->opt[OPT_WAIT] ? NULL : show_object, &made);
    if (rc == 0 && cli->opt[OPT_WAIT])
        rc = wait_sandbox(cli, args[0]);
    json_decref(made);
    json_decref(body);
    return rc;
}

static int run_update(struct cli *cli, char **args, int nargs)
{
    json_t *body = json_object();
    char path[512];
    int rc = resource_fields(cli, body);

    (void)nargs;
    if (rc == 0 && cli_path(path, sizeof(path), "/v1/sandboxes/", args[0], ""))
        rc = usage_error("bad name '%s'", args[0]);
    if (rc == 0)
        rc = call(cli, "PATCH", path, body, show_object);
    json_decref(body);
    return rc;
}

/* A request on /v1/<kind>/<name><suffix>, body may be NULL. */
static int on_named(struct cli *cli, const char *method, const char *prefix, const char *name,
                    const char *suffix, json_t *body, void (*show)(struct cli *, json_t *))
{
    char path[512];

    if (cli_path(path, sizeof(path), prefix, name, suffix))
        return usage_error("bad name '%s'", name);
    return call(cli, method, path, body, show);
}

static int run_list(struct cli *cli, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    return call(cli, "GET", "/v1/sandboxes", NULL, show_sandboxes);
}

static int run_get(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return on_named(cli, "GET", "/v1/sandboxes/", args[0], "", NULL, show_object);
}

static int run_start(struct cli *cli, char **args, int nargs)
{
    bool wait = cli->opt[OPT_WAIT];
    int rc;

    (void)nargs;
    rc = on_named(cli, "POST", "/v1/sandboxes/", args[0], "/start", NULL,
                  wait ? NULL : show_object);
    return rc == 0 && wait ? wait_sandbox(cli, args[0]) : rc;
}

static int run_stop(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return on_named(cli, "POST", "/v1/sandboxes/", args[0], "/stop", NULL, show_object);
}

static int run_delete(struct cli *cli, char **args, int nargs)
{
    int rc = on_named(cli, "DELETE", "/v1/sandboxes/", args[0], "", NULL, NULL);

    (void)nargs;
    return rc ? rc : show_deleted(cli, "sandbox", args[0]);
}

static int run_wait(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return wait_sandbox(cli, args[0]);
}

static int run_snapshot_list(struct cli *cli, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    return call(cli, "GET", "/v1/snapshots", NULL, show_snapshots);
}

static int run_snapshot_get(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return on_named(cli, "GET", "/v1/snapshots/", args[0], "", NULL, show_object);
}

static int run_snapshot_delete(struct cli *cli, char **args, int nargs)
{
    int rc = on_named(cli, "DELETE", "/v1/snapshots/", args[0], "", NULL, NULL);

    (void)nargs;
    return rc ? rc : show_deleted(cli, "snapshot", args[0]);
}

static int run_snapshot_wait(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return wait_snapshot(cli, args[0]);
}

static int run_snapshot_register(struct cli *cli, char **args, int nargs)
{
    json_t *body;
    int rc;

    (void)nargs;
    if (!cli->opt[OPT_IMAGE])
        return usage_error("%s needs --image", "snapshot register");
    body = json_pack("{s:s,s:s}", "name", args[0], "image_path", cli->opt[OPT_IMAGE]);
    rc = call(cli, "POST", "/v1/snapshots", body, show_object);
    json_decref(body);
    return rc;
}

/* POSTs body to path; with --wait, waits for the snapshot it answered. */
static int make_snapshot(struct cli *cli, const char *path, json_t *body)
{
    bool wait = cli->opt[OPT_WAIT];
    json_t *made = NULL;
    const char *id;
    int rc = call_keep(cli, "POST", path, body, wait ? NULL : show_object, &made);

    json_decref(body);
    if (rc || !wait) {
        json_decref(made);
        return rc;
    }
    id = json_string_value(json_object_get(made, "id"));
    if (!id)
        id = json_string_value(json_object_get(made, "name"));
    rc = id ? wait_snapshot(cli, id) : 1;
    json_decref(made);
    return rc;
}

#define REGISTRY_PASSWORD_MAX 8192

/* The registry password from stdin (trailing newlines dropped), malloc'd;
 * NULL with a message when there is none. */
static char *password_from_stdin(void)
{
    char *buf = malloc(REGISTRY_PASSWORD_MAX + 2);
    size_t n = 0;

    if (!buf)
        return NULL;
    while (n < REGISTRY_PASSWORD_MAX + 1) {
        ssize_t r = read(STDIN_FILENO, buf + n, REGISTRY_PASSWORD_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n && n <= REGISTRY_PASSWORD_MAX && strlen(buf) == n)
        return buf;
    explicit_bzero(buf, REGISTRY_PASSWORD_MAX + 2);
    free(buf);
    fprintf(stderr, "sbx: --registry-password-stdin: stdin holds no password of 1 to %d "
            "bytes\n", REGISTRY_PASSWORD_MAX);
    return NULL;
}

/* registry_auth {username, password} into body for --registry-user: the
 * password from stdin or SBX_REGISTRY_PASSWORD, never from an argument.
 * Returns 0, or the exit status. */
static int set_registry_auth(struct cli *cli, json_t *body)
{
    const char *env = getenv("SBX_REGISTRY_PASSWORD");
    char *pass = NULL;

    if (!cli->opt[OPT_REGISTRY_USER])
        return cli->opt[OPT_REGISTRY_PASSWORD_STDIN]
                   ? usage_error("%s needs --registry-user", "--registry-password-stdin") : 0;
    if (!cli->opt[OPT_DOCKER_IMAGE])
        return usage_error("%s goes with --docker-image", "--registry-user");
    if (cli->opt[OPT_REGISTRY_PASSWORD_STDIN]) {
        if (!(pass = password_from_stdin()))
            return 2;
    } else if (!env || !*env) {
        return usage_error("%s needs the password on stdin (--registry-password-stdin) or in "
                           "SBX_REGISTRY_PASSWORD", "--registry-user");
    }
    json_object_set_new(body, "registry_auth",
                        json_pack("{s:s,s:s}", "username", cli->opt[OPT_REGISTRY_USER],
                                  "password", pass ? pass : env));
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        free(pass);
    }
    return 0;
}

static int run_snapshot_build(struct cli *cli, char **args, int nargs)
{
    const char *src = cli->opt[OPT_SOURCE], *image = cli->opt[OPT_DOCKER_IMAGE];
    json_t *body, *password;
    char *abs;
    int rc;

    (void)nargs;
    if (!src == !image)
        return usage_error("%s needs --source PATH (a rootfs tarball, folder, ext4 image or "
                           "OCI image layout) or --docker-image REF", "snapshot build");
    /* sbx-api reads the source itself: make a local relative path absolute */
    abs = src ? realpath(src, NULL) : NULL;
    body = json_pack("{s:s,s:s}", "name", args[0], src ? "source" : "docker_image",
                     src ? (abs ? abs : src) : image);
    free(abs);
    if (cli->opt[OPT_START_COMMAND])
        json_object_set_new(body, "start_command",
                            cli->opt[OPT_START_COMMAND][0]
                                ? json_pack("[s,s,s]", "sh", "-c", cli->opt[OPT_START_COMMAND])
                                : json_array());
    if ((cli->opt[OPT_CAPACITY] && set_int(body, "capacity_gib", cli->opt[OPT_CAPACITY], 1024)) ||
        set_registry_auth(cli, body)) {
        json_decref(body);
        return 2;
    }
    /* kept past make_snapshot, to wipe it */
    password = json_incref(json_object_get(json_object_get(body, "registry_auth"), "password"));
    rc = make_snapshot(cli, "/v1/snapshots", body);
    if (password)
        explicit_bzero((char *)json_string_value(password), json_string_length(password));
    json_decref(password);
    return rc;
}

static int run_snapshot_capture(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    if (!cli->opt[OPT_BOX])
        return usage_error("%s needs --box SANDBOX", "snapshot capture");
    return make_snapshot(cli, "/v1/snapshots/capture",
                         json_pack("{s:s,s:s}", "name", args[0], "sandbox", cli->opt[OPT_BOX]));
}

/* Is port among the public_ports of sandbox name? 0 no, 1 yes, else the exit status. */
static int is_public(struct cli *cli, const char *name, long long port, bool *public)
{
    json_t *sb = NULL, *v;
    char path[512];
    size_t i;
    int rc;

    *public = false;
    if (cli_path(path, sizeof(path), "/v1/sandboxes/", name, ""))
        return usage_error("bad name '%s'", name);
    rc = call_keep(cli, "GET", path, NULL, NULL, &sb);
    json_array_foreach(json_object_get(sb, "public_ports"), i, v)
        *public |= json_integer_value(v) == port;
    json_decref(sb);
    return rc;
}

/* A public port needs no token: only its URL is shown. */
static int run_service_url(struct cli *cli, char **args, int nargs)
{
    json_t *body = json_object(), *got = NULL, *out;
    char path[512];
    bool public = false;
    long long port;
    int rc;

    (void)nargs;
    if (!cli->opt[OPT_PORT]) {
        json_decref(body);
        return usage_error("%s needs --port P", "service-url");
    }
    rc = port_number(cli->opt[OPT_PORT], &port);
    if (rc == 0) {
        json_object_set_new(body, "port", json_integer(port));
        if (cli->opt[OPT_EXPIRES])
            rc = set_int(body, "expires_in_seconds", cli->opt[OPT_EXPIRES], 0);
    }
    if (rc == 0 && cli_path(path, sizeof(path), "/v1/sandboxes/", args[0], "/service-url"))
        rc = usage_error("bad name '%s'", args[0]);
    if (rc == 0)
        rc = is_public(cli, args[0], port, &public);
    if (rc == 0)
        rc = call_keep(cli, "POST", path, body, public ? NULL : show_object, &got);
    if (rc == 0 && public) {
        out = json_pack("{s:O,s:b}", "url", json_object_get(got, "url"), "public", 1);
        show_object(cli, out);
        json_decref(out);
    }
    json_decref(got);
    json_decref(body);
    return rc;
}

/* sbx port public|private NAME PORT */
static int set_port(struct cli *cli, char **args, bool public)
{
    char suffix[64], path[512];
    long long port;
    json_t *out;
    int rc;

    if (port_number(args[1], &port))
        return 2;
    snprintf(suffix, sizeof(suffix), "/ports/%lld/public", port);
    if (cli_path(path, sizeof(path), "/v1/sandboxes/", args[0], suffix))
        return usage_error("bad name '%s'", args[0]);
    rc = call(cli, public ? "PUT" : "DELETE", path, NULL, NULL);
    if (rc)
        return rc;
    if (cli->pretty) {
        printf("port %lld of %s is %s\n", port, args[0], public ? "public" : "private");
        return 0;
    }
    out = json_pack("{s:s,s:I,s:b}", "name", args[0], "port", (json_int_t)port, "public",
                    public);
    cli_print_json(out);
    json_decref(out);
    return 0;
}

static int run_port_public(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return set_port(cli, args, true);
}

static int run_port_private(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return set_port(cli, args, false);
}

/* ---- data plane ---- */

static int run_exec(struct cli *cli, char **args, int nargs)
{
    /* no time limit unless asked: the user is there to stop it */
    struct cli_exec e = { .name = args[0], .timeout_seconds = 0, .tty = cli->opt[OPT_TTY] };
    long long t;
    int rc;

    e.pass_stdin = cli->opt[OPT_STDIN] || e.tty || !isatty(STDIN_FILENO);
    e.cwd = cli->opt[OPT_CWD];
    e.user = cli->opt[OPT_USER];
    if (cli->opt[OPT_TIMEOUT]) {
        if (whole_number(cli->opt[OPT_TIMEOUT], 0, 86400 * 365, &t))
            return 2;
        e.timeout_seconds = (long)t;
    }
    e.command = json_array();
    for (int i = 1; i < nargs; i++)
        json_array_append_new(e.command, json_string(args[i]));
    if (cli->nenvs)
        e.env = json_object();
    for (int i = 0; i < cli->nenvs; i++) {
        char *eq = strchr(cli->envs[i], '=');
        if (!eq || eq == cli->envs[i]) {
            json_decref(e.command);
            json_decref(e.env);
            return usage_error("--env wants K=V, not '%s'", cli->envs[i]);
        }
        *eq = '\0';
        json_object_set_new(e.env, cli->envs[i], json_string(eq + 1));
        *eq = '=';
    }
    rc = cli_exec_run(&cli->conn, &e);
    json_decref(e.command);
    json_decref(e.env);
    return rc;
}

static int run_console(struct cli *cli, char **args, int nargs)
{
    const char *term = getenv("TERM");
    struct cli_exec e = { .name = args[0], .timeout_seconds = 0, .tty = true,
                          .pass_stdin = true, .kill_on_disconnect = true };
    int rc;

    (void)nargs;
    /* An interactive shell, not a login one (as `docker exec -it`): a login
     * shell's /etc/profile would reset the PATH an image's Env sets. */
    if (cli->opt[OPT_SHELL])
        e.command = json_pack("[s]", cli->opt[OPT_SHELL]);
    else    /* bash when the image has it */
        e.command = json_pack("[s,s,s]", "/bin/sh", "-c",
                              "if [ -x /bin/bash ]; then exec /bin/bash; fi; exec /bin/sh");
    e.env = json_pack("{s:s}", "TERM", term && *term ? term : "xterm-256color");
    rc = cli_exec_run(&cli->conn, &e);
    json_decref(e.command);
    json_decref(e.env);
    return rc;
}

static int port_opt(struct cli *cli, int opt, long long *out)
{
    return whole_number(cli->opt[opt], opt == OPT_LOCAL_PORT ? 0 : 1, 65535, out);
}

static int run_tunnel(struct cli *cli, char **args, int nargs)
{
    long long remote, local;

    (void)nargs;
    if (!cli->opt[OPT_REMOTE_PORT])
        return usage_error("%s needs --remote-port P", "tunnel");
    if (cli->opt[OPT_STDIO] && cli->opt[OPT_LOCAL_PORT])
        return usage_error("%s takes --local-port or --stdio, not both", "tunnel");
    if (port_opt(cli, OPT_REMOTE_PORT, &remote))
        return 2;
    local = remote;
    if (cli->opt[OPT_LOCAL_PORT] && port_opt(cli, OPT_LOCAL_PORT, &local))
        return 2;
    if (cli->opt[OPT_STDIO])
        return cli_tunnel_stdio(&cli->conn, args[0], (int)remote);
    return cli_tunnel_listen(&cli->conn, args[0], (int)remote, (int)local, cli->pretty);
}

static int run_cp(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return cli_cp(&cli->conn, args[0], args[1], cli->pretty);
}

static int run_ssh_setup(struct cli *cli, char **args, int nargs)
{
    (void)nargs;
    return cli_ssh_setup(&cli->conn, args[0], cli->opt[OPT_IDENTITY], cli->opt[OPT_SSH_DIR],
                         cli->pretty);
}

#define RESOURCES (BIT(OPT_VCPUS) | BIT(OPT_MEMORY) | BIT(OPT_IDLE_TTL) | BIT(OPT_DELETE_AFTER))

static const struct command commands[] = {
    { "create", ARGS_ONE, RESOURCES | BIT(OPT_SNAPSHOT) | BIT(OPT_DISK) | BIT(OPT_WAIT) |
      BIT(OPT_TIMEOUT) | BIT(OPT_PUBLIC_PORT), run_create },
    { "list", ARGS_NONE, 0, run_list },
    { "get", ARGS_ONE, 0, run_get },
    { "update", ARGS_ONE, RESOURCES, run_update },
    { "start", ARGS_ONE, BIT(OPT_WAIT) | BIT(OPT_TIMEOUT), run_start },
    { "stop", ARGS_ONE, 0, run_stop },
    { "delete", ARGS_ONE, 0, run_delete },
    { "wait", ARGS_ONE, BIT(OPT_TIMEOUT), run_wait },
    { "exec", ARGS_CMD, BIT(OPT_CWD) | BIT(OPT_ENV) | BIT(OPT_USER) | BIT(OPT_TIMEOUT) |
      BIT(OPT_TTY) | BIT(OPT_STDIN), run_exec },
    { "console", ARGS_ONE, BIT(OPT_SHELL), run_console },
    { "tunnel", ARGS_ONE, BIT(OPT_REMOTE_PORT) | BIT(OPT_LOCAL_PORT) | BIT(OPT_STDIO),
      run_tunnel },
    { "cp", ARGS_TWO, 0, run_cp },
    { "ssh-setup", ARGS_ONE, BIT(OPT_IDENTITY) | BIT(OPT_SSH_DIR), run_ssh_setup },
    { "service-url", ARGS_ONE, BIT(OPT_PORT) | BIT(OPT_EXPIRES), run_service_url },
    { "port public", ARGS_TWO, 0, run_port_public },
    { "port private", ARGS_TWO, 0, run_port_private },
    { "snapshot list", ARGS_NONE, 0, run_snapshot_list },
    { "snapshot get", ARGS_ONE, 0, run_snapshot_get },
    { "snapshot delete", ARGS_ONE, 0, run_snapshot_delete },
    { "snapshot wait", ARGS_ONE, BIT(OPT_TIMEOUT), run_snapshot_wait },
    { "snapshot register", ARGS_ONE, BIT(OPT_IMAGE), run_snapshot_register },
    { "snapshot build", ARGS_ONE, BIT(OPT_SOURCE) | BIT(OPT_DOCKER_IMAGE) | BIT(OPT_CAPACITY) |
      BIT(OPT_WAIT) | BIT(OPT_TIMEOUT) | BIT(OPT_REGISTRY_USER) |
      BIT(OPT_REGISTRY_PASSWORD_STDIN) | BIT(OPT_START_COMMAND), run_snapshot_build },
    { "snapshot capture", ARGS_ONE, BIT(OPT_BOX) | BIT(OPT_WAIT) | BIT(OPT_TIMEOUT),
      run_snapshot_capture },
};

static const struct option long_opts[] = {
    { "api-url", required_argument, NULL, OPT_URL },
    { "api-key", required_argument, NULL, OPT_KEY },
    { "format", required_argument, NULL, OPT_FORMAT },
    { "snapshot", required_argument, NULL, OPT_SNAPSHOT },
    { "snapshot-id", required_argument, NULL, OPT_SNAPSHOT },
    { "vcpus", required_argument, NULL, OPT_VCPUS },
    { "memory", required_argument, NULL, OPT_MEMORY },
    { "disk", required_argument, NULL, OPT_DISK },
    { "rootfs-capacity", required_argument, NULL, OPT_DISK },
    { "idle-ttl", required_argument, NULL, OPT_IDLE_TTL },
    { "delete-after-stop", required_argument, NULL, OPT_DELETE_AFTER },
    { "image", required_argument, NULL, OPT_IMAGE },
    { "cwd", required_argument, NULL, OPT_CWD },
    { "env", required_argument, NULL, OPT_ENV },
    { "user", required_argument, NULL, OPT_USER },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "tty", no_argument, NULL, OPT_TTY },
    { "stdin", no_argument, NULL, OPT_STDIN },
    { "shell", required_argument, NULL, OPT_SHELL },
    { "remote-port", required_argument, NULL, OPT_REMOTE_PORT },
    { "local-port", required_argument, NULL, OPT_LOCAL_PORT },
    { "stdio", no_argument, NULL, OPT_STDIO },
    { "identity", required_argument, NULL, OPT_IDENTITY },
    { "ssh-dir", required_argument, NULL, OPT_SSH_DIR },
    { "port", required_argument, NULL, OPT_PORT },
    { "expires", required_argument, NULL, OPT_EXPIRES },
    { "source", required_argument, NULL, OPT_SOURCE },
    { "docker-image", required_argument, NULL, OPT_DOCKER_IMAGE },
    { "capacity", required_argument, NULL, OPT_CAPACITY },
    { "wait", no_argument, NULL, OPT_WAIT },
    { "box", required_argument, NULL, OPT_BOX },
    { "public-port", required_argument, NULL, OPT_PUBLIC_PORT },
    { "registry-user", required_argument, NULL, OPT_REGISTRY_USER },
    { "registry-password-stdin", no_argument, NULL, OPT_REGISTRY_PASSWORD_STDIN },
    { "start-command", required_argument, NULL, OPT_START_COMMAND },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
    int c;

    cli->envs = calloc((size_t)argc, sizeof(char *));
    cli->pubs = calloc((size_t)argc, sizeof(char *));
    if (!cli->envs || !cli->pubs)
        return 2;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        } else if (c == OPT_URL) {
            cli->conn.url = optarg;
        } else if (c == OPT_KEY) {
            cli->conn.key = optarg;
        } else if (c == OPT_FORMAT) {
            if (strcmp(optarg, "json") && strcmp(optarg, "pretty"))
                return usage_error("--format is json or pretty, not '%s'", optarg);
            cli->pretty = !strcmp(optarg, "pretty");
        } else if (c >= OPT_ENV && c < OPT_COUNT) {
            if (c == OPT_ENV)
                cli->envs[cli->nenvs++] = optarg;
            if (c == OPT_PUBLIC_PORT)
                cli->pubs[cli->npubs++] = optarg;
            cli->opt[c] = optarg ? optarg : "1";
            cli->seen |= BIT(c);
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    /* getopt moved every positional argument (and all after "--") here */
    cli->args = argv + optind;
    cli->nargs = argc - optind;
    return 0;
}

static const struct command *find_command(struct cli *cli, int *first_arg)
{
    char name[64];

    if (cli->nargs == 0)
        return NULL;
    *first_arg = 1;
    snprintf(name, sizeof(name), "%.40s", cli->args[0]);
    if ((!strcmp(cli->args[0], "snapshot") || !strcmp(cli->args[0], "port")) &&
        cli->nargs > 1) {
        snprintf(name, sizeof(name), "%s %.40s", cli->args[0], cli->args[1]);
        *first_arg = 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int dispatch(struct cli *cli)
{
    static const char *const arg_errors[] = {
        [ARGS_NONE] = "%s takes no arguments", [ARGS_ONE] = "%s needs one NAME or ID",
        [ARGS_TWO] = "%s needs two arguments (see the usage)",
        [ARGS_CMD] = "%s needs NAME -- CMD ARGS...",
    };
    static const int want[] = { [ARGS_NONE] = 0, [ARGS_ONE] = 1, [ARGS_TWO] = 2 };
    const struct command *cmd;
    int first = 0, n;

    cmd = find_command(cli, &first);
    if (!cmd)
        return usage_error("unknown command '%s'", cli->nargs ? cli->args[0] : "");
    n = cli->nargs - first;
    if (cmd->args == ARGS_CMD ? n < 2 : n != want[cmd->args])
        return usage_error(arg_errors[cmd->args], cmd->name);
    if (cli->seen & ~cmd->allowed)
        return usage_error("an option given does not apply to %s", cmd->name);
    return cmd->run(cli, cli->args + first, n);
}

int main(int argc, char **argv)
{
    struct cli cli = { .conn = { .url = getenv("SBX_API_URL"), .key = getenv("SBX_API_KEY") } };
    char *file_key = NULL;
    int rc = parse_args(argc, argv, &cli);

    if (rc)
        return rc == 1 ? 0 : rc;
    if (!cli.conn.url || !*cli.conn.url)
        cli.conn.url = "http://127.0.0.1:8080";
    if (!cli.conn.key || !*cli.conn.key)
        cli.conn.key = file_key = cli_key_from_file();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = dispatch(&cli);
    curl_global_cleanup();
    free(file_key);
    free(cli.envs);
    free(cli.pubs);
    return rc;
}
