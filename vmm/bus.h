/* The device bus: port I/O and MMIO ranges dispatched to device ops tables.
 *
 * A vCPU thread that takes an I/O exit calls bus_read/bus_write; the device's
 * handler runs on that vCPU thread, so a device whose state is also touched by
 * the event loop or another vCPU protects it with its own lock. Devices are
 * registered at set-up, before any vCPU runs; the bus is read-only afterwards. */
#ifndef SBX_VMM_BUS_H
#define SBX_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_RANGES 32

struct bus_ops {
    /* offset is relative to the range's base; len is 1, 2, 4 or 8. A read that
     * the device does not decode must still fill data (zeros or all ones). */
    void (*read)(void *opaque, uint64_t offset, void *data, unsigned len);
    void (*write)(void *opaque, uint64_t offset, const void *data, unsigned len);
};

struct bus_range {
    uint64_t base, len;
    const struct bus_ops *ops;
    void *opaque;
    const char *name;
};

struct bus {
    struct bus_range ranges[BUS_MAX_RANGES];
    unsigned nr_ranges;
};

/* Adds [base, base + len). -EEXIST if it overlaps a range, -ENOSPC if full,
 * -EINVAL for len 0 or overflow. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
                 void *opaque, const char *name);

/* Dispatches an access wholly inside one range; false if none claims it (a read
 * then returns all ones, a write is dropped). */
bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned len);

#endif
