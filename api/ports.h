/* Public ports of a sandbox: ports sbx-router serves without a service token.
 * The source of truth is one empty marker file a port, STATE/sandboxes/ID/public/PORT,
 * which sbx-router's sbx backend reads as STATE/names/NAME/public/PORT. The
 * sandbox's folder outlives stops, starts and sbx-api restarts, and is removed
 * with the sandbox, so the markers need no copy in the database. Calls return
 * 0, or -1 with err filled. */
#ifndef SBX_API_PORTS_H
#define SBX_API_PORTS_H

#include "apierr.h"
#include "service.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PORTS_MAX_PUBLIC 64

/* Reads a JSON array of ports (1..65535, at most PORTS_MAX_PUBLIC, duplicates
 * folded) into out, which has room for PORTS_MAX_PUBLIC; *n is how many. */
int ports_parse(json_t *arr, unsigned *out, size_t *n, struct apierr *err);
/* Parses the port path segment "1".."65535". */
int ports_parse_segment(const char *text, unsigned *port, struct apierr *err);
/* Makes port of the sandbox with id public (or private again); idempotent.
 * At most PORTS_MAX_PUBLIC ports may be public at once (a quota error). */
int ports_set(struct svc *svc, const char *sandbox_id, unsigned port, bool public,
              struct apierr *err);
/* The public ports of the sandbox with id, ascending, as a JSON array (new
 * reference; empty when it has none or its folder cannot be read). */
json_t *ports_json(struct svc *svc, const char *sandbox_id);

#endif
