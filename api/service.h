/* The service context shared by the sandbox and snapshot operations: the
 * store, the driver, the state directory and the configured limits. */
#ifndef SBX_API_SERVICE_H
#define SBX_API_SERVICE_H

#include "driver.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct svc_limits {
    int64_t max_vcpus;
    int64_t max_memory_mib;
    int64_t max_disk_gib;
    int64_t max_sandboxes;              /* rows, any status */
    int64_t max_running;
    int64_t default_vcpus;
    int64_t default_memory_mib;
    int64_t default_disk_gib;
    int64_t default_idle_ttl_seconds;
    int64_t default_delete_after_stop_seconds;
};

struct svc {
    struct store *store;
    struct driver *driver;
    const char *state_dir;              /* sandboxes/<id>/ live under it */
    const char *snapshot_dir;           /* registered images must live under it */
    struct svc_limits limits;
    int64_t poweroff_timeout_ms;        /* a stop's wait for the guest to power off; 0: none */
};

/* The one process-wide lock. Every store and driver call runs under it: HTTP
 * handler threads, the event loop's callbacks (VMM exits, signals, retention)
 * and the snapshot build threads. Handlers that block for long (agent I/O,
 * snapshot capture) release it around the blocking part and look their rows up
 * again afterwards. Not recursive. */
void svc_lock(void);
void svc_unlock(void);
/* Whether the calling thread holds it (for code called both ways). */
bool svc_lock_held(void);

/* The limits sbx-api uses unless told otherwise. */
void svc_default_limits(struct svc_limits *limits);

/* Runs main(arg) on a new detached thread. Returns 0 or negative errno (then
 * main never runs and arg is still the caller's). */
int svc_start_detached(void *(*main)(void *), void *arg);

/* Wall-clock milliseconds since the epoch. */
int64_t svc_now_ms(void);
/* A random UUID (v4) in out (STORE_ID_LEN bytes). Returns 0 or negative errno. */
int svc_new_id(char out[STORE_ID_LEN]);
/* ms as an RFC 3339 UTC string, or JSON null when ms is 0. New reference. */
json_t *svc_time_json(int64_t ms);

#endif
