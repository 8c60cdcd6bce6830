/* sbx's output: JSON (default) or --format pretty tables, and the parsing
 * of human sizes such as "1gb" or "512mib". */
#ifndef SBX_CLI_FORMAT_H
#define SBX_CLI_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Prints obj as indented JSON on stdout. */
void cli_print_json(json_t *obj);
/* Tables: one row per element of arr. */
void cli_print_sandbox_table(json_t *arr);
void cli_print_snapshot_table(json_t *arr);
/* One object as "key: value" lines. */
void cli_print_object(json_t *obj);

/* Parses a size into units of unit_mib MiB (1 for MiB, 1024 for GiB). A bare
 * number is already in that unit; suffixes m/mb/mib and g/gb/gib convert.
 * Returns 0, or -1 if malformed or not a whole number of units. */
int cli_parse_size(const char *text, int64_t unit_mib, int64_t *out);

#endif
