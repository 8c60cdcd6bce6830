/* ACPI hardware-reduced sleep and reset registers (ACPI 6.4 sections 4.8.3.7,
 * 4.8.3.6): the guest powers off by writing SLP_TYP(\_S5) | SLP_EN to the sleep
 * control register, and resets by writing the FADT's reset value. */
#include <stdio.h>
#include <string.h>

#include "devices.h"
#include "layout.h"
#include "vm.h"

#define SLP_EN        0x20
#define SLP_TYP(v)    (((v) >> 2) & 0x7)

static void acpi_pm_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    (void)opaque;
    (void)offset;
    memset(data, 0, len);
}

static void acpi_pm_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct vm *vm = opaque;
    uint8_t v = *(const uint8_t *)data;

    (void)len;
    if (offset == PORT_ACPI_SLEEP_CTL - PORT_ACPI_SLEEP_CTL && (v & SLP_EN) &&
        SLP_TYP(v) == ACPI_S5_SLP_TYP)
        vm_stop(vm, VM_EXIT_POWEROFF, "guest powered off");
    else if (offset == PORT_ACPI_RESET - PORT_ACPI_SLEEP_CTL && v == ACPI_RESET_VALUE)
        vm_stop(vm, VM_EXIT_RESET, "guest reset the machine through ACPI (reboot, or a "
                "kernel panic with panic=-1)");
}

static const struct bus_ops acpi_pm_ops = { .read = acpi_pm_read, .write = acpi_pm_write };

int acpi_pm_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    (void)opts;
    int rc = bus_register(&vm->pio, PORT_ACPI_SLEEP_CTL, PORT_ACPI_RESET - PORT_ACPI_SLEEP_CTL + 1,
                          &acpi_pm_ops, vm, "acpi-pm");
    if (rc < 0)
        snprintf(err, errlen, "ACPI power management: cannot register ports");
    return rc;
}
