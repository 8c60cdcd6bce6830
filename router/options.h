/* Command line of sbx-router: the one place options are parsed. */
#ifndef ROUTER_OPTIONS_H
#define ROUTER_OPTIONS_H

#include <stdint.h>

enum router_command { CMD_SERVE, CMD_MINT_TOKEN };

struct router_opts {
    enum router_command command;
    /* serve */
    const char *listen;        /* "ADDR:PORT", port 0 picks a free one */
    const char *port_file;     /* write the bound port here once listening */
    const char *domain;        /* service URLs are <sandbox>--<port>.<domain> */
    const char *backend;       /* backend name, see backend.c */
    const char *backend_arg;
    const char *key_file;      /* service token key, shared with sbx-api */
    const char *tls_cert;      /* wildcard certificate chain (PEM); TLS when set */
    const char *tls_key;
    int header_timeout_s;      /* a request head must arrive within this */
    int idle_timeout_s;        /* keep-alive and stalled transfers */
    int tunnel_idle_timeout_s; /* upgraded (WebSocket) connections */
    int max_conns;
    int verbose;
    /* mint-token */
    const char *sandbox;
    unsigned port;
    int64_t ttl_s;
    int64_t expires_at;        /* absolute expiry; 0: now + ttl_s */
};

/* Parses argv into o. Returns 0, 1 when --help was shown, or -1 after printing why. */
int options_parse(int argc, char **argv, struct router_opts *o);

#endif
