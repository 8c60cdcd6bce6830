/* ACPI table builder (ACPI 6.4 sections 5.2.5 RSDP, 5.2.8 XSDT, 5.2.9 FADT,
 * 5.2.12 MADT, 5.2.11.1 DSDT; AML encoding from chapter 20). */
#include "acpi.h"

#include <errno.h>
#include <string.h>

#include "layout.h"

#define HDR_LEN       36
#define FADT_LEN      276
#define FADT_HW_REDUCED   (1u << 20)
#define FADT_RESET_REG_SUP (1u << 10)
#define BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define BOOT_ARCH_NO_CMOS_RTC     (1u << 5)
#define GAS_SYSTEM_IO 1

struct acpi_writer {
    uint8_t *buf;
    size_t len, pos;
    uint64_t gpa;
    int overflow;
};

static uint8_t *aw_reserve(struct acpi_writer *w, size_t n)
{
    w->pos = (w->pos + 15) & ~(size_t)15;
    if (w->pos > w->len || n > w->len - w->pos) {
        w->overflow = 1;
        return NULL;
    }
    uint8_t *p = w->buf + w->pos;
    memset(p, 0, n);
    w->pos += n;
    return p;
}

static uint64_t aw_gpa(const struct acpi_writer *w, const uint8_t *p)
{
    return w->gpa + (uint64_t)(p - w->buf);
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;

    while (len--)
        sum += *p++;
    return sum;
}

/* The common 36-byte header; the checksum is set by finish_table. */
static void put_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "SBXVMM", 6);
    memcpy(t + 16, "SBXVMM  ", 8);
    put32(t + 24, 1);
    memcpy(t + 28, "SBX ", 4);
    put32(t + 32, 1);
}

static void finish_table(uint8_t *t, uint32_t len)
{
    t[9] = 0;
    t[9] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

/* Generic Address Structure (5.2.3.2) for a byte-wide I/O port. */
static void put_gas_io8(uint8_t *p, uint16_t port)
{
    p[0] = GAS_SYSTEM_IO;
    p[1] = 8;
    p[2] = 0;
    p[3] = 1;
    put64(p + 4, port);
}

/* ---- AML ---- */

/* PkgLength (20.2.4) of a body of n bytes: the encoding counts its own bytes. */
static size_t aml_pkglen(uint8_t *out, size_t n)
{
    if (n + 1 < 0x40) {
        out[0] = (uint8_t)(n + 1);
        return 1;
    }
    size_t bytes = n + 2 < 0x1000 ? 2 : n + 3 < 0x100000 ? 3 : 4;
    size_t total = n + bytes;
    out[0] = (uint8_t)(((bytes - 1) << 6) | (total & 0x0f));
    for (size_t i = 1; i < bytes; i++)
        out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    return bytes;
}

/* Device(name) { Name(_HID, hid) Name(_UID, uid) Name(_CRS, Buffer() { crs }) }:
 * hid is already AML-encoded (a string or an EISA ID); crs ends with an End Tag.
 * Returns the bytes written (at most 128 for hid_len + crs_len <= 64). */
static size_t aml_device(uint8_t *out, const char name[4], const uint8_t *hid, size_t hid_len,
                         uint8_t uid, const uint8_t *crs, size_t crs_len)
{
    uint8_t body[112];
    size_t n = 0;

    memcpy(body + n, name, 4); n += 4;
    body[n++] = 0x08; memcpy(body + n, "_HID", 4); n += 4;          /* NameOp */
    memcpy(body + n, hid, hid_len); n += hid_len;
    body[n++] = 0x08; memcpy(body + n, "_UID", 4); n += 4;
    body[n++] = 0x0a; body[n++] = uid;                               /* ByteConst */
    body[n++] = 0x08; memcpy(body + n, "_CRS", 4); n += 4;
    body[n++] = 0x11;                                                /* BufferOp */
    n += aml_pkglen(body + n, 2 + crs_len);
    body[n++] = 0x0a; body[n++] = (uint8_t)crs_len;                  /* BufferSize */
    memcpy(body + n, crs, crs_len); n += crs_len;

    size_t m = 0;
    out[m++] = 0x5b; out[m++] = 0x82;                                /* DeviceOp */
    m += aml_pkglen(out + m, n);
    memcpy(out + m, body, n);
    return m + n;
}

/* A virtio-mmio window: LNRO0005 with Memory32Fixed(ReadWrite, base, size) and
 * Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }. */
static size_t aml_virtio_device(uint8_t *out, unsigned index, const struct acpi_mmio_dev *d)
{
    static const char hex[] = "0123456789ABCDEF";
    static const uint8_t hid[] = { 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0 };
    char name[4] = { 'V', hex[(index >> 8) & 0xf], hex[(index >> 4) & 0xf], hex[index & 0xf] };
    uint8_t crs[23] = { 0x86, 9, 0, 1 };              /* Memory32Fixed, read-write */

    put32(crs + 4, (uint32_t)d->base);
    put32(crs + 8, d->size);
    crs[12] = 0x89; put16(crs + 13, 6);               /* Extended Interrupt */
    crs[15] = 0x03;                                    /* consumer, edge, high, exclusive */
    crs[16] = 1;
    put32(crs + 17, d->gsi);
    crs[21] = 0x79; crs[22] = 0;                       /* End Tag */
    return aml_device(out, name, hid, sizeof(hid), (uint8_t)index, crs, sizeof(crs));
}

/* COM1 as PNP0501 with IO(Decode16, 0x3f8, 0x3f8, 0, 8) and IRQNoFlags() { 4 }:
 * through it the kernel maps ISA IRQ 4 in the IOAPIC (there is no legacy PIC in
 * hardware-reduced mode) and the 8250 driver gets a working interrupt. */
static size_t aml_com1(uint8_t *out)
{
    static const uint8_t hid[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };  /* EisaId("PNP0501") */
    static const uint8_t crs[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,
                                   0x22, 0x10, 0x00, 0x79, 0x00 };

    return aml_device(out, "COM1", hid, sizeof(hid), 1, crs, sizeof(crs));
}

/* QEMU's pvpanic device (QEMU0001) on port PORT_PVPANIC: a panicking Linux guest
 * with the pvpanic-mmio driver writes there, so sbx-vmm can report the panic. */
static size_t aml_pvpanic(uint8_t *out)
{
    static const uint8_t hid[] = { 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0 };
    static const uint8_t crs[] = { 0x47, 0x01, PORT_PVPANIC & 0xff, PORT_PVPANIC >> 8,
                                   PORT_PVPANIC & 0xff, PORT_PVPANIC >> 8, 0x01, 0x01,
                                   0x79, 0x00 };

    return aml_device(out, "PEVT", hid, sizeof(hid), 0, crs, sizeof(crs));
}

static uint8_t *build_dsdt(struct acpi_writer *w, const struct acpi_config *cfg)
{
    /* Name(\_S5, Package(4) { ACPI_S5_SLP_TYP, 0, 0, 0 }) */
    static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
                                  0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00, 0x00 };
    uint8_t aml[(ACPI_MAX_MMIO_DEVS + 2) * 128 + sizeof(s5)];
    size_t n = 0;

    memcpy(aml, s5, sizeof(s5));
    n += sizeof(s5);
    n += aml_com1(aml + n);
    n += aml_pvpanic(aml + n);
    for (unsigned i = 0; i < cfg->nr_devs; i++)
        n += aml_virtio_device(aml + n, i, &cfg->devs[i]);
    uint8_t *t = aw_reserve(w, HDR_LEN + n);
    if (!t)
        return NULL;
    put_header(t, "DSDT", HDR_LEN + n, 6);
    memcpy(t + HDR_LEN, aml, n);
    finish_table(t, HDR_LEN + n);
    return t;
}

static uint8_t *build_fadt(struct acpi_writer *w, uint64_t dsdt)
{
    uint8_t *t = aw_reserve(w, FADT_LEN);

    if (!t)
        return NULL;
    put_header(t, "FACP", FADT_LEN, 6);
    put32(t + 40, (uint32_t)dsdt);
    put16(t + 109, BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_NO_CMOS_RTC);
    put32(t + 112, FADT_HW_REDUCED | FADT_RESET_REG_SUP);
    put_gas_io8(t + 116, PORT_ACPI_RESET);
    t[128] = ACPI_RESET_VALUE;
    t[131] = 4;                                        /* FADT minor version: 6.4 */
    put64(t + 140, dsdt);
    put_gas_io8(t + 244, PORT_ACPI_SLEEP_CTL);
    put_gas_io8(t + 256, PORT_ACPI_SLEEP_STS);
    memcpy(t + 268, "SBXVMM  ", 8);                    /* hypervisor vendor identity */
    finish_table(t, FADT_LEN);
    return t;
}

static uint8_t *build_madt(struct acpi_writer *w, unsigned vcpus)
{
    uint32_t len = HDR_LEN + 8 + 8 * vcpus + 12;
    uint8_t *t = aw_reserve(w, len);

    if (!t)
        return NULL;
    put_header(t, "APIC", len, 5);
    put32(t + 36, (uint32_t)LAYOUT_LAPIC);
    put32(t + 40, 0);                                  /* no dual 8259 setup */
    uint8_t *e = t + 44;
    for (unsigned i = 0; i < vcpus; i++, e += 8) {
        e[0] = 0; e[1] = 8;                            /* Processor Local APIC */
        e[2] = (uint8_t)i; e[3] = (uint8_t)i;          /* processor UID, APIC ID */
        put32(e + 4, 1);                               /* enabled */
    }
    e[0] = 1; e[1] = 12;                               /* I/O APIC */
    e[2] = 0;                                          /* IOAPIC ID */
    put32(e + 4, (uint32_t)LAYOUT_IOAPIC);
    put32(e + 8, 0);                                   /* GSI base */
    finish_table(t, len);
    return t;
}

static uint8_t *build_xsdt(struct acpi_writer *w, const uint64_t *tables, unsigned n)
{
    uint32_t len = HDR_LEN + 8 * n;
    uint8_t *t = aw_reserve(w, len);

    if (!t)
        return NULL;
    put_header(t, "XSDT", len, 1);
    for (unsigned i = 0; i < n; i++)
        put64(t + HDR_LEN + 8 * i, tables[i]);
    finish_table(t, len);
    return t;
}

static void build_rsdp(uint8_t *r, uint64_t xsdt)
{
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "SBXVMM", 6);
    r[15] = 2;                                         /* ACPI 2.0+ */
    put32(r + 20, 36);
    put64(r + 24, xsdt);
    r[8] = (uint8_t)(0x100 - acpi_checksum(r, 20));
    r[32] = (uint8_t)(0x100 - acpi_checksum(r, 36));
}

int acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg)
{
    struct acpi_writer w = { .buf = buf, .len = len, .gpa = gpa };

    if (cfg->vcpus == 0 || cfg->vcpus > 255 || cfg->nr_devs > ACPI_MAX_MMIO_DEVS || (gpa & 15))
        return -EINVAL;
    uint8_t *rsdp = aw_reserve(&w, 36);
    uint8_t *dsdt = build_dsdt(&w, cfg);
    uint8_t *fadt = dsdt ? build_fadt(&w, aw_gpa(&w, dsdt)) : NULL;
    uint8_t *madt = build_madt(&w, cfg->vcpus);
    if (w.overflow || !rsdp || !fadt || !madt)
        return -E2BIG;
    uint64_t tables[] = { aw_gpa(&w, fadt), aw_gpa(&w, madt) };
    uint8_t *xsdt = build_xsdt(&w, tables, 2);
    if (!xsdt)
        return -E2BIG;
    build_rsdp(rsdp, aw_gpa(&w, xsdt));
    return (int)w.pos;
}
