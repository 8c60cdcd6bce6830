/* Guest-physical memory as seen by sbx-vmm and its device models.
 *
 * Device models reach guest memory only through this interface, so they run in
 * unit tests and fuzzers over a plain buffer (one region at guest-physical 0).
 * Every address and length that comes from the guest is checked here, with
 * overflow checks: a bad one yields NULL / -EFAULT, never a fault in the VMM. */
#ifndef SBX_VMM_GUEST_MEM_H
#define SBX_VMM_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 2

struct gmem_region {
    uint64_t gpa;     /* first guest-physical address of the region */
    uint64_t size;    /* bytes */
    uint8_t *host;    /* host mapping of gpa */
};

struct guest_mem {
    struct gmem_region regions[GMEM_MAX_REGIONS];
    unsigned nr_regions;
};

/* Describes a single region [0, size) backed by host (for tests and fuzzers). */
void gmem_init_flat(struct guest_mem *mem, void *host, uint64_t size);

/* Host pointer to [gpa, gpa + len) if that range lies wholly inside one region,
 * else NULL (also on overflow of gpa + len). len 0 is valid if gpa is inside or
 * at the end of a region. */
void *gmem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy between guest memory and a host buffer; 0 or -EFAULT (nothing copied). */
int gmem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len);
int gmem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len);

#endif
