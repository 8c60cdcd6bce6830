/* Who may reach a sandbox port: finds the service tokens a request carries (header,
 * bearer, cookie) and checks them. */
#ifndef ROUTER_AUTH_H
#define ROUTER_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "http_msg.h"
#include "route.h"
#include "sbx/svc_token.h"

#define AUTH_HEADER "X-Sbx-Service-Token"

enum auth_result {
    AUTH_OK,
    AUTH_NONE,         /* no token at all */
    AUTH_INVALID,      /* only tokens that are not genuine */
    AUTH_WRONG_TARGET, /* a genuine live token, for another sandbox port */
    AUTH_EXPIRED,      /* a genuine token, expired */
};

/* The last token found good on a connection, so a client sending the same token on
 * every request costs one HMAC per connection, not per request. */
struct auth_cache {
    char token[SVC_TOKEN_MAX_LEN];
    size_t len;                /* 0: empty */
    int64_t expires;
    struct route_target target;
};

struct auth_outcome {
    enum auth_result result;
    bool bearer_is_token; /* the Authorization header held a service token: strip it */
};

/* Checks the tokens in request `req` for target t at time now. On several tokens the
 * request passes if any is good; otherwise the most telling failure is reported
 * (expired, then wrong target, then invalid, then none). cache (may be NULL) is
 * consulted first and remembers a good token. */
struct auth_outcome auth_check(const struct svc_token_key *key, const struct http_msg *req,
                               const struct route_target *t, int64_t now, struct auth_cache *cache);

/* Maps a token verdict to the auth result it stands for. */
enum auth_result auth_from_verdict(enum svc_token_verdict v);

#endif
