/* The device table (see devices.h). Order matters only for virtio-mmio devices:
 * it fixes their MMIO windows and GSIs, and so the guest's device names. */
#include "devices.h"

#include "log.h"
#include "vm.h"

static const struct vmm_device vmm_devices[] = {
    { "console (8250 UART)", console_setup },
    { "i8042 reset", i8042_setup },
    { "ACPI power management", acpi_pm_setup },
    { "pvpanic", pvpanic_setup },
    { "virtio-rng", virtio_rng_setup },
    { "virtio-vsock", virtio_vsock_setup },
    { "virtio-blk", virtio_blk_setup },
    { "virtio-net", virtio_net_setup },
    { "virtio-mmio queue kicks", virtio_kicks_setup },  /* last: binds every device */
};

int vm_add_devices(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(vmm_devices) / sizeof(vmm_devices[0]); i++) {
        int rc = vmm_devices[i].setup(vm, opts, err, errlen);
        if (rc < 0)
            return rc;
        log_debug("device %s ready", vmm_devices[i].name);
    }
    return 0;
}
