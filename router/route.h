/* Service URL pieces: the Host that names a sandbox port, the query of the browser
 * bootstrap URL, its redirect target, and the router's cookie. All inputs untrusted. */
#ifndef ROUTER_ROUTE_H
#define ROUTER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "http_msg.h"
#include "sbx/svc_token.h"

#define ROUTE_COOKIE    "sbx_svc"   /* cookie holding a service token */
#define ROUTE_AUTH_PATH "/_svc/auth" /* browser bootstrap: ?token=...&next=/path */

struct route_target {
    char sandbox[SVC_TOKEN_SANDBOX_MAX + 1];
    unsigned port;
};

/* Parses a Host value "<sandbox>--<port>.<domain>[:<listen port>]" where domain is
 * lower case (a trailing dot and any letter case are accepted in host). Returns 0 and
 * fills t, or -1 if host does not name a sandbox port under domain. */
int route_parse_host(struct http_span host, const char *domain, struct route_target *t);

/* Whether the path of a request target (query excluded) is exactly `path`. */
bool route_path_is(struct http_span url, const char *path);

/* Finds query parameter `name` in a request target and percent-decodes its value into
 * out (NUL terminated). Returns the value length, -1 if absent, -2 if undecodable or
 * longer than out_size - 1. */
long route_query_param(struct http_span url, const char *name, char *out, size_t out_size);

/* Whether a decoded `next` may be used as redirect target: a path on the same host
 * ("/..." but not "//" or "/\"), printable ASCII only, no spaces. */
bool route_next_ok(const char *next, size_t len);

/* Finds cookie `name` in a Cookie header value from offset *pos on (start with 0).
 * Returns true, sets *value and moves *pos past it; false when there is no more. A
 * header may hold the name several times (e.g. cookies of a parent domain): call
 * again to see each. */
bool route_cookie_find(struct http_span header, const char *name, size_t *pos,
                       struct http_span *value);

/* Writes the Cookie header value minus every cookie called `name` to out (not NUL
 * terminated), pairs joined by "; ". Returns the length written; pairs that would not
 * fit in out_size are dropped (2 * header.len always fits). */
size_t route_cookie_strip(struct http_span header, const char *name, char *out, size_t out_size);

#endif
