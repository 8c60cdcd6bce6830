/* acpi: the tables are read back the way a guest kernel would: RSDP checksums and
 * revision, XSDT -> FADT and MADT, FADT -> DSDT, every table's length and checksum
 * inside the buffer; the FADT's hardware-reduced flag and I/O port registers; one
 * enabled Local APIC per vCPU and the IOAPIC in the MADT; the DSDT's AML walked
 * object by object (_S5_, COM1 as PNP0501, a LNRO0005 device per virtio-mmio window
 * with its base and GSI). Too small a buffer must fail without writing past it. */
#include "../acpi.h"
#include "../layout.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The tables as built: buf[0..len) seen by the guest at gpa. */
struct tables {
    const uint8_t *buf;
    size_t len;
    uint64_t gpa;
};

/* The table with signature sig at guest address addr, checked like a guest would. */
static const uint8_t *table_at(const struct tables *t, uint64_t addr, const char sig[4])
{
    CHECK(addr >= t->gpa && addr - t->gpa <= t->len);
    size_t off = (size_t)(addr - t->gpa);
    CHECK(t->len - off >= 36);
    const uint8_t *p = t->buf + off;
    uint32_t len = get32(p + 4);
    CHECK(len >= 36 && len <= t->len - off);
    CHECK(memcmp(p, sig, 4) == 0);
    CHECK(acpi_checksum(p, len) == 0);
    CHECK(memcmp(p + 10, "SBXVMM", 6) == 0);             /* OEM ID */
    return p;
}

/* Generic Address Structure: a byte-wide SystemIO register at port. */
static void check_gas_io8(const uint8_t *g, uint16_t port)
{
    CHECK(g[0] == 1);          /* SystemIO */
    CHECK(g[1] == 8);          /* bit width */
    CHECK(g[2] == 0);          /* bit offset */
    CHECK(get64(g + 4) == port);
}

/* ---- a small AML reader, enough for what a DSDT of ours may hold ---- */

struct aml_device {
    char name[5];
    char hid_str[16];           /* _HID as a string, or "" */
    uint32_t hid_eisa;          /* _HID as an EISA ID dword, or 0 */
    const uint8_t *crs;         /* _CRS buffer bytes */
    size_t crs_len;
    bool has_uid;
};

struct aml_found {
    bool s5;
    uint8_t s5_typ;
    struct aml_device devs[32];
    unsigned nr_devs;
};

/* PkgLength at p (20.2.4): sets *len to the encoded length and returns its bytes. */
static size_t aml_pkglen(const uint8_t *p, const uint8_t *end, size_t *len)
{
    CHECK(p < end);
    size_t follow = p[0] >> 6;
    CHECK((size_t)(end - p) > follow);
    if (follow == 0) {
        *len = p[0] & 0x3f;
        return 1;
    }
    CHECK((p[0] & 0x30) == 0);   /* bits 4-5 reserved with following bytes */
    size_t v = p[0] & 0x0f;
    for (size_t i = 1; i <= follow; i++)
        v |= (size_t)p[i] << (4 + 8 * (i - 1));
    *len = v;
    return follow + 1;
}

/* A NameString: root/parent prefixes, then a NameSeg, dual or multi name path.
 * Copies the last segment into last[5]; returns the bytes consumed. */
static size_t aml_namestring(const uint8_t *p, const uint8_t *end, char last[5])
{
    const uint8_t *s = p;
    size_t segs = 1;

    while (p < end && (*p == '\\' || *p == '^'))
        p++;
    CHECK(p < end);
    if (*p == 0x2e) {
        segs = 2;
        p++;
    } else if (*p == 0x2f) {
        CHECK(p + 1 < end);
        segs = p[1];
        p += 2;
    } else if (*p == 0) {
        memset(last, 0, 5);
        return (size_t)(p + 1 - s);
    }
    CHECK((size_t)(end - p) >= 4 * segs && segs > 0);
    for (size_t i = 0; i < 4 * segs; i++)
        CHECK((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_');
    memcpy(last, p + 4 * (segs - 1), 4);
    last[4] = 0;
    return (size_t)(p + 4 * segs - s);
}

/* A DataRefObject; fills buf and buf_len for a Buffer, *str for a String (NUL ended
 * inside the object), *num for integers. Returns the bytes consumed. */
static size_t aml_data(const uint8_t *p, const uint8_t *end, const uint8_t **buf, size_t *buf_len,
                       const char **str, uint64_t *num)
{
    size_t n, pl;

    CHECK(p < end);
    switch (p[0]) {
    case 0x00: case 0x01: case 0xff: *num = p[0] == 0xff ? ~0ULL : p[0]; return 1;
    case 0x0a: CHECK(end - p >= 2); *num = p[1]; return 2;
    case 0x0b: CHECK(end - p >= 3); *num = get16(p + 1); return 3;
    case 0x0c: CHECK(end - p >= 5); *num = get32(p + 1); return 5;
    case 0x0e: CHECK(end - p >= 9); *num = get64(p + 1); return 9;
    case 0x0d:
        n = strnlen((const char *)p + 1, (size_t)(end - p - 1));
        CHECK(n < (size_t)(end - p - 1));
        *str = (const char *)p + 1;
        return n + 2;
    case 0x11: case 0x12: {                              /* Buffer, Package */
        size_t hl = aml_pkglen(p + 1, end, &pl);
        CHECK(pl >= hl && pl <= (size_t)(end - p - 1));
        if (p[0] == 0x11) {
            uint64_t size = 0;
            const uint8_t *q = p + 1 + hl, *qend = p + 1 + pl;
            const char *ignored = NULL;
            const uint8_t *ib = NULL;
            size_t il = 0;
            size_t sl = aml_data(q, qend, &ib, &il, &ignored, &size);
            CHECK(size == (uint64_t)(qend - q - sl));    /* BufferSize matches */
            *buf = q + sl;
            *buf_len = (size_t)size;
        }
        return 1 + pl;
    }
    default:
        fprintf(stderr, "unexpected AML data opcode %#x\n", p[0]);
        CHECK(0);
        return 0;
    }
}

static void aml_term_list(const uint8_t *p, const uint8_t *end, struct aml_found *f,
                          struct aml_device *dev);

/* Name(seg, data) inside a device or at the top. */
static size_t aml_name(const uint8_t *p, const uint8_t *end, struct aml_found *f,
                       struct aml_device *dev)
{
    char seg[5];
    const uint8_t *s = p;
    const uint8_t *buf = NULL;
    size_t buf_len = 0;
    const char *str = NULL;
    uint64_t num = 0;

    p += aml_namestring(p, end, seg);
    if (strcmp(seg, "_S5_") == 0) {
        CHECK(p + 5 <= end && p[0] == 0x12);             /* Package(n) { SLP_TYP, ... } */
        size_t pl, hl = aml_pkglen(p + 1, end, &pl);
        CHECK(pl >= hl + 3);
        const uint8_t *q = p + 1 + hl;
        CHECK(q[0] >= 1);                                /* NumElements */
        uint64_t typ = 0;
        aml_data(q + 1, p + 1 + pl, &buf, &buf_len, &str, &typ);
        f->s5 = true;
        f->s5_typ = (uint8_t)typ;
    }
    p += aml_data(p, end, &buf, &buf_len, &str, &num);
    if (dev && strcmp(seg, "_HID") == 0) {
        if (str)
            snprintf(dev->hid_str, sizeof(dev->hid_str), "%s", str);
        else
            dev->hid_eisa = (uint32_t)num;
    } else if (dev && strcmp(seg, "_UID") == 0) {
        dev->has_uid = true;
    } else if (dev && strcmp(seg, "_CRS") == 0) {
        CHECK(buf);
        dev->crs = buf;
        dev->crs_len = buf_len;
    }
    return (size_t)(p - s);
}

static size_t aml_object(const uint8_t *p, const uint8_t *end, struct aml_found *f,
                         struct aml_device *dev)
{
    size_t pl, hl;
    char seg[5];

    if (p[0] == 0x08)                                    /* NameOp */
        return 1 + aml_name(p + 1, end, f, dev);
    if (p[0] == 0x10 || p[0] == 0x14) {                  /* ScopeOp, MethodOp */
        hl = aml_pkglen(p + 1, end, &pl);
        CHECK(pl >= hl && pl <= (size_t)(end - p - 1));
        if (p[0] == 0x10) {
            const uint8_t *body = p + 1 + hl;
            body += aml_namestring(body, p + 1 + pl, seg);
            aml_term_list(body, p + 1 + pl, f, NULL);
        }
        return 1 + pl;
    }
    if (p[0] == 0x5b && end - p >= 2 && p[1] == 0x82) {  /* DeviceOp */
        hl = aml_pkglen(p + 2, end, &pl);
        CHECK(pl >= hl && pl <= (size_t)(end - p - 2));
        const uint8_t *body = p + 2 + hl, *bend = p + 2 + pl;
        CHECK(f->nr_devs < sizeof(f->devs) / sizeof(f->devs[0]));
        struct aml_device *d = &f->devs[f->nr_devs++];
        memset(d, 0, sizeof(*d));
        body += aml_namestring(body, bend, d->name);
        aml_term_list(body, bend, f, d);
        return 2 + pl;
    }
    fprintf(stderr, "unexpected AML opcode %#x\n", p[0]);
    CHECK(0);
    return 0;
}

/* A TermList must be made of whole objects that end exactly at end. */
static void aml_term_list(const uint8_t *p, const uint8_t *end, struct aml_found *f,
                          struct aml_device *dev)
{
    while (p < end) {
        size_t n = aml_object(p, end, f, dev);
        CHECK(n > 0 && n <= (size_t)(end - p));
        p += n;
    }
    CHECK(p == end);
}

/* Resource descriptors (6.4): must end with an End Tag exactly at the end. */
struct crs_info {
    bool mem32, ext_irq, io, irq;
    uint32_t mem_base, mem_size, gsi, irq_mask;
    uint16_t io_base;
    uint8_t io_len;
};

static struct crs_info parse_crs(const uint8_t *p, size_t len)
{
    struct crs_info c = { 0 };
    size_t i = 0;

    for (;;) {
        CHECK(i < len);
        uint8_t tag = p[i];
        if (tag & 0x80) {                                /* large item */
            CHECK(len - i >= 3);
            size_t n = get16(p + i + 1);
            CHECK(len - i - 3 >= n);
            if (tag == 0x86) {
                CHECK(n == 9);
                c.mem32 = true;
                c.mem_base = get32(p + i + 4);
                c.mem_size = get32(p + i + 8);
            } else if (tag == 0x89) {
                CHECK(n >= 6 && p[i + 4] == 1);          /* one interrupt */
                c.ext_irq = true;
                c.gsi = get32(p + i + 5);
            }
            i += 3 + n;
            continue;
        }
        uint8_t type = (tag >> 3) & 0x0f, n = tag & 7;
        CHECK(len - i - 1 >= n);
        if (type == 0x0f) {                              /* End Tag */
            CHECK(n == 1 && i + 2 == len);
            return c;
        }
        if (type == 0x08) {                              /* IO */
            CHECK(n == 7);
            c.io = true;
            c.io_base = get16(p + i + 2);
            CHECK(get16(p + i + 4) == c.io_base);
            c.io_len = p[i + 7];
        } else if (type == 0x04) {                       /* IRQ */
            c.irq = true;
            c.irq_mask = get16(p + i + 1);
        }
        i += 1 + n;
    }
}

/* ---- the tables ---- */

static const uint8_t *find_table(const struct tables *t, const uint8_t *xsdt, const char sig[4])
{
    uint32_t n = (get32(xsdt + 4) - 36) / 8;
    const uint8_t *found = NULL;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t addr = get64(xsdt + 36 + 8 * i);
        CHECK(addr >= t->gpa && addr - t->gpa < t->len);
        if (memcmp(t->buf + (addr - t->gpa), sig, 4) == 0) {
            CHECK(!found);
            found = table_at(t, addr, sig);
        }
    }
    CHECK(found);
    return found;
}

static void check_fadt(const uint8_t *fadt)
{
    CHECK(get32(fadt + 4) == 276);
    CHECK(fadt[8] >= 5);                                 /* HW-reduced needs 5.0+ */
    uint32_t flags = get32(fadt + 112);
    CHECK(flags & (1u << 20));                           /* HW_REDUCED_ACPI */
    CHECK(flags & (1u << 10));                           /* RESET_REG_SUP */
    check_gas_io8(fadt + 116, PORT_ACPI_RESET);
    CHECK(fadt[128] == ACPI_RESET_VALUE);
    check_gas_io8(fadt + 244, PORT_ACPI_SLEEP_CTL);
    check_gas_io8(fadt + 256, PORT_ACPI_SLEEP_STS);
    CHECK(get32(fadt + 40) == (uint32_t)get64(fadt + 140)); /* DSDT and X_DSDT agree */
}

static void check_madt(const uint8_t *madt, unsigned vcpus)
{
    uint32_t len = get32(madt + 4);
    unsigned lapics = 0, ioapics = 0;
    bool seen[256] = { false };

    CHECK(get32(madt + 36) == LAYOUT_LAPIC);
    CHECK((get32(madt + 40) & 1) == 0);                  /* no 8259 pair */
    for (uint32_t i = 44; i < len;) {
        const uint8_t *e = madt + i;
        CHECK(len - i >= 2 && e[1] >= 2 && e[1] <= len - i);
        if (e[0] == 0) {
            CHECK(e[1] == 8);
            CHECK(e[3] < vcpus && !seen[e[3]]);
            seen[e[3]] = true;
            CHECK(e[2] == e[3]);                         /* processor UID */
            CHECK(get32(e + 4) & 1);                     /* enabled */
            CHECK(e[3] == lapics);                       /* in APIC ID order, BSP first */
            lapics++;
        } else if (e[0] == 1) {
            CHECK(e[1] == 12);
            CHECK(get32(e + 4) == LAYOUT_IOAPIC && get32(e + 8) == 0);
            ioapics++;
        }
        i += e[1];
    }
    CHECK(lapics == vcpus);
    CHECK(ioapics == 1);
}

static void check_dsdt(const uint8_t *dsdt, const struct acpi_config *cfg)
{
    struct aml_found f;
    uint32_t len = get32(dsdt + 4);
    unsigned virtio = 0;
    bool com1 = false;

    memset(&f, 0, sizeof(f));
    CHECK(dsdt[8] >= 2);                                 /* 64-bit integers */
    CHECK(memmem(dsdt, len, "_S5_", 4) && memmem(dsdt, len, "COM1", 4));
    aml_term_list(dsdt + 36, dsdt + len, &f, NULL);
    CHECK(f.s5 && f.s5_typ == ACPI_S5_SLP_TYP);
    for (unsigned i = 0; i < f.nr_devs; i++) {
        const struct aml_device *d = &f.devs[i];
        CHECK(d->crs);
        struct crs_info c = parse_crs(d->crs, d->crs_len);
        if (d->hid_eisa == 0x0105d041) {                 /* EisaId("PNP0501") */
            CHECK(strcmp(d->name, "COM1") == 0);
            CHECK(c.io && c.io_base == 0x3f8 && c.io_len == 8);
            CHECK(c.irq && c.irq_mask == (1u << 4));
            com1 = true;
        } else if (strcmp(d->hid_str, "LNRO0005") == 0) {
            CHECK(virtio < cfg->nr_devs);
            const struct acpi_mmio_dev *m = &cfg->devs[virtio];
            CHECK(d->has_uid);
            CHECK(c.mem32 && c.mem_base == m->base && c.mem_size == m->size);
            CHECK(c.ext_irq && c.gsi == m->gsi);
            for (unsigned j = 0; j < i; j++)             /* names are unique */
                CHECK(strcmp(f.devs[j].name, d->name) != 0);
            virtio++;
        }
    }
    CHECK(com1);
    CHECK(virtio == cfg->nr_devs);
    /* The raw bytes a guest's AML interpreter would decode for the first window. */
    if (cfg->nr_devs) {
        uint8_t want[12] = { 0x86, 0x09, 0x00, 0x01 };
        memcpy(want + 4, &(uint32_t){ (uint32_t)cfg->devs[0].base }, 4);
        memcpy(want + 8, &cfg->devs[0].size, 4);
        CHECK(memmem(dsdt, len, want, sizeof(want)));
        bool irq = false;                                /* Extended Interrupt, 1 GSI */
        for (uint32_t i = 36; i + 9 <= len; i++)
            if (dsdt[i] == 0x89 && dsdt[i + 1] == 6 && dsdt[i + 2] == 0 && dsdt[i + 4] == 1 &&
                get32(dsdt + i + 5) == cfg->devs[0].gsi)
                irq = true;
        CHECK(irq);
        CHECK(memmem(dsdt, len, "LNRO0005", 8));
    }
}

/* Builds into an exactly sized heap buffer and checks everything; returns the size. */
static size_t check_build(uint64_t gpa, const struct acpi_config *cfg)
{
    uint8_t *big = malloc(65536);
    CHECK(big);
    int n = acpi_build(big, 65536, gpa, cfg);
    CHECK(n > 36 && n < 65536);
    free(big);

    uint8_t *buf = malloc((size_t)n);                    /* ASan guards the end */
    CHECK(buf);
    CHECK(acpi_build(buf, (size_t)n, gpa, cfg) == n);
    struct tables t = { .buf = buf, .len = (size_t)n, .gpa = gpa };

    CHECK(memcmp(buf, "RSD PTR ", 8) == 0);
    CHECK(acpi_checksum(buf, 20) == 0);
    CHECK(buf[15] == 2);
    CHECK(get32(buf + 20) == 36);
    CHECK(acpi_checksum(buf, 36) == 0);
    const uint8_t *xsdt = table_at(&t, get64(buf + 24), "XSDT");
    CHECK(get32(xsdt + 4) >= 36 + 16 && (get32(xsdt + 4) - 36) % 8 == 0);
    const uint8_t *fadt = find_table(&t, xsdt, "FACP");
    const uint8_t *madt = find_table(&t, xsdt, "APIC");
    check_fadt(fadt);
    const uint8_t *dsdt = table_at(&t, get64(fadt + 140), "DSDT");
    check_madt(madt, cfg->vcpus);
    check_dsdt(dsdt, cfg);

    /* No two tables overlap each other or the RSDP. */
    const uint8_t *all[] = { buf, xsdt, fadt, madt, dsdt };
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = i + 1; j < 5; j++) {
            size_t li = i ? get32(all[i] + 4) : 36, lj = get32(all[j] + 4);
            CHECK(all[i] + li <= all[j] || all[j] + lj <= all[i]);
        }
    free(buf);
    return (size_t)n;
}

/* Every shorter buffer fails with -E2BIG and is never written past its end. */
static void check_too_small(uint64_t gpa, const struct acpi_config *cfg, size_t need)
{
    for (size_t len = 0; len < need; len++) {
        uint8_t *buf = malloc(len ? len : 1);
        CHECK(buf);
        CHECK(acpi_build(buf + (len ? 0 : 1), len, gpa, cfg) == -E2BIG);
        free(buf);
    }
}

static struct acpi_config config(unsigned vcpus, unsigned nr_devs)
{
    struct acpi_config c = { .vcpus = vcpus, .nr_devs = nr_devs };

    for (unsigned i = 0; i < nr_devs; i++)
        c.devs[i] = (struct acpi_mmio_dev){ .base = LAYOUT_VIRTIO_MMIO + i * LAYOUT_VIRTIO_STRIDE,
                                            .size = 0x200, .gsi = LAYOUT_VIRTIO_GSI + i };
    return c;
}

static void test_tables(void)
{
    static const unsigned vcpus[] = { 1, 2, 64, 255 };
    static const unsigned devs[] = { 0, 1, 2, ACPI_MAX_MMIO_DEVS };

    for (unsigned i = 0; i < 4; i++)
        for (unsigned j = 0; j < 4; j++) {
            struct acpi_config c = config(vcpus[i], devs[j]);
            check_build(LAYOUT_ACPI, &c);
        }
    /* Addresses follow gpa; odd bases and GSIs come through unchanged. */
    struct acpi_config c = config(3, 2);
    c.devs[0] = (struct acpi_mmio_dev){ .base = 0xfeb12000, .size = 0x1000, .gsi = 23 };
    c.devs[1] = (struct acpi_mmio_dev){ .base = 0xd0000e00, .size = 0x200, .gsi = 0x12345678 };
    size_t a = check_build(0xf0000, &c);
    size_t b = check_build(LAYOUT_ACPI, &c);
    CHECK(a == b);
    CHECK(b <= LAYOUT_ACPI_END - LAYOUT_ACPI);
}

static void test_errors(void)
{
    uint8_t buf[8192];
    struct acpi_config c = config(1, 0);

    c.vcpus = 0;
    CHECK(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &c) == -EINVAL);
    c.vcpus = 256;
    CHECK(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &c) == -EINVAL);
    c.vcpus = 1;
    c.nr_devs = ACPI_MAX_MMIO_DEVS + 1;
    CHECK(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &c) == -EINVAL);
    c.nr_devs = 0;
    for (uint64_t off = 1; off < 16; off++)
        CHECK(acpi_build(buf, sizeof(buf), LAYOUT_ACPI + off, &c) == -EINVAL);

    struct acpi_config small = config(1, 0), large = config(255, ACPI_MAX_MMIO_DEVS);
    check_too_small(LAYOUT_ACPI, &small, check_build(LAYOUT_ACPI, &small));
    check_too_small(LAYOUT_ACPI, &large, check_build(LAYOUT_ACPI, &large));
}

static void test_checksum(void)
{
    uint8_t b[4] = { 0x80, 0x80, 0x01, 0xff };

    CHECK(acpi_checksum(b, 0) == 0);
    CHECK(acpi_checksum(b, 2) == 0);
    CHECK(acpi_checksum(b, 4) == 0);
    CHECK(acpi_checksum(b, 3) == 1);
}

int main(void)
{
    test_checksum();
    test_tables();
    test_errors();
    printf("test_acpi: ok\n");
    return 0;
}
