/* x86_64 boot CPU state (Intel SDM vol. 3: 3.4.5 segment descriptors, 4.5 4-level
 * paging; Linux Documentation/arch/x86/boot.rst "64-bit boot protocol"). */
#include "x86.h"

#include <asm/kvm_para.h>

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "layout.h"
#include "log.h"

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define PTE_PRESENT_RW 0x3ULL
#define PTE_PS 0x80ULL
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING 1ULL
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

/* A GDT entry from flags (G, D/B, L, AVL nibble + access byte), base and limit. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
           ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
           (uint64_t)(limit & 0x0000ffff);
}

int x86_write_boot_tables(const struct guest_mem *mem)
{
    /* The 64-bit TSS descriptor takes two slots (its upper half, base 63:32, is 0). */
    uint64_t gdt[6] = {
        [X86_BOOT_CS / 8] = gdt_entry(0xa09b, 0, 0xfffff),  /* 64-bit code, G=1 L=1 */
        [X86_BOOT_DS / 8] = gdt_entry(0xc093, 0, 0xfffff),  /* data, G=1 D=1 */
        [X86_BOOT_TSS / 8] = gdt_entry(0x808b, 0, 0xfffff), /* busy 64-bit TSS */
    };
    uint64_t idt = 0, pml4 = LAYOUT_PDPT | PTE_PRESENT_RW;

    if (gmem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt)) < 0 ||
        gmem_write(mem, LAYOUT_IDT, &idt, sizeof(idt)) < 0 ||
        gmem_write(mem, LAYOUT_PML4, &pml4, sizeof(pml4)) < 0)
        return -EFAULT;
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t pdpte = (LAYOUT_PD + i * 4096) | PTE_PRESENT_RW;
        if (gmem_write(mem, LAYOUT_PDPT + i * 8, &pdpte, 8) < 0)
            return -EFAULT;
    }
    for (uint64_t i = 0; i < 4 * 512; i++) {
        uint64_t pde = (i << 21) | PTE_PRESENT_RW | PTE_PS;
        if (gmem_write(mem, LAYOUT_PD + i * 8, &pde, 8) < 0)
            return -EFAULT;
    }
    return 0;
}

void x86_cpuid_fixup(struct kvm_cpuid2 *cpuid, unsigned apic_id, unsigned nr_vcpus)
{
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        switch (e->function) {
        case 0x1:
            /* EBX[31:24] initial APIC ID, EBX[23:16] logical processors; EDX.HTT. */
            e->ebx = (e->ebx & 0x0000ffff) | (apic_id << 24) | ((nr_vcpus & 0xff) << 16);
            if (nr_vcpus > 1)
                e->edx |= 1u << 28;
            e->ecx |= 1u << 31;  /* hypervisor present: the guest then finds KVM's leaves */
            break;
        case 0xb:
        case 0x1f:
            e->edx = apic_id;
            break;
        case 0x8000001e:
            e->eax = apic_id;
            break;
        case KVM_CPUID_FEATURES:
            /* No paravirtual spinlock unhalt: a vCPU that halts with interrupts off
             * waiting for a KVM_HC_KICK_CPU that never came hung 2-vCPU guests
             * (seen under nested SVM). Plain queued spinlocks spin instead. */
            e->eax &= ~(1u << KVM_FEATURE_PV_UNHALT);
            break;
        default:
            break;
        }
    }
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type, int code)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = selector, .type = type, .present = 1,
        .dpl = 0, .db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0, .g = 1,
    };
}

int x86_setup_boot_regs(int vcpu_fd, uint64_t entry)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs = {
        .rflags = 0x2, .rip = entry, .rsp = LAYOUT_BOOT_STACK, .rbp = LAYOUT_BOOT_STACK,
        .rsi = LAYOUT_ZERO_PAGE,
    };

    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    flat_segment(&sregs.cs, X86_BOOT_CS, 0xb, 1);
    flat_segment(&sregs.ds, X86_BOOT_DS, 0x3, 0);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.tr = (struct kvm_segment){ .limit = 0xfffff, .selector = X86_BOOT_TSS, .type = 0xb,
                                     .present = 1 };
    sregs.gdt.base = LAYOUT_GDT;
    sregs.gdt.limit = 6 * 8 - 1;
    sregs.idt.base = LAYOUT_IDT;
    sregs.idt.limit = 7;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.cr3 = LAYOUT_PML4;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}

static int set_lapic_lints(int vcpu_fd)
{
    struct kvm_lapic_state lapic;
    uint32_t lvt;

    if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
        return -errno;
    memcpy(&lvt, lapic.regs + APIC_LVT0, 4);
    lvt = (lvt & ~0x700u) | (APIC_MODE_EXTINT << 8);
    memcpy(lapic.regs + APIC_LVT0, &lvt, 4);
    memcpy(&lvt, lapic.regs + APIC_LVT1, 4);
    lvt = (lvt & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(lapic.regs + APIC_LVT1, &lvt, 4);
    return ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

int x86_setup_vcpu(int vcpu_fd)
{
    struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
    union {
        struct kvm_msrs msrs;
        uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    } set = { .msrs.nmsrs = 1 };

    set.msrs.entries[0] = (struct kvm_msr_entry){ .index = MSR_IA32_MISC_ENABLE,
                                                  .data = MISC_ENABLE_FAST_STRING };
    if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
        return -errno;
    if (ioctl(vcpu_fd, KVM_SET_MSRS, &set.msrs) != 1)
        log_warn("could not set IA32_MISC_ENABLE; continuing");
    return set_lapic_lints(vcpu_fd);
}

void x86_dump_regs(int vcpu_fd, unsigned index)
{
    struct kvm_regs r;
    struct kvm_sregs s;

    if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
        log_err("vCPU %u: registers unavailable", index);
        return;
    }
    log_err("vCPU %u: rip=%016llx rsp=%016llx rflags=%016llx", index, r.rip, r.rsp, r.rflags);
    log_err("vCPU %u: rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx", index, r.rax, r.rbx,
            r.rcx, r.rdx);
    log_err("vCPU %u: rsi=%016llx rdi=%016llx rbp=%016llx r8=%016llx", index, r.rsi, r.rdi,
            r.rbp, r.r8);
    log_err("vCPU %u: cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx", index,
            s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
    log_err("vCPU %u: cs=%04x(base %llx) ss=%04x gdt=%llx/%x idt=%llx/%x", index,
            s.cs.selector, s.cs.base, s.ss.selector, s.gdt.base, s.gdt.limit, s.idt.base,
            s.idt.limit);
}
