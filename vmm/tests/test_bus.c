/* bus: registration errors (len 0, overflow, overlap, full table) and dispatch of
 * reads and writes with range-relative offsets; unclaimed reads return all ones. */
#include "../bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

/* A device that records its last access and answers reads with offset + 1 bytes. */
struct rec {
    int reads, writes;
    uint64_t offset;
    unsigned len;
    uint8_t written[8];
};

static void rec_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct rec *r = opaque;

    r->reads++;
    r->offset = offset;
    r->len = len;
    memset(data, (int)(offset + 1), len);
}

static void rec_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct rec *r = opaque;

    r->writes++;
    r->offset = offset;
    r->len = len;
    memcpy(r->written, data, len);
}

static const struct bus_ops rec_ops = { .read = rec_read, .write = rec_write };
static const struct bus_ops no_ops = { 0 };

static void test_register_errors(void)
{
    static struct bus bus;
    struct rec r = { 0 };

    CHECK(bus_register(&bus, 0x100, 0, &rec_ops, &r, "zero") == -EINVAL);
    CHECK(bus_register(&bus, UINT64_MAX, 2, &rec_ops, &r, "wrap") == -EINVAL);
    CHECK(bus_register(&bus, 1, UINT64_MAX, &rec_ops, &r, "wrap") == -EINVAL);
    /* A range ending exactly at 2^64 counts as overflow; one byte lower is fine. */
    CHECK(bus_register(&bus, UINT64_MAX - 0xf, 0x10, &rec_ops, &r, "top") == -EINVAL);
    CHECK(bus_register(&bus, UINT64_MAX - 0x10, 0x10, &rec_ops, &r, "top") == 0);
    CHECK(bus.nr_ranges == 1);
    CHECK(bus_register(&bus, 0x100, 0x10, &rec_ops, &r, "a") == 0);
    CHECK(bus_register(&bus, 0x100, 0x10, &rec_ops, &r, "same") == -EEXIST);
    CHECK(bus_register(&bus, 0x10f, 1, &rec_ops, &r, "last byte") == -EEXIST);
    CHECK(bus_register(&bus, 0xf0, 0x11, &rec_ops, &r, "first byte") == -EEXIST);
    CHECK(bus_register(&bus, 0x104, 2, &rec_ops, &r, "inside") == -EEXIST);
    CHECK(bus_register(&bus, 0x0, 0x1000, &rec_ops, &r, "around") == -EEXIST);
    CHECK(bus_register(&bus, 0xf0, 0x10, &rec_ops, &r, "just below") == 0);
    CHECK(bus_register(&bus, 0x110, 0x10, &rec_ops, &r, "just above") == 0);
    CHECK(bus.nr_ranges == 4);
    for (unsigned i = bus.nr_ranges; i < BUS_MAX_RANGES; i++)
        CHECK(bus_register(&bus, 0x1000 + 0x10 * i, 0x10, &rec_ops, &r, "fill") == 0);
    CHECK(bus.nr_ranges == BUS_MAX_RANGES);
    CHECK(bus_register(&bus, 0x100000, 0x10, &rec_ops, &r, "one too many") == -ENOSPC);
    CHECK(bus.nr_ranges == BUS_MAX_RANGES);
}

static void test_dispatch(void)
{
    static struct bus bus;
    struct rec a = { 0 }, b = { 0 };
    uint8_t data[8];

    CHECK(bus_register(&bus, 0x3f8, 8, &rec_ops, &a, "com1") == 0);
    CHECK(bus_register(&bus, 0xd0000000, 0x1000, &rec_ops, &b, "mmio") == 0);
    CHECK(bus_register(&bus, 0x600, 4, &no_ops, NULL, "deaf") == 0);

    CHECK(bus_read(&bus, 0x3fd, data, 1));
    CHECK(a.reads == 1 && a.offset == 5 && a.len == 1 && data[0] == 6);
    CHECK(bus_read(&bus, 0x3f8, data, 8));
    CHECK(a.reads == 2 && a.offset == 0 && a.len == 8 && data[7] == 1);
    uint32_t v = 0x11223344;
    CHECK(bus_write(&bus, 0xd0000070, &v, 4));
    CHECK(b.writes == 1 && b.offset == 0x70 && b.len == 4 && memcmp(b.written, &v, 4) == 0);
    CHECK(bus_write(&bus, 0xd0000ffc, &v, 4));
    CHECK(b.offset == 0xffc);
    CHECK(a.writes == 0);

    /* Accesses that straddle a range's end, or miss every range. */
    memset(data, 0, sizeof(data));
    CHECK(!bus_read(&bus, 0x3fe, data, 4));
    CHECK(data[0] == 0xff && data[3] == 0xff && data[4] == 0);
    CHECK(!bus_read(&bus, 0xd0000ffe, data, 4));
    CHECK(!bus_read(&bus, 0xcffffffe, data, 4));
    CHECK(!bus_read(&bus, 0x80, data, 1));
    CHECK(!bus_write(&bus, 0xd0001000, &v, 4));
    CHECK(!bus_write(&bus, 0x3f7, &v, 2));
    CHECK(a.reads == 2 && a.writes == 0 && b.reads == 0 && b.writes == 2);

    /* A claimed range without handlers: reads all ones, writes dropped, claimed. */
    memset(data, 0, sizeof(data));
    CHECK(bus_read(&bus, 0x601, data, 1));
    CHECK(data[0] == 0xff && data[1] == 0);
    CHECK(bus_write(&bus, 0x602, &v, 1));
}

/* An address near 2^64 must not wrap into a range at the bottom of the space. */
static void test_wrap(void)
{
    static struct bus bus;
    struct rec r = { 0 };
    uint8_t data[8];

    CHECK(bus_register(&bus, 0, 0x10, &rec_ops, &r, "low") == 0);
    CHECK(!bus_read(&bus, UINT64_MAX - 1, data, 4));
    CHECK(!bus_read(&bus, UINT64_MAX - 3, data, 8));
    CHECK(!bus_write(&bus, UINT64_MAX, data, 8));
    CHECK(r.reads == 0 && r.writes == 0);
    CHECK(bus_read(&bus, 8, data, 8));
    CHECK(!bus_read(&bus, 9, data, 8));
}

int main(void)
{
    test_register_errors();
    test_dispatch();
    test_wrap();
    printf("test_bus: ok\n");
    return 0;
}
