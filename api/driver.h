/* The sandbox driver: what actually runs a sandbox. sbx-api's service layer
 * calls it through an ops table so the launcher can be swapped (the process
 * driver in driver_proc.c spawns sbx-vmm; tests and the fuzzer use others). */
#ifndef SBX_API_DRIVER_H
#define SBX_API_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything a driver needs to boot one sandbox. Paths live under the
 * sandbox's state directory. */
struct driver_launch {
    const char *sandbox_id;
    const char *hostname;       /* the guest's hostname: the sandbox name */
    int64_t vcpus;
    int64_t memory_mib;
    const char *store_path;     /* snapfs store holding the snapshot images */
    const char *overlay_path;   /* the sandbox's snapfs overlay (names its base image) */
    const char *console_path;   /* guest console log */
    const char *vsock_path;     /* host end of the guest agent's vsock */
    const char *log_path;       /* the VMM process's own stdout/stderr */
};

/* What identifies a running VMM across sbx-api restarts. */
struct driver_handle {
    int64_t pid;
    int64_t start_ticks;        /* /proc/PID/stat field 22, guards against pid reuse */
};

/* Called from the event loop when a sandbox's VMM exits without the driver
 * being asked to stop it. powered_off: it exited with status 0, so the guest
 * powered itself off; otherwise it failed. reason is a short human-readable
 * sentence. */
typedef void (*driver_exit_cb)(void *arg, const char *sandbox_id, bool powered_off,
                               const char *reason);

struct driver_ops {
    const char *name;
    /* Boots the sandbox; fills *out. Returns 0, or negative errno with a
     * message in err. */
    int (*start)(void *self, const struct driver_launch *launch, struct driver_handle *out,
                 char *err, size_t errlen);
    /* Stops the sandbox's VMM (graceful, then forced); returns once it is gone.
     * Returns 0 (also when it was already gone) or negative errno. */
    int (*stop)(void *self, const char *sandbox_id, const struct driver_handle *h);
    /* Waits up to timeout_ms for the VMM identified by h to exit by itself
     * (its guest was asked to power off). Returns 1 once it is gone, 0 while it
     * still runs. Touches no driver state, so it may run without the service lock. */
    int (*wait_exit)(void *self, const struct driver_handle *h, int timeout_ms);
    /* 1 if the VMM identified by h is alive, 0 if not. */
    int (*status)(void *self, const struct driver_handle *h);
    /* Takes over watching a VMM started by an earlier sbx-api. Returns 0, or
     * -ESRCH when that VMM is gone. */
    int (*adopt)(void *self, const char *sandbox_id, const struct driver_handle *h);
    void (*destroy)(void *self);
};

struct driver {
    const struct driver_ops *ops;
    void *self;
};

#endif
