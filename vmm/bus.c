/* Range lookup for port I/O and MMIO exits. A handful of ranges: a linear scan. */
#include "bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
                 void *opaque, const char *name)
{
    uint64_t end;

    if (len == 0 || __builtin_add_overflow(base, len, &end))
        return -EINVAL;
    if (bus->nr_ranges == BUS_MAX_RANGES)
        return -ENOSPC;
    for (unsigned i = 0; i < bus->nr_ranges; i++) {
        const struct bus_range *r = &bus->ranges[i];
        if (base < r->base + r->len && r->base < end)
            return -EEXIST;
    }
    bus->ranges[bus->nr_ranges++] = (struct bus_range){
        .base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
    };
    return 0;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned len)
{
    for (unsigned i = 0; i < bus->nr_ranges; i++) {
        const struct bus_range *r = &bus->ranges[i];
        if (addr >= r->base && len <= r->len && addr - r->base <= r->len - len)
            return r;
    }
    return NULL;
}

bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned len)
{
    const struct bus_range *r = bus_find(bus, addr, len);

    if (!r || !r->ops->read) {
        memset(data, 0xff, len);
        return r != NULL;
    }
    r->ops->read(r->opaque, addr - r->base, data, len);
    return true;
}

bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
    const struct bus_range *r = bus_find(bus, addr, len);

    if (!r || !r->ops->write)
        return r != NULL;
    r->ops->write(r->opaque, addr - r->base, data, len);
    return true;
}
