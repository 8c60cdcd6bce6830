/* sbx: command-line client of sbx-api, shaped like the LangSmith sandbox CLI.
 *   sbx [--api-url URL] [--api-key KEY] [--format json|pretty] COMMAND ...
 * Exit status: 0 success, 1 the API (or the network) said no, 2 usage. */
#include "cli_format.h"
#include "cli_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_URL = 256, OPT_KEY, OPT_FORMAT, OPT_SNAPSHOT, OPT_VCPUS, OPT_MEMORY, OPT_DISK,
    OPT_IDLE_TTL, OPT_DELETE_AFTER, OPT_IMAGE, OPT_COUNT,
};
#define BIT(o) (1u << ((o) - OPT_SNAPSHOT))

struct cli {
    struct cli_conn conn;
    bool pretty;
    const char *args[3];
    int nargs;
    const char *opt[OPT_COUNT];     /* command options' values by id */
    unsigned seen;                  /* BIT() of command options given */
};

struct command {
    const char *name;               /* "create", "snapshot list", ... */
    int nargs;                      /* positional arguments after the name */
    unsigned allowed;               /* BIT() of options it takes */
    int (*run)(struct cli *cli, const char *arg);
};

static const char usage[] =
    "usage: sbx [--api-url URL] [--api-key KEY] [--format json|pretty] COMMAND\n"
    "  create NAME --snapshot ID|NAME [--vcpus N] [--memory SIZE] [--disk SIZE]\n"
    "              [--idle-ttl SECONDS] [--delete-after-stop SECONDS]\n"
    "  list | get NAME | start NAME | stop NAME | delete NAME\n"
    "  update NAME [--vcpus N] [--memory SIZE] [--idle-ttl S] [--delete-after-stop S]\n"
    "  snapshot list | snapshot get ID | snapshot delete ID\n"
    "  snapshot register NAME --image PATH   (an image already in sbx-api's snapshot dir)\n"
    "SIZE: 512mb, 1gb, 2gib; bare numbers are MiB for --memory, GiB for --disk.\n"
    "Environment: SBX_API_URL (default http://127.0.0.1:8080), SBX_API_KEY.\n";

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

/* Sends the request; on success hands the reply to show (may be NULL). */
static int call(struct cli *cli, const char *method, const char *path, json_t *body,
                void (*show)(struct cli *cli, json_t *json))
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
    cli_reply_free(&r);
    return rc;
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

static int set_int(json_t *body, const char *key, const char *text, int64_t unit_mib)
{
    int64_t v;
    char *end;

    if (unit_mib) {
        if (cli_parse_size(text, unit_mib, &v))
            return usage_error("bad size '%s'", text);
    } else {
        errno = 0;
        v = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return usage_error("'%s' is not a whole number", text);
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

static int run_create(struct cli *cli, const char *name)
{
    json_t *body = json_pack("{s:s}", "name", name);
    int rc;

    if (!cli->opt[OPT_SNAPSHOT]) {
        json_decref(body);
        return usage_error("%s needs --snapshot", "create");
    }
    json_object_set_new(body, "snapshot", json_string(cli->opt[OPT_SNAPSHOT]));
    rc = resource_fields(cli, body);
    if (rc == 0)
        rc = call(cli, "POST", "/v1/sandboxes", body, show_object);
    json_decref(body);
    return rc;
}

static int run_update(struct cli *cli, const char *name)
{
    json_t *body = json_object();
    char path[512];
    int rc = resource_fields(cli, body);

    if (rc == 0 && cli_path(path, sizeof(path), "/v1/sandboxes/", name, ""))
        rc = usage_error("bad name '%s'", name);
    if (rc == 0)
        rc = call(cli, "PATCH", path, body, show_object);
    json_decref(body);
    return rc;
}

/* A request on /v1/<kind>/<name><suffix> without a body. */
static int on_named(struct cli *cli, const char *method, const char *prefix, const char *name,
                    const char *suffix, void (*show)(struct cli *, json_t *))
{
    char path[512];

    if (cli_path(path, sizeof(path), prefix, name, suffix))
        return usage_error("bad name '%s'", name);
    return call(cli, method, path, NULL, show);
}

static int run_list(struct cli *cli, const char *arg)
{
    (void)arg;
    return call(cli, "GET", "/v1/sandboxes", NULL, show_sandboxes);
}

static int run_get(struct cli *cli, const char *name)
{
    return on_named(cli, "GET", "/v1/sandboxes/", name, "", show_object);
}

static int run_start(struct cli *cli, const char *name)
{
    return on_named(cli, "POST", "/v1/sandboxes/", name, "/start", show_object);
}

static int run_stop(struct cli *cli, const char *name)
{
    return on_named(cli, "POST", "/v1/sandboxes/", name, "/stop", show_object);
}

static int run_delete(struct cli *cli, const char *name)
{
    int rc = on_named(cli, "DELETE", "/v1/sandboxes/", name, "", NULL);

    return rc ? rc : show_deleted(cli, "sandbox", name);
}

static int run_snapshot_list(struct cli *cli, const char *arg)
{
    (void)arg;
    return call(cli, "GET", "/v1/snapshots", NULL, show_snapshots);
}

static int run_snapshot_get(struct cli *cli, const char *id)
{
    return on_named(cli, "GET", "/v1/snapshots/", id, "", show_object);
}

static int run_snapshot_delete(struct cli *cli, const char *id)
{
    int rc = on_named(cli, "DELETE", "/v1/snapshots/", id, "", NULL);

    return rc ? rc : show_deleted(cli, "snapshot", id);
}

static int run_snapshot_register(struct cli *cli, const char *name)
{
    json_t *body;
    int rc;

    if (!cli->opt[OPT_IMAGE])
        return usage_error("%s needs --image", "snapshot register");
    body = json_pack("{s:s,s:s}", "name", name, "image_path", cli->opt[OPT_IMAGE]);
    rc = call(cli, "POST", "/v1/snapshots", body, show_object);
    json_decref(body);
    return rc;
}

#define RESOURCES (BIT(OPT_VCPUS) | BIT(OPT_MEMORY) | BIT(OPT_IDLE_TTL) | BIT(OPT_DELETE_AFTER))

static const struct command commands[] = {
    { "create", 1, RESOURCES | BIT(OPT_SNAPSHOT) | BIT(OPT_DISK), run_create },
    { "list", 0, 0, run_list },
    { "get", 1, 0, run_get },
    { "update", 1, RESOURCES, run_update },
    { "start", 1, 0, run_start },
    { "stop", 1, 0, run_stop },
    { "delete", 1, 0, run_delete },
    { "snapshot list", 0, 0, run_snapshot_list },
    { "snapshot get", 1, 0, run_snapshot_get },
    { "snapshot delete", 1, 0, run_snapshot_delete },
    { "snapshot register", 1, BIT(OPT_IMAGE), run_snapshot_register },
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
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
    int c;

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
        } else if (c >= OPT_SNAPSHOT && c < OPT_COUNT) {
            cli->opt[c] = optarg;
            cli->seen |= BIT(c);
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    for (; optind < argc; optind++) {
        if (cli->nargs == 3)
            return usage_error("unexpected argument '%s'", argv[optind]);
        cli->args[cli->nargs++] = argv[optind];
    }
    return 0;
}

static const struct command *find_command(struct cli *cli, int *first_arg)
{
    char name[64];

    if (cli->nargs == 0)
        return NULL;
    *first_arg = 1;
    snprintf(name, sizeof(name), "%s", cli->args[0]);
    if (!strcmp(cli->args[0], "snapshot") && cli->nargs > 1) {
        snprintf(name, sizeof(name), "snapshot %.40s", cli->args[1]);
        *first_arg = 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int dispatch(struct cli *cli)
{
    const struct command *cmd;
    int first = 0;

    cmd = find_command(cli, &first);
    if (!cmd)
        return usage_error("unknown command '%s'", cli->nargs ? cli->args[0] : "");
    if (cli->nargs - first != cmd->nargs)
        return usage_error(cmd->nargs ? "%s needs one NAME or ID" : "%s takes no arguments",
                           cmd->name);
    if (cli->seen & ~cmd->allowed)
        return usage_error("an option given does not apply to %s", cmd->name);
    return cmd->run(cli, cmd->nargs ? cli->args[first] : NULL);
}

int main(int argc, char **argv)
{
    struct cli cli = { .conn = { .url = getenv("SBX_API_URL"), .key = getenv("SBX_API_KEY") } };
    int rc = parse_args(argc, argv, &cli);

    if (rc)
        return rc == 1 ? 0 : rc;
    if (!cli.conn.url || !*cli.conn.url)
        cli.conn.url = "http://127.0.0.1:8080";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = dispatch(&cli);
    curl_global_cleanup();
    return rc;
}
