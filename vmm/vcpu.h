/* vCPU threads: creation, the KVM_RUN loop and its exits, kick and join. */
#ifndef SBX_VMM_VCPU_H
#define SBX_VMM_VCPU_H

#include <stddef.h>
#include <stdint.h>

struct vm;

/* Creates vCPU index with its CPUID, FPU, MSRs and LAPIC; the boot vCPU (entry != 0)
 * also gets the 64-bit entry registers. 0, or negative errno with a reason in err. */
int vcpu_create(struct vm *vm, unsigned index, uint64_t entry, char *err, size_t errlen);

/* Starts one thread per vCPU. 0 or negative errno. */
int vcpu_start_all(struct vm *vm);

/* Kicks every vCPU out of KVM_RUN and joins its thread. Call after vm_stop. */
void vcpu_stop_all(struct vm *vm);

#endif
