/* KVM virtual machine set-up and the run/stop protocol (see vm.h). */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "log.h"
#include "vcpu.h"
#include "net_slirp.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "virtio_vsock.h"
#include "x86.h"

#define KVM_API 12

static int kvm_set_irq_level(void *ctx, unsigned gsi, int level)
{
    struct vm *vm = ctx;
    struct kvm_irq_level irq = { .irq = gsi, .level = level };

    return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

static int open_kvm(struct vm *vm, char *err, size_t errlen)
{
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        snprintf(err, errlen, "cannot open /dev/kvm: %s%s", strerror(errno),
                 errno == ENOENT ? " (no KVM on this machine: load kvm_intel or kvm_amd, "
                                   "or enable nested virtualization)" : "");
        return -errno;
    }
    int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API) {
        snprintf(err, errlen, "KVM API version %d, need %d", api, KVM_API);
        return -ENOTSUP;
    }
    return 0;
}

static int create_vm_fd(struct vm *vm, char *err, size_t errlen)
{
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
        return -errno;
    }
    uint64_t ident = LAYOUT_IDENTITY_MAP;
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS_ADDR) < 0 ||
        ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0) {
        snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        return -errno;
    }
    /* No in-kernel PIT: guests keep time with kvmclock and the LAPIC timer (the
     * ACPI tables say hardware-reduced, so Linux never programs a PIT), and with
     * KVM's PIT present 2-vCPU guests hung early in boot under nested SVM. */
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        snprintf(err, errlen, "creating the in-kernel irqchip: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static int set_region(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *host)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot, .guest_phys_addr = gpa, .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };

    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return -errno;
    vm->mem.regions[vm->mem.nr_regions++] = (struct gmem_region){ gpa, size, host };
    return 0;
}

static int map_ram(struct vm *vm, uint64_t mem_mib, char *err, size_t errlen)
{
    vm->ram_bytes = mem_mib << 20;
    vm->ram = boot_ram_layout(vm->ram_bytes);
    vm->ram_host = mmap(NULL, vm->ram_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->ram_host == MAP_FAILED) {
        vm->ram_host = NULL;
        snprintf(err, errlen, "cannot map %llu MiB of guest memory: %s",
                 (unsigned long long)mem_mib, strerror(errno));
        return -ENOMEM;
    }
    madvise(vm->ram_host, vm->ram_bytes, MADV_MERGEABLE);
    int rc = set_region(vm, 0, 0, vm->ram.low_end, vm->ram_host);
    if (rc == 0 && vm->ram.high_size)
        rc = set_region(vm, 1, LAYOUT_HIGH_RAM, vm->ram.high_size, vm->ram_host + vm->ram.low_end);
    if (rc < 0)
        snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-rc));
    return rc;
}

int vm_create(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    memset(vm, 0, sizeof(*vm));
    vm->kvm_fd = vm->vm_fd = -1;
    vm->stop_code = -1;
    pthread_mutex_init(&vm->stop_lock, NULL);
    vm->irq = (struct irq_chip){ .set_level = kvm_set_irq_level, .ctx = vm };
    vm->nr_vcpus = opts->vcpus;
    vm->acpi.vcpus = opts->vcpus;
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++)
        vm->vcpus[i].fd = -1;
    vm->loop = evloop_new();
    if (!vm->loop) {
        snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
        return -errno;
    }
    int rc = open_kvm(vm, err, errlen);
    if (rc == 0)
        rc = create_vm_fd(vm, err, errlen);
    if (rc == 0)
        rc = map_ram(vm, opts->mem_mib, err, errlen);
    return rc;
}

int vm_alloc_mmio_dev(struct vm *vm, uint32_t size, uint64_t *base, unsigned *gsi)
{
    struct acpi_config *a = &vm->acpi;

    if (a->nr_devs == ACPI_MAX_MMIO_DEVS || size > LAYOUT_VIRTIO_STRIDE)
        return -ENOSPC;
    *base = LAYOUT_VIRTIO_MMIO + a->nr_devs * LAYOUT_VIRTIO_STRIDE;
    *gsi = LAYOUT_VIRTIO_GSI + a->nr_devs;
    a->devs[a->nr_devs++] = (struct acpi_mmio_dev){ .base = *base, .size = size, .gsi = *gsi };
    return 0;
}

/* Reads a whole file (kernel or initrd) into memory. */
static int read_file(const char *path, const char *what, uint8_t **data, size_t *len, char *err,
                     size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    *len = (size_t)st.st_size;
    *data = malloc(*len ? *len : 1);
    size_t got = 0;
    while (*data && got < *len) {
        ssize_t n = read(fd, *data + got, *len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!*data || got != *len) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path,
                 *data ? "short read" : "out of memory");
        free(*data);
        *data = NULL;
        return -EIO;
    }
    return 0;
}

static int load_images(struct vm *vm, const struct vmm_options *o, struct boot_kernel *k,
                       char *err, size_t errlen)
{
    uint8_t *file = NULL;
    size_t len;
    uint64_t initrd_addr = 0, initrd_size = 0;

    int rc = read_file(o->kernel, "kernel", &file, &len, err, errlen);
    if (rc == 0)
        rc = boot_load_kernel(&vm->mem, &vm->ram, file, len, k, err, errlen);
    free(file);
    file = NULL;
    if (rc == 0 && o->initrd) {
        rc = read_file(o->initrd, "initrd", &file, &len, err, errlen);
        if (rc == 0)
            rc = boot_load_initrd(&vm->mem, &vm->ram, k, file, len, &initrd_addr, err, errlen);
        initrd_size = len;
        free(file);
    }
    if (rc == 0)
        rc = boot_write_params(&vm->mem, &vm->ram, k, o->cmdline, initrd_addr, initrd_size, err,
                               errlen);
    return rc;
}

static int write_acpi(struct vm *vm, char *err, size_t errlen)
{
    uint8_t *area = gmem_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_END - LAYOUT_ACPI);
    int n = area ? acpi_build(area, LAYOUT_ACPI_END - LAYOUT_ACPI, LAYOUT_ACPI, &vm->acpi)
                 : -E2BIG;

    if (n < 0) {
        snprintf(err, errlen, "cannot build ACPI tables: %s", strerror(-n));
        return n;
    }
    return 0;
}

int vm_load(struct vm *vm, const struct vmm_options *o, char *err, size_t errlen)
{
    struct boot_kernel k;

    int rc = load_images(vm, o, &k, err, errlen);
    if (rc < 0)
        return rc;
    rc = write_acpi(vm, err, errlen);
    if (rc < 0)
        return rc;
    if (x86_write_boot_tables(&vm->mem) < 0) {
        snprintf(err, errlen, "guest memory too small for the boot page tables");
        return -E2BIG;
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        rc = vcpu_create(vm, i, i == 0 ? k.entry : 0, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void vm_stop(struct vm *vm, int code, const char *reason)
{
    pthread_mutex_lock(&vm->stop_lock);
    int first = vm->stop_code < 0;
    if (first)
        vm->stop_code = code;
    pthread_mutex_unlock(&vm->stop_lock);
    if (!first)
        return;
    if (code == VM_EXIT_POWEROFF)
        log_info("%s", reason);
    else
        log_err("%s", reason);
    evloop_stop(vm->loop, code);
}

int vm_run(struct vm *vm)
{
    int rc = vcpu_start_all(vm);

    if (rc < 0) {
        vm_stop(vm, VM_EXIT_SETUP, "cannot start vCPU threads");
    } else {
        rc = evloop_run(vm->loop);
        if (rc < 0)
            vm_stop(vm, VM_EXIT_CRASH, "event loop failed");
    }
    vcpu_stop_all(vm);
    for (unsigned i = 0; vm->dump_regs_on_stop && i < vm->nr_vcpus; i++)
        x86_dump_regs(vm->vcpus[i].fd, i);
    return vm->stop_code < 0 ? VM_EXIT_CRASH : vm->stop_code;
}

void vm_destroy(struct vm *vm)
{
    virtio_blk_destroy(vm->blk);
    if (vm->vsock)
        virtio_vsock_destroy(vm->vsock);
    net_slirp_free(vm->slirp);
    virtio_net_destroy(vm->net);
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++) {
        if (vm->vcpus[i].run)
            munmap(vm->vcpus[i].run, vm->vcpus[i].run_size);
        if (vm->vcpus[i].fd >= 0)
            close(vm->vcpus[i].fd);
    }
    if (vm->ram_host)
        munmap(vm->ram_host, vm->ram_bytes);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    evloop_free(vm->loop);
}
