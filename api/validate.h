/* Checks on client input: resource names and JSON request bodies. Every
 * function fills err (type APIERR_VALIDATION) with a message naming the
 * offending field and returns -1 on bad input, 0 when it is acceptable. */
#ifndef SBX_API_VALIDATE_H
#define SBX_API_VALIDATE_H

#include "apierr.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A sandbox or snapshot name: 1-63 of [a-z0-9-], starting with a letter, not
 * ending with '-', and without "--" (service URLs are <sandbox>--<port>.<domain>). */
int valid_name(const char *what, const char *name, struct apierr *err);

/* Parses body as one JSON object (duplicate keys rejected). On success *out
 * holds a new reference. An empty body is an empty object when allow_empty. */
int valid_parse_object(const char *body, size_t len, bool allow_empty, json_t **out,
                       struct apierr *err);

/* Rejects any key of obj not in allowed (NULL-terminated). */
int valid_known_fields(json_t *obj, const char *const *allowed, struct apierr *err);

/* Reads optional integer field key within [min, max] into *out; *present says
 * whether the key was there (out untouched if not). */
int valid_int_field(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    bool *present, struct apierr *err);

/* Reads optional string field key (1..maxlen bytes) into *out (borrowed from
 * obj); *out is NULL when the key is absent. */
int valid_str_field(json_t *obj, const char *key, size_t maxlen, const char **out,
                    struct apierr *err);

#endif
