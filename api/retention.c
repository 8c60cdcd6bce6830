/* Idle stop and delete-after-stop. */
#include "retention.h"

#include "apilog.h"
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int expired(int64_t since_ms, int64_t ttl_seconds, int64_t now_ms)
{
    return ttl_seconds > 0 && since_ms > 0 && now_ms - since_ms >= ttl_seconds * 1000;
}

static int sweep_one(struct svc *svc, const struct sandbox_rec *rec, int64_t now_ms)
{
    struct sandbox_rec out;
    struct apierr err;
    char reason[64];

    if (!strcmp(rec->status, "running") &&
        expired(rec->last_activity_ms, rec->idle_ttl_seconds, now_ms)) {
        snprintf(reason, sizeof(reason), "stopped after %lld s idle",
                 (long long)rec->idle_ttl_seconds);
        if (sandbox_stop(svc, rec->name, reason, &out, &err) == 0)
            return 1;
        log_warn("retention: cannot stop %s: %s", rec->name, err.message);
    } else if (strcmp(rec->status, "running") &&
               expired(rec->stopped_ms, rec->delete_after_stop_seconds, now_ms)) {
        if (sandbox_delete(svc, rec->name, &err) == 0)
            return 1;
        log_warn("retention: cannot delete %s: %s", rec->name, err.message);
    }
    return 0;
}

int retention_sweep(struct svc *svc, int64_t now_ms)
{
    struct sandbox_rec *recs;
    struct apierr err;
    size_t n;
    int acted = 0;

    /* Acting changes rows, so walk a copy rather than a live query. */
    if (sandbox_list(svc, &recs, &n, &err))
        return 0;
    for (size_t i = 0; i < n; i++)
        acted += sweep_one(svc, &recs[i], now_ms);
    free(recs);
    return acted;
}
