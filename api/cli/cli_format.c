/* JSON and table output for sbx. */
#include "cli_format.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cli_print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (text)
        puts(text);
    free(text);
}

/* A field as text ("-" for null or missing). */
static void field_text(json_t *obj, const char *key, char *out, size_t len)
{
    json_t *v = json_object_get(obj, key);

    if (json_is_string(v))
        snprintf(out, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(out, len, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, len, "-");
}

struct column {
    const char *title;
    const char *key;
    int width;
};

static void print_table(json_t *arr, const struct column *cols, size_t ncols)
{
    char text[256];
    json_t *row;
    size_t i;

    for (size_t c = 0; c < ncols; c++)
        printf("%-*s%s", cols[c].width, cols[c].title, c + 1 < ncols ? "  " : "\n");
    json_array_foreach(arr, i, row) {
        for (size_t c = 0; c < ncols; c++) {
            field_text(row, cols[c].key, text, sizeof(text));
            printf("%-*s%s", cols[c].width, text, c + 1 < ncols ? "  " : "\n");
        }
    }
}

void cli_print_sandbox_table(json_t *arr)
{
    static const struct column cols[] = {
        { "NAME", "name", 24 }, { "STATUS", "status", 8 }, { "VCPUS", "vcpus", 5 },
        { "MEMORY_MIB", "memory_mib", 10 }, { "DISK_GIB", "disk_gib", 8 },
        { "CREATED", "created_at", 24 },
    };

    print_table(arr, cols, sizeof(cols) / sizeof(cols[0]));
}

void cli_print_snapshot_table(json_t *arr)
{
    static const struct column cols[] = {
        { "ID", "id", 36 }, { "NAME", "name", 20 }, { "STATUS", "status", 8 },
        { "SIZE_BYTES", "size_bytes", 12 }, { "CREATED", "created_at", 24 },
    };

    print_table(arr, cols, sizeof(cols) / sizeof(cols[0]));
}

void cli_print_object(json_t *obj)
{
    char text[512];
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        field_text(obj, key, text, sizeof(text));
        printf("%-26s %s\n", key, text);
    }
}

int cli_parse_size(const char *text, int64_t unit_mib, int64_t *out)
{
    char *end;
    long long n;
    int64_t mib;

    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno || end == text || n < 0 || n > (1LL << 40))
        return -1;
    if (!*end)
        mib = n * unit_mib;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
        mib = n;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
        mib = n * 1024;
    else
        return -1;
    if (mib % unit_mib)
        return -1;
    *out = mib / unit_mib;
    return 0;
}
