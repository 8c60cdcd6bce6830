/* ACPI tables for a hardware-reduced x86 guest (ACPI 6.4, chapter 5): RSDP, XSDT,
 * FADT, MADT and a DSDT describing the \_S5 power-off state and each virtio-mmio
 * device (LNRO0005). Debian's kernel finds secondary vCPUs only through the MADT
 * and virtio-mmio devices only through the DSDT. Pure: written into a buffer. */
#ifndef SBX_VMM_ACPI_H
#define SBX_VMM_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_MMIO_DEVS 16

struct acpi_mmio_dev {
    uint64_t base;
    uint32_t size;
    uint32_t gsi;
};

struct acpi_config {
    unsigned vcpus;                                  /* 1..255 */
    struct acpi_mmio_dev devs[ACPI_MAX_MMIO_DEVS];
    unsigned nr_devs;
};

/* Writes the tables into buf, which the guest will see at guest-physical gpa
 * (the RSDP comes first, so gpa must be 16-byte aligned and inside 0xe0000-0xfffff
 * for the kernel's RSDP scan). Returns the bytes used, or -E2BIG / -EINVAL. */
int acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg);

/* Sum of bytes modulo 256 (0 for a valid ACPI table). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
