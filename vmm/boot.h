/* The Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst): loading a
 * bzImage or an ELF vmlinux into guest memory, the initrd, and the zero page
 * (boot_params) with its e820 map. Pure functions over guest_mem: unit-tested. */
#ifndef SBX_VMM_BOOT_H
#define SBX_VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>

#include "guest_mem.h"

struct boot_kernel {
    uint64_t entry;              /* 64-bit entry point (guest-physical) */
    uint64_t end;                /* first byte past what the kernel needs (incl. init_size) */
    bool is_bzimage;
    struct setup_header hdr;     /* from the bzImage, or filled in for an ELF vmlinux */
};

/* Guest RAM of mem_bytes split around the MMIO gap. */
struct boot_ram {
    uint64_t low_end;            /* RAM is [0, low_end) ... */
    uint64_t high_size;          /* ... and [4 GiB, 4 GiB + high_size) */
};

/* Splits mem_bytes of RAM around the MMIO gap (layout.h). */
struct boot_ram boot_ram_layout(uint64_t mem_bytes);

/* Loads a bzImage (protocol >= 2.12 with a 64-bit entry) or an ELF64 x86_64
 * executable from file[0..len) into mem. 0, or -EINVAL / -E2BIG with a reason in err
 * (malformed image, or memory too small). */
int boot_load_kernel(const struct guest_mem *mem, const struct boot_ram *ram, const uint8_t *file,
                     size_t len, struct boot_kernel *k, char *err, size_t errlen);

/* Copies an initrd to the highest page-aligned address that lies above the kernel and
 * below both the end of low RAM and the kernel's initrd_addr_max. Sets *addr.
 * 0, or -E2BIG with a reason in err when it does not fit. */
int boot_load_initrd(const struct guest_mem *mem, const struct boot_ram *ram,
                     const struct boot_kernel *k, const uint8_t *file, size_t len, uint64_t *addr,
                     char *err, size_t errlen);

/* Fills e820 entries for ram (and the reserved ACPI area); returns the count (<= max). */
unsigned boot_e820(struct boot_e820_entry *tab, unsigned max, const struct boot_ram *ram);

/* Writes the command line and the zero page at layout.h's addresses.
 * 0, or -E2BIG if the command line is longer than the kernel accepts. */
int boot_write_params(const struct guest_mem *mem, const struct boot_ram *ram,
                      const struct boot_kernel *k, const char *cmdline, uint64_t initrd_addr,
                      uint64_t initrd_size, char *err, size_t errlen);

#endif
