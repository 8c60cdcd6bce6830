/* sbx-router: service URLs for sandboxes. `sbx-router [serve] ...` runs the daemon;
 * `sbx-router mint-token ...` prints a service token (for tests and operators). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend.h"
#include "log.h"
#include "options.h"
#include "proxy.h"
#include "sbx/svc_token.h"
#include "tls.h"

static int mint(const struct router_opts *o, const struct svc_token_key *key)
{
    int64_t expires = o->expires_at ? o->expires_at : (int64_t)time(NULL) + o->ttl_s;
    char token[SVC_TOKEN_MAX_LEN + 1];
    int n = svc_token_mint(key, o->sandbox, o->port, expires, token, sizeof(token));
    if (n < 0) {
        fprintf(stderr, "sbx-router: mint-token: %s\n",
                n == -EINVAL ? "invalid sandbox name" : strerror(-n));
        return 1;
    }
    printf("%s\n", token);
    return 0;
}

static int serve(const struct router_opts *o, const struct svc_token_key *key)
{
    const struct backend_ops *ops = backend_find(o->backend);
    void *ctx = ops->open(o->backend_arg);
    if (!ctx) {
        log_error("backend %s (%s): %s", ops->name, o->backend_arg, strerror(errno));
        return 1;
    }
    SSL_CTX *tls = NULL;
    if (o->tls_cert && !(tls = tls_ctx_new(o->tls_cert, o->tls_key))) {
        ops->close(ctx);
        return 1;
    }
    struct proxy_config cfg = {
        .opts = o, .backend = ops, .backend_ctx = ctx, .key = key, .tls = tls,
    };
    int rc = proxy_run(&cfg);
    SSL_CTX_free(tls);
    ops->close(ctx);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct router_opts o;
    int rc = options_parse(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    log_set_level(o.verbose ? LOG_DEBUG : LOG_INFO);
    static struct svc_token_key key;
    rc = svc_token_key_load(o.key_file, &key);
    if (rc < 0) {
        fprintf(stderr, "sbx-router: --key-file %s: %s\n", o.key_file,
                rc == -EINVAL ? "want 32 to 1024 bytes" : strerror(-rc));
        return 1;
    }
    struct stat st;
    if (stat(o.key_file, &st) == 0 && (st.st_mode & 077))
        log_warn("--key-file %s is readable by others than its owner (chmod 600)", o.key_file);
    return o.command == CMD_MINT_TOKEN ? mint(&o, &key) : serve(&o, &key);
}
