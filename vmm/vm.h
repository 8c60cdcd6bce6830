/* One KVM virtual machine: the internal API that ties sbx-vmm together.
 *
 * Life cycle, all on the main thread: vm_create (KVM, RAM, irqchip), vm_add_devices
 * (the device table in devices.c), vm_load (kernel, initrd, boot tables, ACPI),
 * vm_run (vCPU threads + the event loop until the guest stops), vm_destroy.
 * vm_stop is the one way anything (a vCPU exit, a device, a signal) ends the run. */
#ifndef SBX_VMM_VM_H
#define SBX_VMM_VM_H

#include <pthread.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "acpi.h"
#include "boot.h"
#include "bus.h"
#include "evloop.h"
#include "guest_mem.h"
#include "irq.h"
#include "options.h"

struct virtio_vsock;
struct virtio_blk;
struct virtio_net;
struct net_slirp;

/* sbx-vmm's exit status (also documented in --help). */
enum vm_exit {
    VM_EXIT_POWEROFF = 0,   /* the guest powered off */
    VM_EXIT_SETUP = 1,      /* set-up failed before the guest ran */
    VM_EXIT_RESET = 2,      /* the guest reset (reboot, or a panic with panic=-1) */
    VM_EXIT_CRASH = 3,      /* triple fault, KVM internal error, failed entry, VMM error */
};

struct vcpu {
    struct vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    size_t run_size;          /* bytes mapped at run */
    pthread_t thread;
    int started;
};

struct vm {
    int kvm_fd, vm_fd;
    struct guest_mem mem;
    struct boot_ram ram;
    uint8_t *ram_host;        /* one mapping: low RAM, then high RAM */
    uint64_t ram_bytes;
    struct bus pio, mmio;
    struct irq_chip irq;
    struct evloop *loop;
    struct acpi_config acpi;  /* devices add their virtio-mmio windows here */
    struct virtio_vsock *vsock;  /* NULL without --vsock-uds */
    struct virtio_blk *blk;      /* NULL without --disk */
    struct virtio_net *net;      /* NULL without --net user */
    struct net_slirp *slirp;     /* its back end */
    unsigned nr_vcpus;
    struct vcpu vcpus[VMM_MAX_VCPUS];
    int stop_code;            /* -1 while running */
    int dump_regs_on_stop;    /* log every vCPU's registers once stopped (signals) */
    pthread_mutex_t stop_lock;
};

/* Opens /dev/kvm, creates the VM with its in-kernel irqchip (no PIT), and maps
 * opts->mem_mib of guest RAM. 0, or negative errno with a reason in err. */
int vm_create(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);

/* Runs every set-up function of the device table (devices.c). 0 or negative errno. */
int vm_add_devices(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);

/* Loads kernel and initrd, writes the zero page, boot GDT/page tables and ACPI
 * tables, and creates the vCPUs. Call after vm_add_devices. 0 or negative errno. */
int vm_load(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen);

/* Next free virtio-mmio window and GSI, recorded for the ACPI DSDT. 0 or -ENOSPC. */
int vm_alloc_mmio_dev(struct vm *vm, uint32_t size, uint64_t *base, unsigned *gsi);

/* Starts the vCPUs and runs the event loop until vm_stop; returns an enum vm_exit. */
int vm_run(struct vm *vm);

/* Ends the run with code (enum vm_exit) and a reason logged once; the first call
 * wins. Safe from any thread. */
void vm_stop(struct vm *vm, int code, const char *reason);

/* Frees everything vm_create / vm_load made. */
void vm_destroy(struct vm *vm);

#endif
