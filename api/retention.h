/* The two-stage retention sweep: a running sandbox idle for
 * idle_ttl_seconds is stopped; a stopped or failed one is deleted
 * delete_after_stop_seconds after it stopped. 0 disables either stage. */
#ifndef SBX_API_RETENTION_H
#define SBX_API_RETENTION_H

#include "service.h"

/* One pass at time now_ms. Returns how many sandboxes it stopped or deleted. */
int retention_sweep(struct svc *svc, int64_t now_ms);

#endif
