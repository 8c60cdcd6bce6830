/* The process-supervising driver: one sbx-vmm process per running sandbox,
 * spawned as
 *   VMM --kernel K --initrd I --cmdline "C sbx.root=/dev/vda sbx.hostname=NAME"
 *       --mem MIB --vcpus N --console PATH --disk store=STORE,overlay=OVERLAY
 *       --vsock-uds PATH [--net NET]
 * (with NET, the command line also gets sbx.net= for sbx-init's eth0)
 * in its own session (so it outlives an sbx-api restart), watched through a
 * pidfd on the event loop, and adopted again by pid + start time. */
#ifndef SBX_API_DRIVER_PROC_H
#define SBX_API_DRIVER_PROC_H

#include "driver.h"
#include "loop.h"

struct procdrv_config {
    const char *vmm_path;       /* sbx-vmm, or a stand-in in tests */
    const char *kernel_path;
    const char *initrd_path;
    const char *cmdline;        /* the root disk and hostname flags are appended */
    const char *net;            /* sbx-vmm --net; NULL or "none": no network */
    int stop_grace_ms;          /* SIGTERM -> SIGKILL delay */
};

/* Fills *drv with a process driver; config strings must outlive it.
 * Returns 0 or negative errno. */
int procdrv_create(const struct procdrv_config *config, struct loop *loop,
                   driver_exit_cb on_exit, void *cb_arg, struct driver *drv);

/* Start time (clock ticks after boot) of pid from /proc, or negative errno
 * (-ESRCH also for zombies). */
int64_t procdrv_start_ticks(int64_t pid);

#endif
