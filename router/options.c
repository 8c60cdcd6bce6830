/* Command line of sbx-router (see options.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "options.h"
#include "sbx/svc_token.h"

static const char usage[] =
    "usage: sbx-router [serve] --domain DOMAIN --key-file FILE --backend-arg ARG [options]\n"
    "       sbx-router mint-token --key-file FILE --sandbox NAME --port PORT\n"
    "                             [--ttl SECONDS | --expires-at UNIX]\n"
    "serve options:\n"
    "  --listen ADDR:PORT        listen here (default 127.0.0.1:8080; port 0: any free)\n"
    "  --port-file FILE          write the bound port to FILE\n"
    "  --domain DOMAIN           service hosts are <sandbox>--<port>.DOMAIN\n"
    "  --backend NAME            how sandbox ports are reached (default unix-dir; have: %s)\n"
    "  --backend-arg ARG         sbx: sbx-api's state folder (STATE/names/<sandbox>);\n"
    "                            unix-dir: folder holding <sandbox>/<port>.sock\n"
    "  --key-file FILE           HMAC key for service tokens (shared with sbx-api)\n"
    "  --tls-cert FILE --tls-key FILE   serve HTTPS with this (wildcard) certificate\n"
    "  --header-timeout SECONDS  time allowed to send a request head (default 10)\n"
    "  --idle-timeout SECONDS    keep-alive and stalled transfer limit (default 60)\n"
    "  --tunnel-idle-timeout SECONDS  idle limit of upgraded connections (default 600)\n"
    "  --max-conns N             client connections at once (default 4096)\n"
    "  -v, --verbose             log every request\n";

enum {
    OPT_LISTEN = 256, OPT_PORT_FILE, OPT_DOMAIN, OPT_BACKEND, OPT_BACKEND_ARG, OPT_KEY_FILE,
    OPT_TLS_CERT, OPT_TLS_KEY, OPT_HEADER_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_TUNNEL_TIMEOUT,
    OPT_MAX_CONNS, OPT_SANDBOX, OPT_PORT, OPT_TTL, OPT_EXPIRES_AT,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"backend-arg", required_argument, NULL, OPT_BACKEND_ARG},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"tunnel-idle-timeout", required_argument, NULL, OPT_TUNNEL_TIMEOUT},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"sandbox", required_argument, NULL, OPT_SANDBOX},
    {"port", required_argument, NULL, OPT_PORT},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"expires-at", required_argument, NULL, OPT_EXPIRES_AT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {0},
};

static int parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "sbx-router: --%s wants a number in %lld..%lld\n", name,
                (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int set_number(int opt, const char *arg, struct router_opts *o)
{
    int64_t v;
    switch (opt) {
    case OPT_HEADER_TIMEOUT:
        if (parse_int("header-timeout", arg, 1, 3600, &v) < 0) return -1;
        o->header_timeout_s = (int)v;
        return 0;
    case OPT_IDLE_TIMEOUT:
        if (parse_int("idle-timeout", arg, 1, 86400, &v) < 0) return -1;
        o->idle_timeout_s = (int)v;
        return 0;
    case OPT_TUNNEL_TIMEOUT:
        if (parse_int("tunnel-idle-timeout", arg, 1, 86400, &v) < 0) return -1;
        o->tunnel_idle_timeout_s = (int)v;
        return 0;
    case OPT_MAX_CONNS:
        if (parse_int("max-conns", arg, 1, 1000000, &v) < 0) return -1;
        o->max_conns = (int)v;
        return 0;
    case OPT_PORT:
        if (parse_int("port", arg, 1, 65535, &v) < 0) return -1;
        o->port = (unsigned)v;
        return 0;
    case OPT_TTL:
        return parse_int("ttl", arg, 1, SVC_TOKEN_MAX_TTL, &o->ttl_s);
    case OPT_EXPIRES_AT:
        return parse_int("expires-at", arg, 1, INT64_MAX / 2, &o->expires_at);
    }
    return -1;
}

static int set_option(int opt, const char *arg, struct router_opts *o)
{
    switch (opt) {
    case OPT_LISTEN: o->listen = arg; return 0;
    case OPT_PORT_FILE: o->port_file = arg; return 0;
    case OPT_DOMAIN: o->domain = arg; return 0;
    case OPT_BACKEND: o->backend = arg; return 0;
    case OPT_BACKEND_ARG: o->backend_arg = arg; return 0;
    case OPT_KEY_FILE: o->key_file = arg; return 0;
    case OPT_TLS_CERT: o->tls_cert = arg; return 0;
    case OPT_TLS_KEY: o->tls_key = arg; return 0;
    case OPT_SANDBOX: o->sandbox = arg; return 0;
    case 'v': o->verbose = 1; return 0;
    }
    return set_number(opt, arg, o);
}

static int check(const struct router_opts *o)
{
    const char *missing = NULL;
    if (!o->key_file)
        missing = "--key-file";
    else if (o->command == CMD_MINT_TOKEN && !o->sandbox)
        missing = "--sandbox";
    else if (o->command == CMD_MINT_TOKEN && !o->port)
        missing = "--port";
    else if (o->command == CMD_SERVE && !o->domain)
        missing = "--domain";
    else if (o->command == CMD_SERVE && !o->backend_arg)
        missing = "--backend-arg";
    if (missing) {
        fprintf(stderr, "sbx-router: %s is required (see --help)\n", missing);
        return -1;
    }
    if (o->command == CMD_SERVE && !!o->tls_cert != !!o->tls_key) {
        fprintf(stderr, "sbx-router: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (o->command == CMD_SERVE && !backend_find(o->backend)) {
        fprintf(stderr, "sbx-router: no backend called %s (have: %s)\n", o->backend,
                backend_names());
        return -1;
    }
    return 0;
}

int options_parse(int argc, char **argv, struct router_opts *o)
{
    *o = (struct router_opts){
        .command = CMD_SERVE, .listen = "127.0.0.1:8080", .backend = "unix-dir",
        .header_timeout_s = 10, .idle_timeout_s = 60, .tunnel_idle_timeout_s = 600,
        .max_conns = 4096, .ttl_s = SVC_TOKEN_DEFAULT_TTL,
    };
    if (argc > 1 && strcmp(argv[1], "mint-token") == 0) {
        o->command = CMD_MINT_TOKEN;
        argc--;
        argv++;
    } else if (argc > 1 && strcmp(argv[1], "serve") == 0) {
        argc--;
        argv++;
    }
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            printf(usage, backend_names());
            return 1;
        }
        if (opt == '?' || set_option(opt, optarg, o) < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "sbx-router: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    return check(o);
}
