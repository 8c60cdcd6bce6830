/* Service token lookup in requests (see auth.h). */
#include <string.h>
#include <strings.h>

#include "auth.h"

enum auth_result auth_from_verdict(enum svc_token_verdict v)
{
    switch (v) {
    case SVC_TOKEN_OK: return AUTH_OK;
    case SVC_TOKEN_EXPIRED: return AUTH_EXPIRED;
    case SVC_TOKEN_WRONG_TARGET: return AUTH_WRONG_TARGET;
    default: return AUTH_INVALID;
    }
}

/* Keeps the better of two results: OK wins, then the order of the enum, highest last. */
static enum auth_result better(enum auth_result a, enum auth_result b)
{
    if (a == AUTH_OK || b == AUTH_OK)
        return AUTH_OK;
    return a > b ? a : b;
}

static bool cache_hit(const struct auth_cache *cache, struct http_span tok,
                      const struct route_target *t, int64_t now)
{
    return cache && cache->len && cache->len == tok.len &&
           memcmp(cache->token, tok.p, tok.len) == 0 &&
           now < cache->expires && cache->target.port == t->port &&
           strcmp(cache->target.sandbox, t->sandbox) == 0;
}

static enum auth_result check_one(const struct svc_token_key *key, struct http_span tok,
                                  const struct route_target *t, int64_t now,
                                  struct auth_cache *cache)
{
    if (cache_hit(cache, tok, t, now))
        return AUTH_OK;
    int64_t expires = 0;
    enum svc_token_verdict v =
        svc_token_verify(key, tok.p, tok.len, t->sandbox, t->port, now, &expires);
    if (v == SVC_TOKEN_OK && cache && tok.len <= sizeof(cache->token)) {
        memcpy(cache->token, tok.p, tok.len);
        cache->len = tok.len;
        cache->expires = expires;
        cache->target = *t;
    }
    return auth_from_verdict(v);
}

/* "Bearer <token>" -> token; false if the header is another scheme. */
static bool bearer_token(struct http_span v, struct http_span *tok)
{
    if (v.len < 7 || strncasecmp(v.p, "Bearer ", 7) != 0)
        return false;
    const char *p = v.p + 7, *end = v.p + v.len;
    while (p < end && *p == ' ')
        p++;
    while (end > p && end[-1] == ' ')
        end--;
    *tok = (struct http_span){p, (size_t)(end - p)};
    return true;
}

/* Checks every service cookie of a Cookie header. */
static enum auth_result check_cookies(const struct svc_token_key *key, struct http_span header,
                                      const struct route_target *t, int64_t now,
                                      struct auth_cache *cache, enum auth_result so_far)
{
    size_t pos = 0;
    struct http_span tok;
    while (route_cookie_find(header, ROUTE_COOKIE, &pos, &tok)) {
        enum auth_result r = check_one(key, tok, t, now, cache);
        so_far = so_far == AUTH_NONE ? r : better(so_far, r);
    }
    return so_far;
}

struct auth_outcome auth_check(const struct svc_token_key *key, const struct http_msg *req,
                               const struct route_target *t, int64_t now, struct auth_cache *cache)
{
    struct auth_outcome out = {.result = AUTH_NONE};
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        struct http_span tok;
        enum auth_result r;
        if (http_span_ieq(h->name, AUTH_HEADER)) {
            r = check_one(key, h->value, t, now, cache);
        } else if (http_span_ieq(h->name, "Authorization") && bearer_token(h->value, &tok)) {
            r = check_one(key, tok, t, now, cache);
            /* Only strip the header when it is ours; the service may use bearer tokens too. */
            if (r == AUTH_INVALID)
                continue;
            out.bearer_is_token = true;
        } else if (http_span_ieq(h->name, "Cookie")) {
            out.result = check_cookies(key, h->value, t, now, cache, out.result);
            continue;
        } else {
            continue;
        }
        out.result = out.result == AUTH_NONE ? r : better(out.result, r);
    }
    return out;
}
