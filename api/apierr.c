/* Typed errors -> HTTP status + JSON body. */
#include "apierr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int status;
} apierr_table[] = {
    [APIERR_NONE] = { "none", 200 },
    [APIERR_VALIDATION] = { "validation", 400 },
    [APIERR_UNAUTHORIZED] = { "unauthorized", 401 },
    [APIERR_NOT_FOUND] = { "not_found", 404 },
    [APIERR_METHOD] = { "method_not_allowed", 405 },
    [APIERR_CONFLICT] = { "conflict", 409 },
    [APIERR_TOO_LARGE] = { "payload_too_large", 413 },
    [APIERR_QUOTA] = { "quota", 429 },
    [APIERR_INTERNAL] = { "internal", 500 },
    [APIERR_NOT_IMPLEMENTED] = { "not_implemented", 501 },
    [APIERR_TIMEOUT] = { "timeout", 504 },
};

int apierr_set(struct apierr *err, enum apierr_type type, const char *fmt, ...)
{
    va_list ap;

    err->type = type;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    /* Messages quote client input (paths, field names); keep them printable
     * ASCII so they always serialise as JSON strings. */
    for (char *c = err->message; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    return -1;
}

const char *apierr_name(enum apierr_type type)
{
    if ((unsigned)type >= sizeof(apierr_table) / sizeof(apierr_table[0]))
        return "internal";
    return apierr_table[type].name;
}

int apierr_status(enum apierr_type type)
{
    if ((unsigned)type >= sizeof(apierr_table) / sizeof(apierr_table[0]))
        return 500;
    return apierr_table[type].status;
}

void api_response_json(struct api_response *resp, int status, json_t *obj)
{
    resp->status = status;
    resp->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!resp->body) {
        /* Out of memory while serialising: a fixed body still tells the client. */
        resp->status = 500;
        resp->body = strdup("{\"error\":{\"type\":\"internal\",\"message\":\"out of memory\"}}");
    }
}

void api_response_error(struct api_response *resp, const struct apierr *err)
{
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "type", apierr_name(err->type),
                            "message", err->message);

    api_response_json(resp, apierr_status(err->type), obj);
}

void api_response_free(struct api_response *resp)
{
    free(resp->body);
    resp->body = NULL;
}
