/* pvpanic (QEMU docs/specs/pvpanic.rst): one I/O port. Reading it tells the guest
 * which events we understand; the guest writes PANICKED when its kernel panics,
 * and sbx-vmm then stops the guest and says so, instead of a bare reset. */
#include <stdio.h>
#include <string.h>

#include "devices.h"
#include "layout.h"
#include "vm.h"

#define PVPANIC_PANICKED     (1 << 0)
#define PVPANIC_CRASH_LOADED (1 << 1)

static void pvpanic_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    (void)opaque;
    (void)offset;
    memset(data, 0, len);
    *(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct vm *vm = opaque;
    uint8_t v = *(const uint8_t *)data;

    (void)offset;
    (void)len;
    if (v & PVPANIC_PANICKED)
        vm_stop(vm, VM_EXIT_CRASH, "guest kernel panicked (see the guest console)");
    else if (v & PVPANIC_CRASH_LOADED)
        vm_stop(vm, VM_EXIT_CRASH, "guest kernel crashed into its crash kernel");
}

static const struct bus_ops pvpanic_ops = { .read = pvpanic_read, .write = pvpanic_write };

int pvpanic_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    (void)opts;
    int rc = bus_register(&vm->pio, PORT_PVPANIC, 1, &pvpanic_ops, vm, "pvpanic");
    if (rc < 0)
        snprintf(err, errlen, "pvpanic: cannot register port %#x", PORT_PVPANIC);
    return rc;
}
