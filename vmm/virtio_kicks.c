/* Queue kicks without vCPU exits: every virtio-mmio device on the bus gets one
 * eventfd per queue that KVM signals when the guest writes that queue's index
 * to QueueNotify (KVM API: KVM_IOEVENTFD with DATAMATCH). The event loop then
 * sees the kick directly, instead of a vCPU thread leaving KVM_RUN, taking the
 * device lock and handing the kick to the loop (which costs the most under
 * nested virtualisation). The last entry of the device table, so that it sees
 * every device; a device whose kicks cannot be bound keeps the MMIO path. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "devices.h"
#include "log.h"
#include "virtio_mmio.h"
#include "vm.h"

static int kvm_kick_register(void *ctx, uint64_t gpa, uint32_t datamatch, int fd, bool assign)
{
    const struct vm *vm = ctx;
    struct kvm_ioeventfd e = {
        .datamatch = datamatch,
        .addr = gpa,
        .len = 4,
        .fd = fd,
        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };

    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

int virtio_kicks_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    (void)opts, (void)err, (void)errlen;
    for (unsigned i = 0; i < vm->mmio.nr_ranges; i++) {
        struct virtio_mmio_dev *dev = virtio_mmio_of_range(&vm->mmio.ranges[i]);
        int rc;

        if (!dev)
            continue;
        rc = virtio_mmio_bind_kicks(dev, vm->loop, kvm_kick_register, vm);
        if (rc < 0)
            log_warn("virtio-%s: queue kicks take MMIO exits (KVM_IOEVENTFD: %s)",
                     virtio_mmio_name(dev), strerror(-rc));
    }
    return 0;
}
