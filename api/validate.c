/* Client input checks. */
#include "validate.h"

#include <string.h>

#define NAME_MAX_LEN 63

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int valid_name(const char *what, const char *name, struct apierr *err)
{
    size_t len = strnlen(name, NAME_MAX_LEN + 1);

    if (len == 0 || len > NAME_MAX_LEN)
        return apierr_set(err, APIERR_VALIDATION, "%s name must be 1 to %d characters", what,
                          NAME_MAX_LEN);
    if (name[0] < 'a' || name[0] > 'z')
        return apierr_set(err, APIERR_VALIDATION,
                          "%s name must start with a lowercase letter", what);
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok(name[i]))
            return apierr_set(err, APIERR_VALIDATION,
                              "%s name may only contain a-z, 0-9 and '-'", what);
    if (name[len - 1] == '-')
        return apierr_set(err, APIERR_VALIDATION, "%s name must not end with '-'", what);
    if (strstr(name, "--"))
        return apierr_set(err, APIERR_VALIDATION,
                          "%s name must not contain '--' (reserved for service URLs)", what);
    return 0;
}

int valid_parse_object(const char *body, size_t len, bool allow_empty, json_t **out,
                       struct apierr *err)
{
    json_error_t jerr;
    json_t *obj;

    if (len == 0) {
        if (!allow_empty)
            return apierr_set(err, APIERR_VALIDATION, "request body must be a JSON object");
        *out = json_object();
        return *out ? 0 : apierr_set(err, APIERR_INTERNAL, "out of memory");
    }
    obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return apierr_set(err, APIERR_VALIDATION, "malformed JSON at line %d column %d: %s",
                          jerr.line, jerr.column, jerr.text);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return apierr_set(err, APIERR_VALIDATION, "request body must be a JSON object");
    }
    *out = obj;
    return 0;
}

static bool is_allowed(const char *key, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (!strcmp(key, *allowed))
            return true;
    return false;
}

int valid_known_fields(json_t *obj, const char *const *allowed, struct apierr *err)
{
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value) {
        if (!is_allowed(key, allowed))
            return apierr_set(err, APIERR_VALIDATION, "unknown field '%.64s'", key);
    }
    return 0;
}

int valid_int_field(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    bool *present, struct apierr *err)
{
    json_t *value = json_object_get(obj, key);
    json_int_t n;

    *present = value != NULL;
    if (!value)
        return 0;
    if (!json_is_integer(value))
        return apierr_set(err, APIERR_VALIDATION, "%s must be an integer", key);
    n = json_integer_value(value);
    if (n < min || n > max)
        return apierr_set(err, APIERR_VALIDATION, "%s must be between %lld and %lld", key,
                          (long long)min, (long long)max);
    *out = n;
    return 0;
}

int valid_str_field(json_t *obj, const char *key, size_t maxlen, const char **out,
                    struct apierr *err)
{
    json_t *value = json_object_get(obj, key);
    size_t len;

    *out = NULL;
    if (!value)
        return 0;
    if (!json_is_string(value))
        return apierr_set(err, APIERR_VALIDATION, "%s must be a string", key);
    len = json_string_length(value);
    if (len == 0 || len > maxlen)
        return apierr_set(err, APIERR_VALIDATION, "%s must be 1 to %zu bytes", key, maxlen);
    if (strlen(json_string_value(value)) != len)
        return apierr_set(err, APIERR_VALIDATION, "%s must not contain NUL", key);
    *out = json_string_value(value);
    return 0;
}
