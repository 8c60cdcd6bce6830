/* The request path of sbx-api without the socket: authentication, routing,
 * body validation and the service call. Pure with respect to HTTP framing so
 * the fuzzer can drive it directly. */
#ifndef SBX_API_ROUTER_H
#define SBX_API_ROUTER_H

#include "apierr.h"
#include "service.h"

#include <stdbool.h>
#include <stddef.h>

struct router {
    struct svc *svc;
    const char *api_key;        /* required on every /v1 route */
};

/* One request as received. Strings are NUL-terminated; header values are
 * NULL when absent. body need not be NUL-terminated. */
struct api_request {
    const char *method;
    const char *path;           /* without the query string */
    const char *x_api_key;
    const char *authorization;
    const char *body;
    size_t body_len;
    bool body_too_large;        /* the transport dropped a body over its limit */
};

/* Checks the API key of a /v1 request (X-Api-Key or Authorization: Bearer;
 * either may be NULL). Returns 0, or -1 with err filled (unauthorized). */
int router_auth(const struct router *r, const char *x_api_key, const char *authorization,
                struct apierr *err);

/* Answers req into resp (status and a malloc'd JSON body, NULL for 204).
 * Never fails: every problem becomes a typed error response. */
void router_handle(struct router *r, const struct api_request *req, struct api_response *resp);

#endif
