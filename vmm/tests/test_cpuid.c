/* x86: x86_cpuid_fixup on a synthetic KVM CPUID table (APIC IDs in leaves 0x1, 0xb,
 * 0x1f and 0x8000001e, the logical processor count, HTT and the hypervisor bit, and
 * every other leaf untouched), and x86_write_boot_tables over a flat buffer: the
 * boot GDT's 64-bit code and data descriptors, and page tables that identity-map
 * the first 4 GiB with 2 MiB pages, checked by walking them like the MMU. */
#include "../x86.h"
#include "../layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

/* ---- CPUID ---- */

static const struct kvm_cpuid_entry2 template[] = {
    { .function = 0x0, .eax = 0x1f, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 },
    { .function = 0x1, .eax = 0x000906ea, .ebx = 0xaa55beef, .ecx = 0x7ffafbff,
      .edx = 0x0fabfbff },
    { .function = 0x7, .ebx = 0x12345678 },
    { .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1,
      .ebx = 1, .ecx = 0x100, .edx = 0xdead },
    { .function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 4,
      .ebx = 1, .ecx = 0x201, .edx = 0xdead },
    { .function = 0x1f, .index = 0, .eax = 1, .edx = 0xdead },
    { .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
    { .function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800 },
    { .function = 0x8000001e, .eax = 0xdead, .ebx = 0x100, .ecx = 0x0 },
};
#define NENT (sizeof(template) / sizeof(template[0]))

static struct kvm_cpuid2 *make_cpuid(void)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(template));

    CHECK(c);
    c->nent = NENT;
    memcpy(c->entries, template, sizeof(template));
    return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == fn && c->entries[i].index == idx)
            return &c->entries[i];
    CHECK(0);
    return NULL;
}

static void check_fixup(unsigned apic_id, unsigned vcpus)
{
    struct kvm_cpuid2 *c = make_cpuid();

    x86_cpuid_fixup(c, apic_id, vcpus);
    const struct kvm_cpuid_entry2 *l1 = leaf(c, 0x1, 0);
    CHECK(l1->ebx >> 24 == apic_id);                     /* initial APIC ID */
    CHECK(((l1->ebx >> 16) & 0xff) == vcpus);            /* logical processors */
    CHECK((l1->ebx & 0xffff) == (template[1].ebx & 0xffff));
    CHECK(l1->ecx & (1u << 31));                         /* hypervisor present */
    CHECK((l1->ecx & 0x7fffffff) == template[1].ecx);
    CHECK(l1->eax == template[1].eax);
    if (vcpus > 1)
        CHECK(l1->edx & (1u << 28));                     /* HTT */
    CHECK((l1->edx & ~(1u << 28)) == (template[1].edx & ~(1u << 28)));
    for (uint32_t idx = 0; idx < 2; idx++) {             /* x2APIC ID in every subleaf */
        const struct kvm_cpuid_entry2 *b = leaf(c, 0xb, idx);
        CHECK(b->edx == apic_id);
        CHECK(b->eax == template[3 + idx].eax && b->ecx == template[3 + idx].ecx);
    }
    CHECK(leaf(c, 0x1f, 0)->edx == apic_id);
    CHECK(leaf(c, 0x8000001e, 0)->eax == apic_id);
    CHECK(leaf(c, 0x8000001e, 0)->ebx == template[8].ebx);
    /* Leaves it has no business with are untouched. */
    CHECK(memcmp(leaf(c, 0x0, 0), &template[0], sizeof(template[0])) == 0);
    CHECK(memcmp(leaf(c, 0x7, 0), &template[2], sizeof(template[2])) == 0);
    CHECK(memcmp(leaf(c, 0x40000000, 0), &template[6], sizeof(template[6])) == 0);
    CHECK(memcmp(leaf(c, 0x80000001, 0), &template[7], sizeof(template[7])) == 0);
    free(c);
}

static void test_cpuid(void)
{
    check_fixup(0, 1);
    check_fixup(1, 2);
    check_fixup(3, 4);
    check_fixup(63, 64);
    check_fixup(0, 64);

    /* A single vCPU leaves HTT as KVM reported it (clear here). */
    struct kvm_cpuid2 *c = make_cpuid();
    c->entries[1].edx &= ~(1u << 28);
    x86_cpuid_fixup(c, 0, 1);
    CHECK(!(leaf(c, 1, 0)->edx & (1u << 28)));
    free(c);

    /* An empty table is fine. */
    struct kvm_cpuid2 empty = { .nent = 0 };
    x86_cpuid_fixup(&empty, 0, 1);
}

/* ---- boot tables ---- */

#define MEM_SIZE (1u << 20)

static uint64_t get64(const uint8_t *m, uint64_t gpa)
{
    uint64_t v;

    memcpy(&v, m + gpa, 8);
    return v;
}

struct desc {
    uint32_t base, limit;
    uint8_t access;   /* P, DPL, S, type */
    uint8_t flags;    /* G, D/B, L, AVL */
};

static struct desc decode(uint64_t d)
{
    return (struct desc){
        .limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000)),
        .base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000)),
        .access = (uint8_t)(d >> 40),
        .flags = (uint8_t)((d >> 52) & 0xf),
    };
}

/* The physical address va maps to, or ~0 if a level is not present. */
static uint64_t walk(const uint8_t *m, uint64_t va)
{
    uint64_t pml4e = get64(m, LAYOUT_PML4 + 8 * ((va >> 39) & 511));
    if (!(pml4e & 1))
        return ~0ULL;
    uint64_t pdpt = pml4e & 0x000ffffffffff000ULL;
    CHECK(pdpt + 4096 <= MEM_SIZE);
    uint64_t pdpte = get64(m, pdpt + 8 * ((va >> 30) & 511));
    if (!(pdpte & 1))
        return ~0ULL;
    CHECK(!(pdpte & 0x80));                              /* no 1 GiB pages */
    uint64_t pd = pdpte & 0x000ffffffffff000ULL;
    CHECK(pd + 4096 <= MEM_SIZE);
    uint64_t pde = get64(m, pd + 8 * ((va >> 21) & 511));
    if (!(pde & 1))
        return ~0ULL;
    CHECK(pde & 0x80);                                   /* 2 MiB page */
    CHECK(pde & 0x2);                                    /* writable */
    return (pde & 0x000fffffffe00000ULL) | (va & 0x1fffff);
}

static void test_boot_tables(void)
{
    uint8_t *m = malloc(MEM_SIZE);
    struct guest_mem mem;

    CHECK(m);
    memset(m, 0, MEM_SIZE);
    gmem_init_flat(&mem, m, MEM_SIZE);
    CHECK(x86_write_boot_tables(&mem) == 0);

    CHECK(get64(m, LAYOUT_GDT) == 0);                    /* null descriptor */
    struct desc cs = decode(get64(m, LAYOUT_GDT + X86_BOOT_CS));
    CHECK(cs.base == 0 && cs.limit == 0xfffff);
    CHECK(cs.access == 0x9b);                            /* present, ring 0, code, exec/read */
    CHECK(cs.flags & 0x8);                               /* G */
    CHECK(cs.flags & 0x2);                               /* L: 64-bit */
    CHECK(!(cs.flags & 0x4));                            /* D must be 0 when L is 1 */
    struct desc ds = decode(get64(m, LAYOUT_GDT + X86_BOOT_DS));
    CHECK(ds.base == 0 && ds.limit == 0xfffff);
    CHECK(ds.access == 0x93);                            /* present, ring 0, data, r/w */
    CHECK((ds.flags & 0xc) == 0xc && !(ds.flags & 0x2)); /* G, D/B; not L */
    CHECK(get64(m, LAYOUT_IDT) == 0);                    /* empty IDT */

    /* PML4[0] -> PDPT; PDPT[0..3] -> four PDs; PD entries 2 MiB identity pages. */
    CHECK(get64(m, LAYOUT_PML4) == (LAYOUT_PDPT | 3));
    for (uint64_t i = 1; i < 512; i++)
        CHECK(get64(m, LAYOUT_PML4 + 8 * i) == 0);
    for (uint64_t i = 0; i < 4; i++)
        CHECK(get64(m, LAYOUT_PDPT + 8 * i) == ((LAYOUT_PD + 4096 * i) | 3));
    for (uint64_t i = 4; i < 512; i++)
        CHECK(get64(m, LAYOUT_PDPT + 8 * i) == 0);
    for (uint64_t i = 0; i < 2048; i++)
        CHECK(get64(m, LAYOUT_PD + 8 * i) == ((i << 21) | 0x83));

    static const uint64_t va[] = { 0, 0x7000, 0x100200, 0x1fffff, 0x200000, 0x3fffffff,
                                   0x40000000, LAYOUT_MMIO_GAP_START, LAYOUT_IOAPIC,
                                   LAYOUT_LAPIC + 0x20, 0xffffffff };
    for (size_t i = 0; i < sizeof(va) / sizeof(va[0]); i++)
        CHECK(walk(m, va[i]) == va[i]);
    CHECK(walk(m, 0x100000000ULL) == ~0ULL);             /* nothing above 4 GiB */
    CHECK(walk(m, 0x8000000000ULL) == ~0ULL);

    /* The tables do not run into the zero page or the command line. */
    CHECK(LAYOUT_PD + 4 * 4096 <= LAYOUT_CMDLINE);
    CHECK(LAYOUT_ZERO_PAGE + 4096 <= LAYOUT_PML4);

    /* Guest memory too small for the tables: -EFAULT, nothing written past it. */
    static const uint64_t sizes[] = { 0, 0x400, 0x600, 0x9000, 0xa000, 0xb000, 0xc000,
                                      LAYOUT_PD + 4 * 4096 - 8 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *small = malloc(sizes[i] ? sizes[i] : 1);
        CHECK(small);
        gmem_init_flat(&mem, small, sizes[i]);
        CHECK(x86_write_boot_tables(&mem) == -EFAULT);
        free(small);
    }
    gmem_init_flat(&mem, m, LAYOUT_PD + 4 * 4096);
    CHECK(x86_write_boot_tables(&mem) == 0);
    free(m);
}

int main(void)
{
    test_cpuid();
    test_boot_tables();
    printf("test_cpuid: ok\n");
    return 0;
}
