/* The sbx-router daemon: one epoll loop serving client connections, each relayed to
 * a sandbox port through a backend (backend.h). */
#ifndef ROUTER_PROXY_H
#define ROUTER_PROXY_H

#include <openssl/ssl.h>

#include "backend.h"
#include "options.h"
#include "sbx/svc_token.h"

struct proxy_config {
    const struct router_opts *opts;
    const struct backend_ops *backend;
    void *backend_ctx;
    const struct svc_token_key *key;
    SSL_CTX *tls; /* NULL: plain HTTP */
};

/* Listens on opts->listen and serves until SIGINT or SIGTERM. Returns 0 on a clean
 * stop, or -errno when set-up fails (after logging why). */
int proxy_run(const struct proxy_config *cfg);

#endif
