/* guest_mem: bounds of gmem_ptr / gmem_read / gmem_write over one flat region and
 * over two regions with a hole, including overflow of gpa + len near UINT64_MAX. */
#include "../guest_mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

static void test_flat(void)
{
    enum { SIZE = 4096 };
    uint8_t *buf = calloc(1, SIZE);
    struct guest_mem mem;
    uint8_t tmp[16] = { 0 };

    CHECK(buf);
    gmem_init_flat(&mem, buf, SIZE);
    CHECK(mem.nr_regions == 1);
    CHECK(gmem_ptr(&mem, 0, SIZE) == buf);
    CHECK(gmem_ptr(&mem, 0, 0) == buf);
    CHECK(gmem_ptr(&mem, SIZE - 1, 1) == buf + SIZE - 1);
    CHECK(gmem_ptr(&mem, SIZE, 0) == buf + SIZE);       /* len 0 at the end */
    CHECK(gmem_ptr(&mem, SIZE, 1) == NULL);
    CHECK(gmem_ptr(&mem, SIZE + 1, 0) == NULL);
    CHECK(gmem_ptr(&mem, 0, SIZE + 1) == NULL);
    CHECK(gmem_ptr(&mem, 1, SIZE) == NULL);
    CHECK(gmem_ptr(&mem, UINT64_MAX, 1) == NULL);       /* gpa + len overflows */
    CHECK(gmem_ptr(&mem, UINT64_MAX, 0) == NULL);
    CHECK(gmem_ptr(&mem, 1, UINT64_MAX) == NULL);
    CHECK(gmem_ptr(&mem, UINT64_MAX - 10, 20) == NULL); /* wraps to a small end */
    CHECK(gmem_ptr(&mem, 0, UINT64_MAX) == NULL);

    memcpy(tmp, "0123456789abcdef", 16);
    CHECK(gmem_write(&mem, SIZE - 16, tmp, 16) == 0);
    CHECK(memcmp(buf + SIZE - 16, tmp, 16) == 0);
    CHECK(gmem_write(&mem, SIZE - 15, tmp, 16) == -EFAULT);
    CHECK(buf[SIZE - 15] == '1');                        /* nothing copied */
    memset(tmp, 0, sizeof(tmp));
    CHECK(gmem_read(&mem, SIZE - 16, tmp, 16) == 0);
    CHECK(memcmp(tmp, "0123456789abcdef", 16) == 0);
    CHECK(gmem_read(&mem, UINT64_MAX - 7, tmp, 16) == -EFAULT);
    CHECK(gmem_read(&mem, SIZE, tmp, 0) == 0);
    CHECK(gmem_write(&mem, SIZE + 4096, tmp, 1) == -EFAULT);
    free(buf);
}

/* Low RAM [0, 1 MiB) and "high" RAM [4 GiB, 4 GiB + 64 KiB), as sbx-vmm splits it. */
static void test_two_regions(void)
{
    uint8_t *low = calloc(1, 1 << 20), *high = calloc(1, 1 << 16);
    struct guest_mem mem = { .nr_regions = 2 };
    const uint64_t hi = 1ULL << 32;

    CHECK(low && high);
    mem.regions[0] = (struct gmem_region){ .gpa = 0, .size = 1 << 20, .host = low };
    mem.regions[1] = (struct gmem_region){ .gpa = hi, .size = 1 << 16, .host = high };
    CHECK(gmem_ptr(&mem, 0x1000, 8) == low + 0x1000);
    CHECK(gmem_ptr(&mem, hi, 8) == high);
    CHECK(gmem_ptr(&mem, hi + 0xfff8, 8) == high + 0xfff8);
    CHECK(gmem_ptr(&mem, hi + 0x10000, 0) == high + 0x10000);
    CHECK(gmem_ptr(&mem, hi + 0xfff9, 8) == NULL);
    CHECK(gmem_ptr(&mem, hi - 1, 2) == NULL);             /* straddles the gap start */
    CHECK(gmem_ptr(&mem, (1 << 20) - 4, 8) == NULL);      /* runs off low RAM */
    CHECK(gmem_ptr(&mem, 1 << 20, 1) == NULL);            /* in the hole */
    CHECK(gmem_ptr(&mem, hi / 2, 1) == NULL);
    CHECK(gmem_ptr(&mem, 0, hi + 8) == NULL);             /* spans both regions */
    CHECK(gmem_ptr(&mem, hi + 8, UINT64_MAX - 4) == NULL);
    uint32_t v = 0xdeadbeef, r = 0;
    CHECK(gmem_write(&mem, hi + 0x100, &v, 4) == 0);
    CHECK(gmem_read(&mem, hi + 0x100, &r, 4) == 0 && r == v);
    CHECK(memcmp(high + 0x100, &v, 4) == 0);
    CHECK(gmem_write(&mem, hi - 2, &v, 4) == -EFAULT);
    free(low);
    free(high);
}

/* No regions at all: everything misses. */
static void test_empty(void)
{
    struct guest_mem mem = { .nr_regions = 0 };

    CHECK(gmem_ptr(&mem, 0, 0) == NULL);
    CHECK(gmem_ptr(&mem, 0, 1) == NULL);
}

int main(void)
{
    test_flat();
    test_two_regions();
    test_empty();
    printf("test_guest_mem: ok\n");
    return 0;
}
