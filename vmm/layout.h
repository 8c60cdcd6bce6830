/* Guest-physical memory map of an sbx-vmm guest (x86_64).
 *
 *   0x000500  GDT                       0x009000  PML4, 0xa000 PDPT, 0xb000-0xefff 4 PDs
 *   0x000540  IDT (empty)               0x020000  kernel command line
 *   0x007000  zero page (boot_params)   0x09fc00  end of low RAM (EBDA and BIOS area above)
 *   0x008ff0  initial stack             0x0e0000  ACPI tables (RSDP first), up to 0xfffff
 *   0x100000  kernel                    below MMIO_GAP_START: the initrd, at the top of low RAM
 *   MMIO_GAP_START..4 GiB: devices (virtio-mmio windows, IOAPIC, LAPIC); RAM beyond
 *   MMIO_GAP_START continues at 4 GiB. */
#ifndef SBX_VMM_LAYOUT_H
#define SBX_VMM_LAYOUT_H

#define LAYOUT_GDT           0x500ULL
#define LAYOUT_IDT           0x540ULL
#define LAYOUT_ZERO_PAGE     0x7000ULL
#define LAYOUT_BOOT_STACK    0x8ff0ULL
#define LAYOUT_PML4          0x9000ULL
#define LAYOUT_PDPT          0xa000ULL
#define LAYOUT_PD            0xb000ULL   /* 4 pages: identity map of 4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE       0x20000ULL
#define LAYOUT_CMDLINE_MAX   4096ULL
#define LAYOUT_EBDA          0x9fc00ULL
#define LAYOUT_ACPI          0xe0000ULL
#define LAYOUT_ACPI_END      0x100000ULL
#define LAYOUT_KERNEL        0x100000ULL
#define LAYOUT_MMIO_GAP_START 0xc0000000ULL
#define LAYOUT_HIGH_RAM      0x100000000ULL
#define LAYOUT_VIRTIO_MMIO   0xd0000000ULL  /* first virtio-mmio window */
#define LAYOUT_VIRTIO_STRIDE 0x1000ULL
#define LAYOUT_VIRTIO_GSI    5              /* first GSI of virtio devices */
#define LAYOUT_IOAPIC        0xfec00000ULL
#define LAYOUT_LAPIC         0xfee00000ULL
#define LAYOUT_TSS_ADDR      0xfffbd000ULL
#define LAYOUT_IDENTITY_MAP  0xfffbc000ULL

/* I/O ports of sbx-vmm's own devices. */
#define PORT_PVPANIC         0x505
#define PORT_ACPI_SLEEP_CTL  0x600
#define PORT_ACPI_SLEEP_STS  0x601
#define PORT_ACPI_RESET      0x602
#define ACPI_RESET_VALUE     0x1
#define ACPI_S5_SLP_TYP      5

#endif
