/* Plugs the virtio-mmio devices into a VM: each gets the next MMIO window and GSI
 * (vm_alloc_mmio_dev), which the ACPI DSDT then describes as LNRO0005. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices.h"
#include "virtio_devices.h"
#include "virtio_vsock.h"
#include "vm.h"

#define VIRTIO_WINDOW 0x200

int virtio_rng_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    uint64_t base;
    unsigned gsi;

    (void)opts;
    int rc = vm_alloc_mmio_dev(vm, VIRTIO_WINDOW, &base, &gsi);
    if (rc == 0 && !virtio_rng_create(&vm->mmio, base, gsi, &vm->irq, &vm->mem))
        rc = -errno;
    if (rc < 0)
        snprintf(err, errlen, "virtio-rng: %s", strerror(-rc));
    return rc;
}

int virtio_vsock_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    uint64_t base;
    unsigned gsi;

    if (!opts->vsock_uds)
        return 0;
    int rc = vm_alloc_mmio_dev(vm, VIRTIO_WINDOW, &base, &gsi);
    if (rc == 0) {
        vm->vsock = virtio_vsock_create(&vm->mmio, base, gsi, &vm->irq, &vm->mem, vm->loop,
                                        VSOCK_GUEST_CID, opts->vsock_uds);
        if (!vm->vsock)
            rc = -errno;
    }
    if (rc < 0)
        snprintf(err, errlen, "virtio-vsock on %s: %s", opts->vsock_uds, strerror(-rc));
    return rc;
}
