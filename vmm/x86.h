/* x86_64 CPU state for the 64-bit Linux entry: GDT, identity page tables, CPUID
 * per vCPU, and the vCPU registers (set through KVM). */
#ifndef SBX_VMM_X86_H
#define SBX_VMM_X86_H

#include <stdint.h>
#include <linux/kvm.h>

#include "guest_mem.h"

/* Boot GDT selectors required by the 64-bit boot protocol. */
#define X86_BOOT_CS 0x10
#define X86_BOOT_DS 0x18
#define X86_BOOT_TSS 0x20

/* Writes the boot GDT, an empty IDT and page tables identity-mapping the first
 * 4 GiB with 2 MiB pages (layout.h addresses). 0 or -EFAULT. */
int x86_write_boot_tables(const struct guest_mem *mem);

/* Adjusts KVM's supported CPUID for vCPU apic_id of nr_vcpus: initial APIC IDs
 * (leaves 0x1, 0xb, 0x8000001e), the logical processor count, and the hypervisor
 * bit, without which Linux ignores KVM's paravirtual leaves (kvmclock); hides
 * KVM_FEATURE_PV_UNHALT (see x86.c). */
void x86_cpuid_fixup(struct kvm_cpuid2 *cpuid, unsigned apic_id, unsigned nr_vcpus);

/* Sets the registers of a vCPU for the 64-bit entry at entry (boot vCPU only):
 * long mode, paging on, flat segments, RSI = zero page. 0 or negative errno. */
int x86_setup_boot_regs(int vcpu_fd, uint64_t entry);

/* Per-vCPU set-up for every vCPU: FPU, MSRs, LAPIC LINT0/LINT1. 0 or negative errno. */
int x86_setup_vcpu(int vcpu_fd);

/* Logs the vCPU's registers at error level (for crash reports). */
void x86_dump_regs(int vcpu_fd, unsigned index);

#endif
