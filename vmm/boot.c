/* Linux x86 boot protocol: kernel and initrd loading, zero page, e820.
 * Follows Documentation/arch/x86/boot.rst, "64-bit boot protocol". */
#include "boot.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"

#define SETUP_HDR_OFFSET  0x1f1
#define HDRS_MAGIC        0x53726448u   /* "HdrS" */
#define BOOT_FLAG_MAGIC   0xaa55
#define MIN_PROTOCOL      0x020c        /* 2.12: xloadflags */
#define LOADER_TYPE_UNDEF 0xff
#define PAGE_SIZE_4K      4096ULL

struct boot_ram boot_ram_layout(uint64_t mem_bytes)
{
    struct boot_ram ram = { .low_end = mem_bytes, .high_size = 0 };

    if (mem_bytes > LAYOUT_MMIO_GAP_START) {
        ram.low_end = LAYOUT_MMIO_GAP_START;
        ram.high_size = mem_bytes - LAYOUT_MMIO_GAP_START;
    }
    return ram;
}

/* Copies len bytes to guest-physical gpa, which must lie in low RAM. */
static int load_bytes(const struct guest_mem *mem, const struct boot_ram *ram, uint64_t gpa,
                      const void *src, uint64_t len)
{
    if (gpa > ram->low_end || len > ram->low_end - gpa)
        return -E2BIG;
    return gmem_write(mem, gpa, src, len) < 0 ? -E2BIG : 0;
}

static int load_bzimage(const struct guest_mem *mem, const struct boot_ram *ram, const uint8_t *file,
                        size_t len, struct boot_kernel *k, char *err, size_t errlen)
{
    struct setup_header *hdr = &k->hdr;

    if (len < SETUP_HDR_OFFSET + sizeof(*hdr)) {
        snprintf(err, errlen, "bzImage too short (%zu bytes)", len);
        return -EINVAL;
    }
    memcpy(hdr, file + SETUP_HDR_OFFSET, sizeof(*hdr));
    if (hdr->version < MIN_PROTOCOL || !(hdr->xloadflags & XLF_KERNEL_64)) {
        snprintf(err, errlen, "bzImage has boot protocol %u.%02u without a 64-bit entry point "
                 "(need 2.12 or later)", hdr->version >> 8, hdr->version & 0xff);
        return -EINVAL;
    }
    uint64_t setup_bytes = ((uint64_t)(hdr->setup_sects ? hdr->setup_sects : 4) + 1) * 512;
    if (setup_bytes >= len) {
        snprintf(err, errlen, "bzImage setup (%llu bytes) covers the whole file",
                 (unsigned long long)setup_bytes);
        return -EINVAL;
    }
    uint64_t payload = len - setup_bytes;
    uint64_t need = payload > hdr->init_size ? payload : hdr->init_size;
    if (load_bytes(mem, ram, LAYOUT_KERNEL, file + setup_bytes, payload) < 0 ||
        need > ram->low_end - LAYOUT_KERNEL) {
        snprintf(err, errlen, "guest memory too small for the kernel (needs %llu MiB of low RAM)",
                 (unsigned long long)((LAYOUT_KERNEL + need) >> 20) + 1);
        return -E2BIG;
    }
    k->is_bzimage = true;
    k->entry = LAYOUT_KERNEL + 0x200;
    k->end = LAYOUT_KERNEL + need;
    return 0;
}

static int check_elf_header(const Elf64_Ehdr *eh, size_t len, char *err, size_t errlen)
{
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
        eh->e_type != ET_EXEC) {
        snprintf(err, errlen, "ELF kernel is not an x86_64 executable");
        return -EINVAL;
    }
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff > len ||
        (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff) {
        snprintf(err, errlen, "ELF kernel has a malformed program header table");
        return -EINVAL;
    }
    return 0;
}

static int load_elf_segment(const struct guest_mem *mem, const struct boot_ram *ram,
                            const uint8_t *file, size_t len, const Elf64_Phdr *ph,
                            struct boot_kernel *k, char *err, size_t errlen)
{
    if (ph->p_filesz > ph->p_memsz || ph->p_offset > len || ph->p_filesz > len - ph->p_offset) {
        snprintf(err, errlen, "ELF segment at offset %llu exceeds the file",
                 (unsigned long long)ph->p_offset);
        return -EINVAL;
    }
    if (ph->p_paddr < LAYOUT_KERNEL) {
        snprintf(err, errlen, "ELF segment at %#llx is below 1 MiB, where the boot tables live",
                 (unsigned long long)ph->p_paddr);
        return -EINVAL;
    }
    if (ph->p_paddr > ram->low_end || ph->p_memsz > ram->low_end - ph->p_paddr) {
        snprintf(err, errlen, "guest memory too small for the kernel (segment at %#llx, %llu bytes)",
                 (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
        return -E2BIG;
    }
    uint8_t *dst = gmem_ptr(mem, ph->p_paddr, ph->p_memsz);
    if (!dst) {
        snprintf(err, errlen, "ELF segment at %#llx is outside guest RAM",
                 (unsigned long long)ph->p_paddr);
        return -E2BIG;
    }
    memcpy(dst, file + ph->p_offset, ph->p_filesz);
    memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    if (ph->p_paddr + ph->p_memsz > k->end)
        k->end = ph->p_paddr + ph->p_memsz;
    return 0;
}

static int load_elf(const struct guest_mem *mem, const struct boot_ram *ram, const uint8_t *file,
                    size_t len, struct boot_kernel *k, char *err, size_t errlen)
{
    Elf64_Ehdr eh;

    if (len < sizeof(eh)) {
        snprintf(err, errlen, "ELF kernel too short");
        return -EINVAL;
    }
    memcpy(&eh, file, sizeof(eh));
    int rc = check_elf_header(&eh, len, err, errlen);
    if (rc < 0)
        return rc;
    unsigned loaded = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, file + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        rc = load_elf_segment(mem, ram, file, len, &ph, k, err, errlen);
        if (rc < 0)
            return rc;
        loaded++;
    }
    if (!loaded) {
        snprintf(err, errlen, "ELF kernel has no loadable segment");
        return -EINVAL;
    }
    /* No setup header in an ELF vmlinux: describe ourselves as a protocol 2.15 loader. */
    k->hdr = (struct setup_header){
        .boot_flag = BOOT_FLAG_MAGIC, .header = HDRS_MAGIC, .version = 0x020f,
        .initrd_addr_max = 0x7fffffff, .kernel_alignment = 0x1000000,
        .cmdline_size = LAYOUT_CMDLINE_MAX - 1,
    };
    k->is_bzimage = false;
    k->entry = eh.e_entry;
    return 0;
}

int boot_load_kernel(const struct guest_mem *mem, const struct boot_ram *ram, const uint8_t *file,
                     size_t len, struct boot_kernel *k, char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    if (len >= 4 && memcmp(file, ELFMAG, SELFMAG) == 0)
        return load_elf(mem, ram, file, len, k, err, errlen);
    uint32_t magic = 0;
    if (len >= 0x206)
        memcpy(&magic, file + 0x202, sizeof(magic));
    if (magic != HDRS_MAGIC) {
        snprintf(err, errlen, "not a Linux kernel: neither a bzImage (no HdrS signature) nor ELF");
        return -EINVAL;
    }
    return load_bzimage(mem, ram, file, len, k, err, errlen);
}

int boot_load_initrd(const struct guest_mem *mem, const struct boot_ram *ram,
                     const struct boot_kernel *k, const uint8_t *file, size_t len, uint64_t *addr,
                     char *err, size_t errlen)
{
    uint64_t top = ram->low_end;

    if (k->hdr.initrd_addr_max && (uint64_t)k->hdr.initrd_addr_max + 1 < top)
        top = (uint64_t)k->hdr.initrd_addr_max + 1;
    uint64_t start = top >= len ? (top - len) & ~(PAGE_SIZE_4K - 1) : 0;
    uint64_t floor = (k->end + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
    if (top < len || start < floor || gmem_write(mem, start, file, len) < 0) {
        snprintf(err, errlen, "guest memory too small for kernel and initrd (initrd %zu KiB, "
                 "%llu KiB free above the kernel)", len >> 10,
                 (unsigned long long)(top > floor ? (top - floor) >> 10 : 0));
        return -E2BIG;
    }
    *addr = start;
    return 0;
}

unsigned boot_e820(struct boot_e820_entry *tab, unsigned max, const struct boot_ram *ram)
{
    struct boot_e820_entry all[] = {
        { .addr = 0, .size = LAYOUT_EBDA, .type = 1 },
        { .addr = LAYOUT_ACPI, .size = LAYOUT_ACPI_END - LAYOUT_ACPI, .type = 2 },
        { .addr = LAYOUT_KERNEL,
          .size = ram->low_end > LAYOUT_KERNEL ? ram->low_end - LAYOUT_KERNEL : 0, .type = 1 },
        { .addr = LAYOUT_HIGH_RAM, .size = ram->high_size, .type = 1 },
    };
    unsigned n = 0;

    for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
        if (all[i].size)
            tab[n++] = all[i];
    return n;
}

int boot_write_params(const struct guest_mem *mem, const struct boot_ram *ram,
                      const struct boot_kernel *k, const char *cmdline, uint64_t initrd_addr,
                      uint64_t initrd_size, char *err, size_t errlen)
{
    struct boot_params bp;
    size_t cmdlen = strlen(cmdline) + 1;
    uint64_t limit = k->hdr.cmdline_size ? (uint64_t)k->hdr.cmdline_size + 1 : 256;

    if (limit > LAYOUT_CMDLINE_MAX)
        limit = LAYOUT_CMDLINE_MAX;
    if (cmdlen > limit) {
        snprintf(err, errlen, "kernel command line is %zu bytes; this kernel takes at most %llu",
                 cmdlen - 1, (unsigned long long)limit - 1);
        return -E2BIG;
    }
    memset(&bp, 0, sizeof(bp));
    bp.hdr = k->hdr;
    bp.hdr.type_of_loader = LOADER_TYPE_UNDEF;
    bp.hdr.loadflags |= CAN_USE_HEAP;
    bp.hdr.heap_end_ptr = 0xfe00;
    bp.hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
    bp.hdr.ramdisk_image = (uint32_t)initrd_addr;
    bp.hdr.ramdisk_size = (uint32_t)initrd_size;
    bp.e820_entries = boot_e820(bp.e820_table, E820_MAX_ENTRIES_ZEROPAGE, ram);
    if (gmem_write(mem, LAYOUT_CMDLINE, cmdline, cmdlen) < 0 ||
        gmem_write(mem, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)) < 0) {
        snprintf(err, errlen, "guest memory too small for the boot parameters");
        return -E2BIG;
    }
    return 0;
}
