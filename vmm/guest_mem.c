/* Bounds-checked access to guest-physical memory. */
#include "guest_mem.h"

#include <errno.h>
#include <string.h>

void gmem_init_flat(struct guest_mem *mem, void *host, uint64_t size)
{
    memset(mem, 0, sizeof(*mem));
    mem->regions[0] = (struct gmem_region){ .gpa = 0, .size = size, .host = host };
    mem->nr_regions = 1;
}

void *gmem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(gpa, len, &end))
        return NULL;
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct gmem_region *r = &mem->regions[i];
        if (gpa >= r->gpa && end <= r->gpa + r->size)
            return r->host + (gpa - r->gpa);
    }
    return NULL;
}

int gmem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len)
{
    const void *src = gmem_ptr(mem, gpa, len);

    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

int gmem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len)
{
    void *dst = gmem_ptr(mem, gpa, len);

    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}
