/* Typed API errors and the JSON responses that carry them:
 *   {"error":{"type":"not_found","message":"sandbox 'x' not found"}}  */
#ifndef SBX_API_APIERR_H
#define SBX_API_APIERR_H

#include <jansson.h>

enum apierr_type {
    APIERR_NONE = 0,
    APIERR_VALIDATION,        /* 400: the request is malformed or out of range */
    APIERR_UNAUTHORIZED,      /* 401: missing or wrong API key */
    APIERR_NOT_FOUND,         /* 404: no such resource or route */
    APIERR_METHOD,            /* 405: route exists, method does not */
    APIERR_CONFLICT,          /* 409: name taken, wrong state, still in use */
    APIERR_TOO_LARGE,         /* 413: body over the limit */
    APIERR_QUOTA,             /* 429: a configured limit is reached */
    APIERR_INTERNAL,          /* 500: our fault (database, fork...) */
    APIERR_NOT_IMPLEMENTED,   /* 501: a documented operation not available yet */
    APIERR_TIMEOUT,           /* 504: an operation did not finish in time */
};

/* An error on its way up from a service call. */
struct apierr {
    enum apierr_type type;
    char message[256];
};

/* Fills err; always returns -1 so callers can `return apierr_set(...)`. */
int apierr_set(struct apierr *err, enum apierr_type type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "validation", "not_found", ... */
const char *apierr_name(enum apierr_type type);
/* The HTTP status for type. */
int apierr_status(enum apierr_type type);

/* A finished response: HTTP status and a malloc'd JSON text. */
struct api_response {
    int status;
    char *body;
};

/* Sets resp to status with obj serialised; takes ownership of obj. */
void api_response_json(struct api_response *resp, int status, json_t *obj);
/* Sets resp to the error response for err. */
void api_response_error(struct api_response *resp, const struct apierr *err);
/* Frees the body; resp may be reused. */
void api_response_free(struct api_response *resp);

#endif
