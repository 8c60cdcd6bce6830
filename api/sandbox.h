/* Sandbox lifecycle: create, update, start, stop, delete, and the reactions
 * to VMM exits and sbx-api restarts. Every state change is written to the
 * store before the call returns. Calls return 0, or -1 with err filled. */
#ifndef SBX_API_SANDBOX_H
#define SBX_API_SANDBOX_H

#include "apierr.h"
#include "service.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct sandbox_spec {
    const char *name;
    const char *snapshot;               /* snapshot id or name */
    int64_t vcpus, memory_mib;
    int64_t disk_gib;                   /* >= the snapshot's size; 0: the larger of the
                                           default and the snapshot's size */
    int64_t idle_ttl_seconds, delete_after_stop_seconds;
    const unsigned *public_ports;       /* ports.h: made public before the boot */
    size_t n_public_ports;
};

/* Fields a PATCH may change; only those with has_* set are applied. */
struct sandbox_changes {
    bool has_vcpus, has_memory_mib, has_idle_ttl, has_delete_after_stop;
    int64_t vcpus, memory_mib, idle_ttl_seconds, delete_after_stop_seconds;
};

/* Creates the sandbox (its state directory with a snapfs overlay on the
 * snapshot's image, which must be ready, and the link STATE/names/NAME ->
 * ../sandboxes/ID) and boots it; on a failed boot nothing is left behind. */
int sandbox_create(struct svc *svc, const struct sandbox_spec *spec, struct sandbox_rec *out,
                   struct apierr *err);
int sandbox_get(struct svc *svc, const char *name, struct sandbox_rec *out, struct apierr *err);
/* Resource changes take effect at the next start. */
int sandbox_update(struct svc *svc, const char *name, const struct sandbox_changes *ch,
                   struct sandbox_rec *out, struct apierr *err);
/* Boots a stopped or failed sandbox. */
int sandbox_start(struct svc *svc, const char *name, struct sandbox_rec *out,
                  struct apierr *err);
/* Stops a running sandbox: its guest is asked to power off (processes stopped,
 * disks synced) and given svc->poweroff_timeout_ms, then its VMM is stopped by
 * force. The service lock is released while the guest powers off, the sandbox
 * being "stopping" meanwhile. reason is recorded as its status message. */
int sandbox_stop(struct svc *svc, const char *name, const char *reason, struct sandbox_rec *out,
                 struct apierr *err);
/* Stops it if needed (by force: its disk goes too), then removes its row and
 * state directory. A sandbox that is stopping is a conflict. */
int sandbox_delete(struct svc *svc, const char *name, struct apierr *err);
/* Records activity now (resets the idle timer). */
int sandbox_touch(struct svc *svc, const char *name, struct apierr *err);

/* driver_exit_cb: marks a running sandbox stopped (its guest powered off) or
 * failed, with reason. arg is the svc. */
void sandbox_on_vmm_exit(void *arg, const char *sandbox_id, bool powered_off,
                         const char *reason);
/* At start-up: re-makes every sandbox's STATE/names/NAME link, adopts the VMM
 * of every sandbox recorded as running, or marks it failed when that VMM is
 * gone. Returns how many were adopted. */
int sandbox_adopt_all(struct svc *svc);

/* Every sandbox row (oldest first) in a malloc'd array. Returns 0 or -1. */
int sandbox_list(struct svc *svc, struct sandbox_rec **out, size_t *count, struct apierr *err);

/* Makes port of sandbox name public or private again (ports.h). */
int sandbox_set_port_public(struct svc *svc, const char *name, unsigned port, bool public,
                            struct apierr *err);

/* The public JSON form of a sandbox, with its public_ports. New reference. */
json_t *sandbox_to_json(struct svc *svc, const struct sandbox_rec *rec);

#endif
