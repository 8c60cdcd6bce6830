/* vCPU threads and KVM exit handling. A vCPU thread only ever leaves its loop
 * through vm_stop; vcpu_stop_all kicks it with immediate_exit + SIGUSR1. */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "log.h"
#include "vm.h"
#include "x86.h"

#define KICK_SIGNAL SIGUSR1
#define MAX_CPUID_ENTRIES 256

static int set_cpuid(struct vm *vm, struct vcpu *v)
{
    size_t sz = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, sz);
    int rc = -ENOMEM;

    if (!cpuid)
        return rc;
    cpuid->nent = MAX_CPUID_ENTRIES;
    rc = 0;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        rc = -errno;
        goto out;
    }
    x86_cpuid_fixup(cpuid, v->index, vm->nr_vcpus);
    if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
        rc = -errno;
out:
    free(cpuid);
    return rc;
}

int vcpu_create(struct vm *vm, unsigned index, uint64_t entry, char *err, size_t errlen)
{
    struct vcpu *v = &vm->vcpus[index];
    const char *step = "KVM_CREATE_VCPU";
    int rc;

    v->vm = vm;
    v->index = index;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (v->fd < 0)
        goto fail_errno;
    step = "mapping kvm_run";
    int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    void *run = mmap_size > 0 ? mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                                     v->fd, 0) : MAP_FAILED;
    if (run == MAP_FAILED)
        goto fail_errno;
    v->run = run;
    v->run_size = (size_t)mmap_size;
    step = "KVM_SET_CPUID2";
    if ((rc = set_cpuid(vm, v)) < 0)
        goto fail;
    step = "vCPU register set-up";
    if ((rc = x86_setup_vcpu(v->fd)) < 0)
        goto fail;
    if (entry && (rc = x86_setup_boot_regs(v->fd, entry)) < 0)
        goto fail;
    return 0;
fail_errno:
    rc = -errno;
fail:
    snprintf(err, errlen, "vCPU %u: %s: %s", index, step, strerror(-rc));
    return rc;
}

static void handle_io(struct vm *vm, struct kvm_run *run)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;

    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        if (run->io.direction == KVM_EXIT_IO_OUT)
            bus_write(&vm->pio, run->io.port, data, run->io.size);
        else
            bus_read(&vm->pio, run->io.port, data, run->io.size);
    }
}

static void handle_mmio(struct vm *vm, struct kvm_run *run)
{
    if (run->mmio.len > sizeof(run->mmio.data))
        return;
    if (run->mmio.is_write)
        bus_write(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
    else
        bus_read(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
}

static void crash(struct vcpu *v, const char *what, unsigned long long detail)
{
    char reason[160];

    snprintf(reason, sizeof(reason), "vCPU %u: %s (%#llx); guest stopped", v->index, what, detail);
    x86_dump_regs(v->fd, v->index);
    vm_stop(v->vm, VM_EXIT_CRASH, reason);
}

static void handle_system_event(struct vcpu *v, uint32_t type)
{
    if (type == KVM_SYSTEM_EVENT_SHUTDOWN)
        vm_stop(v->vm, VM_EXIT_POWEROFF, "guest powered off");
    else if (type == KVM_SYSTEM_EVENT_RESET)
        vm_stop(v->vm, VM_EXIT_RESET, "guest reset");
    else
        crash(v, "guest system event", type);
}

/* Handles one exit; the vCPU loop goes on until vm_stop. */
static void handle_exit(struct vcpu *v)
{
    struct kvm_run *run = v->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO: handle_io(v->vm, run); break;
    case KVM_EXIT_MMIO: handle_mmio(v->vm, run); break;
    case KVM_EXIT_HLT: break;
    case KVM_EXIT_INTR: break;
    case KVM_EXIT_SHUTDOWN: crash(v, "triple fault (KVM_EXIT_SHUTDOWN)", 0); break;
    case KVM_EXIT_FAIL_ENTRY:
        crash(v, "VM entry failed, hardware reason",
              run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR: crash(v, "KVM internal error, suberror", run->internal.suberror); break;
    case KVM_EXIT_SYSTEM_EVENT: handle_system_event(v, run->system_event.type); break;
    default: crash(v, "unhandled KVM exit reason", run->exit_reason); break;
    }
}

static int stopping(struct vm *vm)
{
    return __atomic_load_n(&vm->stop_code, __ATOMIC_ACQUIRE) >= 0;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    sigset_t set;
    char name[16];

    snprintf(name, sizeof(name), "vcpu%u", v->index);
    pthread_setname_np(pthread_self(), name);
    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!stopping(v->vm)) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            crash(v, "KVM_RUN failed, errno", (unsigned long long)errno);
            break;
        }
        handle_exit(v);
    }
    return NULL;
}

static void kick_handler(int sig)
{
    (void)sig;
}

int vcpu_start_all(struct vm *vm)
{
    struct sigaction sa = { .sa_handler = kick_handler };

    sigemptyset(&sa.sa_mask);
    if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
        return -errno;
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
        if (rc)
            return -rc;
        v->started = 1;
    }
    return 0;
}

void vcpu_stop_all(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        if (!v->started)
            continue;
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
        pthread_kill(v->thread, KICK_SIGNAL);
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        if (vm->vcpus[i].started)
            pthread_join(vm->vcpus[i].thread, NULL);
        vm->vcpus[i].started = 0;
    }
}
