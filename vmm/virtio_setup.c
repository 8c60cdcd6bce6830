/* Plugs the virtio-mmio devices into a VM: each gets the next MMIO window and GSI
 * (vm_alloc_mmio_dev), which the ACPI DSDT then describes as LNRO0005. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "net_slirp.h"
#include "virtio_devices.h"
#include "virtio_net.h"
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

static void net_to_guest(void *opaque, const uint8_t *frame, size_t len)
{
    virtio_net_receive(opaque, frame, len);  /* dropped if the guest has no room */
}

static void net_to_slirp(void *opaque, const uint8_t *frame, size_t len)
{
    net_slirp_input(opaque, frame, len);
}

int virtio_net_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    uint8_t mac[6];
    uint64_t base;
    unsigned gsi;

    if (!opts->net.enabled)
        return 0;
    if (opts->net.mac_set)
        memcpy(mac, opts->net.mac, sizeof(mac));
    else  /* differs between VMMs, so bridged guests would not clash either */
        virtio_net_mac_from_seed((uint32_t)getpid() ^ (uint32_t)time(NULL), mac);
    int rc = vm_alloc_mmio_dev(vm, VIRTIO_WINDOW, &base, &gsi);
    if (rc == 0) {
        vm->net = virtio_net_create(&vm->mmio, base, gsi, &vm->irq, &vm->mem, vm->loop, mac);
        if (!vm->net)
            rc = -errno;
    }
    if (rc == 0) {
        vm->slirp = net_slirp_new(vm->loop, &opts->net, net_to_guest, vm->net);
        if (!vm->slirp)
            rc = -errno;
    }
    if (rc < 0) {
        snprintf(err, errlen, "virtio-net: %s", strerror(-rc));
        return rc;
    }
    virtio_net_set_backend(vm->net, net_to_slirp, vm->slirp);
    return 0;
}
