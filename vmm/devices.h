/* The device table: every device sbx-vmm can give a guest, set up in order by
 * vm_add_devices. Each entry is one file (console.c, i8042.c, acpi_pm.c, ...). */
#ifndef SBX_VMM_DEVICES_H
#define SBX_VMM_DEVICES_H

#include <stddef.h>

struct vm;
struct vmm_options;

struct vmm_device {
    const char *name;
    /* Registers the device on vm's buses (and for virtio-mmio, in vm->acpi).
     * Runs before the guest; 0, or negative errno with a reason in err. */
    int (*setup)(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
};

int console_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int i8042_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int pvpanic_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int virtio_rng_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int virtio_vsock_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int virtio_blk_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int virtio_net_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int virtio_kicks_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);
int acpi_pm_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);

#endif
