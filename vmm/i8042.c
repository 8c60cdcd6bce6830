/* Just enough of the i8042 keyboard controller for a guest to reset the machine
 * (Linux reboot=k: command 0xfe "pulse reset line" on port 0x64). No keyboard. */
#include <stdio.h>
#include <string.h>

#include "devices.h"
#include "vm.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64
#define I8042_CMD_RESET 0xfe

static void i8042_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    (void)opaque;
    (void)offset;
    memset(data, 0, len);  /* status: output and input buffers empty */
}

static void i8042_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct vm *vm = opaque;

    (void)len;
    if (offset == I8042_CMD_PORT - I8042_DATA_PORT && *(const uint8_t *)data == I8042_CMD_RESET)
        vm_stop(vm, VM_EXIT_RESET, "guest reset the machine through the i8042 (reboot, "
                "or a kernel panic with panic=-1)");
}

static const struct bus_ops i8042_ops = { .read = i8042_read, .write = i8042_write };

int i8042_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    (void)opts;
    int rc = bus_register(&vm->pio, I8042_DATA_PORT, I8042_CMD_PORT - I8042_DATA_PORT + 1,
                          &i8042_ops, vm, "i8042");
    if (rc < 0)
        snprintf(err, errlen, "i8042: cannot register ports");
    return rc;
}
