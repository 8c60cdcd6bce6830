/* Service URLs: tokens for one sandbox port (include/sbx/svc_token.h) signed
 * with STATE/service.key. sbx-router finds the sandbox through STATE/names/NAME,
 * which sandbox.c keeps. */
#include "dataplane_int.h"

#include "apilog.h"
#include "service.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_BYTES 32

static int write_new_key(const char *path)
{
    unsigned char key[KEY_BYTES];
    size_t got = 0;
    int fd, rc = 0;

    while (got < sizeof(key)) {
        ssize_t n = getrandom(key + got, sizeof(key) - got, 0);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            got += (size_t)n;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : -errno;
    if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key))
        rc = -EIO;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (rc)
        unlink(path);
    return rc;
}

int dp_service_key_load(struct dataplane *dp)
{
    char path[STORE_PATH_LEN + 32];
    int rc;

    snprintf(path, sizeof(path), "%s/service.key", dp->cfg.state_dir);
    if (access(path, F_OK) != 0) {
        rc = write_new_key(path);
        if (rc) {
            log_err("cannot create %s: %s", path, strerror(-rc));
            return rc;
        }
        log_info("created the service URL key %s", path);
    }
    rc = svc_token_key_load(path, &dp->key);
    if (rc)
        log_err("cannot load %s: %s", path, strerror(-rc));
    return rc;
}

/* base with {host} replaced by host (a base without {host} is used as is). */
static char *expand_base(const char *base, const char *host)
{
    const char *at = strstr(base, "{host}");
    char *out;

    if (!at)
        return strdup(base);
    if (asprintf(&out, "%.*s%s%s", (int)(at - base), base, host, at + 6) < 0)
        return NULL;
    return out;
}

static json_t *url_reply(struct dataplane *dp, const struct dp_target *t, unsigned port,
                         const char *token, int64_t expires)
{
    char host[STORE_NAME_LEN + 300], *base, *url = NULL, *browser = NULL;
    size_t blen;
    json_t *out = NULL;

    snprintf(host, sizeof(host), "%s--%u.%s", t->name, port, dp->cfg.service_domain);
    base = expand_base(dp->cfg.service_url_base, host);
    if (!base)
        return NULL;
    blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        base[--blen] = '\0';
    if (asprintf(&url, "%s/", base) >= 0 &&
        asprintf(&browser, "%s/_svc/auth?token=%s&next=/", base, token) >= 0)
        out = json_pack("{s:s,s:s,s:o,s:s}", "url", url, "token", token, "expires_at",
                        svc_time_json(expires * 1000), "browser_url", browser);
    free(url);
    free(browser);
    free(base);
    return out;
}

int dp_service_url(struct dp_call *c, json_t **out, struct dperr *e)
{
    static const char *const allowed[] = { "port", "expires_in_seconds", NULL };
    char token[SVC_TOKEN_MAX_LEN + 1];
    int64_t port = 0, ttl = SVC_TOKEN_DEFAULT_TTL, expires;
    struct dp_target t;
    struct apierr aerr;
    json_t *obj = NULL;
    bool has_port, has_ttl;
    int rc = -1;

    if (valid_parse_object(c->body, c->body_len, false, &obj, &aerr) ||
        valid_known_fields(obj, allowed, &aerr) ||
        valid_int_field(obj, "port", 1, 65535, &port, &has_port, &aerr) ||
        valid_int_field(obj, "expires_in_seconds", 1, SVC_TOKEN_MAX_TTL, &ttl, &has_ttl, &aerr)) {
        dp_fail(e, 400, "validation", "%s", aerr.message);
        goto out;
    }
    if (!has_port) {
        dp_fail(e, 400, "validation", "port is required");
        goto out;
    }
    if (dp_lookup(c->dp, c->name, &t, e))
        goto out;
    expires = svc_now_ms() / 1000 + ttl;
    if (svc_token_mint(&c->dp->key, t.name, (unsigned)port, expires, token, sizeof(token)) < 0) {
        dp_fail(e, 500, "internal", "cannot mint a token for %s", t.name);
        goto out;
    }
    *out = url_reply(c->dp, &t, (unsigned)port, token, expires);
    rc = *out ? 0 : dp_fail(e, 500, "internal", "out of memory");
out:
    json_decref(obj);
    return rc;
}
