/* Responses the router writes itself: errors with a clear message, and the redirect
 * of the browser bootstrap URL. */
#ifndef ROUTER_ANSWER_H
#define ROUTER_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum answer_kind {
    ANSWER_BAD_REQUEST,      /* 400 unparsable request */
    ANSWER_HEAD_TOO_LARGE,   /* 431 */
    ANSWER_TIMEOUT,          /* 408 head not sent in time */
    ANSWER_NOT_SERVICE_HOST, /* 404 Host is not <sandbox>--<port>.<domain> */
    ANSWER_UNKNOWN_SANDBOX,  /* 404 */
    ANSWER_AUTH_REQUIRED,    /* 401 no token */
    ANSWER_INVALID_TOKEN,    /* 401 token not genuine */
    ANSWER_LINK_EXPIRED,     /* 401 token expired */
    ANSWER_WRONG_SERVICE,    /* 403 token for another sandbox or port */
    ANSWER_BAD_REDIRECT,     /* 400 `next` is not a path on this host */
    ANSWER_METHOD,           /* 405 CONNECT */
    ANSWER_UNREACHABLE,      /* 502 nothing listens on that port */
    ANSWER_BAD_GATEWAY,      /* 502 the service sent a broken response */
    ANSWER_BUSY,             /* 503 */
    ANSWER_INTERNAL,         /* 500 */
};

/* Writes a whole error response for `kind` to out. When !keep_alive it carries
 * "Connection: close". head_only leaves the body out (answer to HEAD). Returns the
 * length, or -1 if cap is too small (it never is with 1024 bytes). */
int answer_error(char *out, size_t cap, enum answer_kind kind, bool keep_alive, bool head_only);

/* Writes the bootstrap answer: 302 to `location` (a checked same-host path) setting
 * the service cookie to `token` for max_age seconds (Secure when secure). Returns the
 * length or -1 if cap is too small. */
int answer_bootstrap(char *out, size_t cap, const char *location, const char *token,
                     int64_t max_age, bool secure, bool keep_alive);

/* HTTP status of a kind, for logs. */
int answer_status(enum answer_kind kind);

#endif
