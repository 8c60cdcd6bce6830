/* boot: the Linux x86 boot protocol over a flat 64 MiB guest memory. Synthetic
 * bzImages (setup header + payload) and ELF64 vmlinux files are built here, loaded,
 * and the guest memory is read back the way the kernel would: payload at 1 MiB, ELF
 * segments at p_paddr with their bss zeroed, the initrd at the top of low RAM, and
 * the zero page with its e820 map. Every malformed image must fail with a reason. */
#include "../boot.h"
#include "../layout.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

#define MEM_SIZE (64ULL << 20)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static uint8_t *gm;
static struct guest_mem mem;
static struct boot_ram ram;
static char err[256];

/* ---- synthetic images ---- */

struct image {
    uint8_t *bytes;
    size_t len;
};

static void image_free(struct image *im)
{
    free(im->bytes);
    im->bytes = NULL;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + 3);
}

/* A bzImage: (setup_sects + 1) * 512 bytes of setup with the header at 0x1f1, then
 * payload bytes of pattern(). */
static struct image make_bzimage(uint8_t setup_sects, size_t payload, uint32_t init_size)
{
    size_t setup = ((size_t)(setup_sects ? setup_sects : 4) + 1) * 512;
    struct image im = { .len = setup + payload };
    struct setup_header h = {
        .setup_sects = setup_sects, .boot_flag = 0xaa55, .header = 0x53726448,
        .version = 0x020f, .loadflags = 0x01, .initrd_addr_max = 0x7fffffff,
        .kernel_alignment = 0x200000, .relocatable_kernel = 1, .xloadflags = XLF_KERNEL_64,
        .cmdline_size = 2047, .init_size = init_size,
    };

    im.bytes = calloc(1, im.len);
    CHECK(im.bytes);
    memcpy(im.bytes + 0x1f1, &h, sizeof(h));
    for (size_t i = 0; i < payload; i++)
        im.bytes[setup + i] = pattern(i);
    return im;
}

static struct setup_header *bz_hdr(struct image *im)
{
    return (struct setup_header *)(im->bytes + 0x1f1);
}

/* An ELF64 x86_64 ET_EXEC: a PT_NOTE, then nr_load PT_LOAD segments (the i-th at
 * paddr[i], filesz[i] bytes of pattern from the file, memsz[i] in memory). */
#define ELF_MAX_SEGS 3
struct elf_spec {
    unsigned nr_load;
    uint64_t paddr[ELF_MAX_SEGS], filesz[ELF_MAX_SEGS], memsz[ELF_MAX_SEGS];
    uint64_t entry;
};

static struct image make_elf(const struct elf_spec *s)
{
    size_t phoff = sizeof(Elf64_Ehdr), nph = s->nr_load + 1;
    size_t data = 0x1000, total = data;
    struct image im;

    for (unsigned i = 0; i < s->nr_load; i++)
        total += s->filesz[i];
    im.len = total;
    im.bytes = calloc(1, total);
    CHECK(im.bytes);
    Elf64_Ehdr eh = {
        .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
        .e_entry = s->entry, .e_phoff = phoff, .e_ehsize = sizeof(Elf64_Ehdr),
        .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)nph,
    };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(im.bytes, &eh, sizeof(eh));
    Elf64_Phdr note = { .p_type = PT_NOTE, .p_offset = 0, .p_paddr = 0x7000, .p_filesz = 64,
                        .p_memsz = 64 };
    memcpy(im.bytes + phoff, &note, sizeof(note));
    size_t off = data;
    for (unsigned i = 0; i < s->nr_load; i++) {
        Elf64_Phdr ph = {
            .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = off,
            .p_vaddr = 0xffffffff80000000ULL + s->paddr[i], .p_paddr = s->paddr[i],
            .p_filesz = s->filesz[i], .p_memsz = s->memsz[i], .p_align = 0x1000,
        };
        memcpy(im.bytes + phoff + (i + 1) * sizeof(ph), &ph, sizeof(ph));
        for (uint64_t j = 0; j < s->filesz[i]; j++)
            im.bytes[off + j] = pattern(off + j);
        off += s->filesz[i];
    }
    return im;
}

static Elf64_Ehdr *elf_hdr(struct image *im)
{
    return (Elf64_Ehdr *)im->bytes;
}

static Elf64_Phdr *elf_load_phdr(struct image *im, unsigned i)
{
    return (Elf64_Phdr *)(im->bytes + sizeof(Elf64_Ehdr) + (i + 1) * sizeof(Elf64_Phdr));
}

static const struct elf_spec two_segs = {
    .nr_load = 2, .entry = 0x1000000,
    .paddr = { 0x1000000, 0x1400000 }, .filesz = { 0x2345, 0x100 }, .memsz = { 0x2345, 0x3000 },
};

/* ---- helpers ---- */

static void reset_mem(void)
{
    memset(gm, 0xaa, MEM_SIZE);
    ram = boot_ram_layout(MEM_SIZE);
}

/* Loads expecting failure with rc; err must say why, and nothing may crash. */
static void expect_kernel_fail(const struct image *im, size_t len, int rc)
{
    struct boot_kernel k;

    err[0] = 0;
    int got = boot_load_kernel(&mem, &ram, im->bytes, len, &k, err, sizeof(err));
    if (got != rc)
        fprintf(stderr, "expected %d, got %d (%s)\n", rc, got, err);
    CHECK(got == rc);
    CHECK(err[0] != 0);
}

static struct boot_params read_zero_page(void)
{
    struct boot_params bp;

    memcpy(&bp, gm + LAYOUT_ZERO_PAGE, sizeof(bp));
    return bp;
}

/* ---- tests ---- */

static void test_ram_layout(void)
{
    struct boot_ram r = boot_ram_layout(256 * MIB);
    CHECK(r.low_end == 256 * MIB && r.high_size == 0);
    r = boot_ram_layout(3 * GIB);
    CHECK(r.low_end == 3 * GIB && r.high_size == 0);
    r = boot_ram_layout(3 * GIB + 4096);
    CHECK(r.low_end == 3 * GIB && r.high_size == 4096);
    r = boot_ram_layout(8 * GIB);
    CHECK(r.low_end == 3 * GIB && r.high_size == 5 * GIB);
    CHECK(LAYOUT_MMIO_GAP_START == 3 * GIB);
}

static void test_e820(void)
{
    struct boot_e820_entry tab[8];
    struct boot_ram r = boot_ram_layout(256 * MIB);

    memset(tab, 0, sizeof(tab));
    CHECK(boot_e820(tab, 8, &r) == 3);
    CHECK(tab[0].addr == 0 && tab[0].size == 0x9fc00 && tab[0].type == 1);
    CHECK(tab[1].addr == 0xe0000 && tab[1].size == 0x20000 && tab[1].type == 2);
    CHECK(tab[2].addr == 0x100000 && tab[2].size == 256 * MIB - 0x100000 && tab[2].type == 1);

    r = boot_ram_layout(8 * GIB);
    CHECK(boot_e820(tab, 8, &r) == 4);
    CHECK(tab[2].addr == 0x100000 && tab[2].size == 3 * GIB - 0x100000 && tab[2].type == 1);
    CHECK(tab[3].addr == 4 * GIB && tab[3].size == 5 * GIB && tab[3].type == 1);
    /* The map never holds RAM inside the MMIO gap. */
    for (unsigned i = 0; i < 4; i++)
        CHECK(tab[i].addr >= 4 * GIB || tab[i].addr + tab[i].size <= 3 * GIB);

    /* max limits the count and nothing beyond it is written. */
    memset(tab, 0x5a, sizeof(tab));
    CHECK(boot_e820(tab, 2, &r) == 2);
    CHECK(tab[1].addr == 0xe0000);
    CHECK(tab[2].addr == 0x5a5a5a5a5a5a5a5aULL);
    CHECK(boot_e820(tab, 0, &r) == 0);
}

static void test_bzimage(void)
{
    struct image im = make_bzimage(1, 5000, 0x10000);
    struct boot_kernel k;

    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(k.is_bzimage);
    CHECK(k.entry == 0x100200);
    CHECK(k.end == 0x100000 + 0x10000);                 /* init_size > payload */
    CHECK(k.hdr.version == 0x020f && k.hdr.cmdline_size == 2047 && k.hdr.init_size == 0x10000);
    for (size_t i = 0; i < 5000; i++)
        CHECK(gm[0x100000 + i] == pattern(i));
    CHECK(gm[0x100000 + 5000] == 0xaa);                 /* nothing past the payload */
    CHECK(gm[0x100000 - 1] == 0xaa);
    image_free(&im);

    /* setup_sects 0 means 4; payload larger than init_size decides the end. */
    im = make_bzimage(0, 3000, 100);
    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(k.end == 0x100000 + 3000);
    CHECK(memcmp(gm + 0x100000, im.bytes + 5 * 512, 3000) == 0);
    image_free(&im);
}

static void test_bzimage_errors(void)
{
    struct image im = make_bzimage(2, 4096, 0x20000);
    struct boot_kernel k;
    size_t setup = 3 * 512;

    reset_mem();
    /* Every truncation: fails with a reason until the payload starts, then loads. */
    for (size_t len = 0; len <= im.len; len++) {
        err[0] = 0;
        int rc = boot_load_kernel(&mem, &ram, im.bytes, len, &k, err, sizeof(err));
        if (len <= setup) {
            CHECK(rc == -EINVAL);
            CHECK(err[0] != 0);
        } else {
            CHECK(rc == 0);
            CHECK(k.entry == 0x100200);
        }
    }

    struct setup_header saved = *bz_hdr(&im);
    bz_hdr(&im)->header = 0x53726449;                   /* no HdrS */
    expect_kernel_fail(&im, im.len, -EINVAL);
    *bz_hdr(&im) = saved;
    bz_hdr(&im)->version = 0x020b;                      /* 2.11: no xloadflags */
    expect_kernel_fail(&im, im.len, -EINVAL);
    CHECK(strstr(err, "2.11") != NULL);
    *bz_hdr(&im) = saved;
    bz_hdr(&im)->xloadflags = 0;                        /* 32-bit entry only */
    expect_kernel_fail(&im, im.len, -EINVAL);
    *bz_hdr(&im) = saved;
    bz_hdr(&im)->setup_sects = 20;                      /* setup covers the whole file */
    expect_kernel_fail(&im, im.len, -EINVAL);
    bz_hdr(&im)->setup_sects = 255;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *bz_hdr(&im) = saved;

    /* Memory too small for init_size, or for the payload itself. */
    bz_hdr(&im)->init_size = (uint32_t)(MEM_SIZE - 0x100000 + 1);
    expect_kernel_fail(&im, im.len, -E2BIG);
    bz_hdr(&im)->init_size = (uint32_t)(MEM_SIZE - 0x100000);
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(k.end == MEM_SIZE);
    bz_hdr(&im)->init_size = 0xffffffff;
    expect_kernel_fail(&im, im.len, -E2BIG);
    *bz_hdr(&im) = saved;
    struct boot_ram small = { .low_end = 0x100000 + 1000 };
    CHECK(boot_load_kernel(&mem, &small, im.bytes, im.len, &k, err, sizeof(err)) == -E2BIG);
    struct boot_ram tiny = { .low_end = 0x80000 };      /* below the kernel's address */
    CHECK(boot_load_kernel(&mem, &tiny, im.bytes, im.len, &k, err, sizeof(err)) == -E2BIG);
    /* RAM that the layout claims but guest memory lacks: an error, not an overrun. */
    struct boot_ram liar = boot_ram_layout(2 * GIB);
    bz_hdr(&im)->init_size = 1 * GIB;                  /* only the payload is copied */
    CHECK(boot_load_kernel(&mem, &liar, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(k.end == 0x100000 + 1 * GIB);
    image_free(&im);

    /* A file that merely ends with the signature at 0x202. */
    uint8_t stub[0x206] = { 0 };
    memcpy(stub + 0x202, "HdrS", 4);
    struct image s = { .bytes = stub, .len = sizeof(stub) };
    expect_kernel_fail(&s, s.len, -EINVAL);
    expect_kernel_fail(&s, 0, -EINVAL);
    expect_kernel_fail(&s, 3, -EINVAL);
}

static void test_elf(void)
{
    struct image im = make_elf(&two_segs);
    struct boot_kernel k;

    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(!k.is_bzimage);
    CHECK(k.entry == 0x1000000);
    CHECK(k.end == 0x1400000 + 0x3000);
    CHECK(memcmp(gm + 0x1000000, im.bytes + 0x1000, 0x2345) == 0);
    CHECK(gm[0x1000000 + 0x2345] == 0xaa);
    CHECK(memcmp(gm + 0x1400000, im.bytes + 0x1000 + 0x2345, 0x100) == 0);
    for (size_t i = 0x100; i < 0x3000; i++)              /* bss zeroed */
        CHECK(gm[0x1400000 + i] == 0);
    CHECK(gm[0x1400000 + 0x3000] == 0xaa);
    CHECK(gm[0x7000] == 0xaa);                           /* the PT_NOTE is not loaded */
    CHECK(k.hdr.header == 0x53726448 && k.hdr.version >= 0x020c);
    CHECK(k.hdr.cmdline_size == LAYOUT_CMDLINE_MAX - 1);
    image_free(&im);

    /* One segment, all bss beyond one byte. */
    struct elf_spec one = { .nr_load = 1, .entry = 0x200040, .paddr = { 0x200000 },
                            .filesz = { 1 }, .memsz = { 0x10000 } };
    im = make_elf(&one);
    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(k.entry == 0x200040 && k.end == 0x210000);
    CHECK(gm[0x200000] == pattern(0x1000) && gm[0x200001] == 0 && gm[0x20ffff] == 0);
    image_free(&im);
}

static void test_elf_errors(void)
{
    struct image im = make_elf(&two_segs);
    struct boot_kernel k;
    Elf64_Ehdr eh = *elf_hdr(&im);
    Elf64_Phdr ph1 = *elf_load_phdr(&im, 1);

    reset_mem();
    /* Truncations: the headers must be whole, every segment must be in the file. */
    for (size_t len = 0; len < im.len; len++) {
        err[0] = 0;
        int rc = boot_load_kernel(&mem, &ram, im.bytes, len, &k, err, sizeof(err));
        CHECK(rc == -EINVAL);
        CHECK(err[0] != 0);
    }

    elf_hdr(&im)->e_ident[EI_CLASS] = ELFCLASS32;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_machine = EM_386;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_type = ET_DYN;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_phentsize = sizeof(Elf64_Phdr) - 1;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_phnum = 0;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_phnum = 0xffff;                      /* table runs past the file */
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_phoff = im.len + 1;
    expect_kernel_fail(&im, im.len, -EINVAL);
    elf_hdr(&im)->e_phoff = UINT64_MAX - 8;
    expect_kernel_fail(&im, im.len, -EINVAL);
    elf_hdr(&im)->e_phoff = im.len - sizeof(Elf64_Phdr) + 1;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;
    elf_hdr(&im)->e_phnum = 1;                           /* only the PT_NOTE */
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_hdr(&im) = eh;

    elf_load_phdr(&im, 1)->p_offset = im.len;            /* data beyond the file */
    expect_kernel_fail(&im, im.len, -EINVAL);
    elf_load_phdr(&im, 1)->p_offset = UINT64_MAX - 0x10;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_load_phdr(&im, 1) = ph1;
    elf_load_phdr(&im, 1)->p_memsz = ph1.p_filesz - 1;   /* p_filesz > p_memsz, in the file */
    expect_kernel_fail(&im, im.len, -EINVAL);
    elf_load_phdr(&im, 1)->p_memsz = 0;
    expect_kernel_fail(&im, im.len, -EINVAL);
    *elf_load_phdr(&im, 1) = ph1;
    elf_load_phdr(&im, 1)->p_paddr = MEM_SIZE - 0x1000;  /* bss runs off RAM */
    expect_kernel_fail(&im, im.len, -E2BIG);
    elf_load_phdr(&im, 1)->p_paddr = MEM_SIZE - 0x3000;  /* exactly fits */
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(k.end == MEM_SIZE);
    elf_load_phdr(&im, 1)->p_paddr = UINT64_MAX - 0x10;  /* wraps */
    expect_kernel_fail(&im, im.len, -E2BIG);
    elf_load_phdr(&im, 1)->p_paddr = 8 * GIB;
    expect_kernel_fail(&im, im.len, -E2BIG);
    *elf_load_phdr(&im, 1) = ph1;
    elf_load_phdr(&im, 1)->p_memsz = UINT64_MAX;
    elf_load_phdr(&im, 1)->p_filesz = 0x100;
    expect_kernel_fail(&im, im.len, -E2BIG);
    *elf_load_phdr(&im, 1) = ph1;

    /* RAM that the layout claims but guest memory lacks. */
    struct boot_ram liar = boot_ram_layout(2 * GIB);
    elf_load_phdr(&im, 1)->p_paddr = 1 * GIB;
    CHECK(boot_load_kernel(&mem, &liar, im.bytes, im.len, &k, err, sizeof(err)) == -E2BIG);
    CHECK(err[0] != 0);
    image_free(&im);
}

static void test_initrd(void)
{
    struct image im = make_bzimage(1, 5000, 0x100000);
    struct boot_kernel k;
    uint64_t addr = 0;
    size_t len = 5000;
    uint8_t *rd = malloc(MEM_SIZE);

    CHECK(rd);
    for (size_t i = 0; i < MEM_SIZE; i++)
        rd[i] = (uint8_t)(i >> 3);
    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, len, &addr, err, sizeof(err)) == 0);
    CHECK(addr == MEM_SIZE - 8192);                      /* page-aligned, at the top */
    CHECK(memcmp(gm + addr, rd, len) == 0);

    /* initrd_addr_max below the end of RAM caps the placement. */
    k.hdr.initrd_addr_max = 32 * MIB - 1;
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, len, &addr, err, sizeof(err)) == 0);
    CHECK(addr == 32 * MIB - 8192);
    CHECK(addr + len <= 32 * MIB);
    k.hdr.initrd_addr_max = 0;                           /* 0: no limit of its own */
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, 4096, &addr, err, sizeof(err)) == 0);
    CHECK(addr == MEM_SIZE - 4096);
    k.hdr.initrd_addr_max = 0xffffffff;
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, 4096, &addr, err, sizeof(err)) == 0);
    CHECK(addr == MEM_SIZE - 4096);

    /* Largest that fits above the kernel (end 0x200000), and one byte more. */
    size_t room = MEM_SIZE - 0x200000;
    reset_mem();
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, room, &addr, err, sizeof(err)) == 0);
    CHECK(addr == 0x200000);
    CHECK(memcmp(gm + addr, rd, room) == 0);
    err[0] = 0;
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, room + 1, &addr, err, sizeof(err)) == -E2BIG);
    CHECK(err[0] != 0);
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, MEM_SIZE, &addr, err, sizeof(err)) == -E2BIG);
    /* Unaligned kernel end: the initrd starts on the next page. */
    k.end = 0x200001;
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, room - 4096, &addr, err, sizeof(err)) == 0);
    CHECK(addr == 0x201000);
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, room - 4095, &addr, err, sizeof(err)) == -E2BIG);
    /* An empty initrd is fine. */
    CHECK(boot_load_initrd(&mem, &ram, &k, rd, 0, &addr, err, sizeof(err)) == 0);
    CHECK(addr == MEM_SIZE);
    /* Layout claims RAM guest memory lacks: an error, not an overrun. */
    struct boot_ram liar = boot_ram_layout(2 * GIB);
    err[0] = 0;
    CHECK(boot_load_initrd(&mem, &liar, &k, rd, 4096, &addr, err, sizeof(err)) == -E2BIG);
    CHECK(err[0] != 0);
    free(rd);
    image_free(&im);
}

static void test_params(void)
{
    struct image im = make_bzimage(1, 5000, 0x100000);
    struct boot_kernel k;
    const char *cmdline = "console=ttyS0 quiet";

    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(boot_write_params(&mem, &ram, &k, cmdline, 0x3000000, 12345, err, sizeof(err)) == 0);
    struct boot_params bp = read_zero_page();
    CHECK(bp.hdr.header == 0x53726448 && bp.hdr.version == 0x020f);
    CHECK(bp.hdr.type_of_loader == 0xff);
    CHECK(bp.hdr.loadflags & CAN_USE_HEAP);
    CHECK(bp.hdr.cmd_line_ptr == LAYOUT_CMDLINE);
    CHECK(bp.hdr.ramdisk_image == 0x3000000 && bp.hdr.ramdisk_size == 12345);
    CHECK(bp.hdr.init_size == 0x100000);
    CHECK(strcmp((char *)gm + LAYOUT_CMDLINE, cmdline) == 0);
    CHECK(bp.e820_entries == 3);
    CHECK(bp.e820_table[0].addr == 0 && bp.e820_table[0].size == 0x9fc00 &&
          bp.e820_table[0].type == 1);
    CHECK(bp.e820_table[1].addr == 0xe0000 && bp.e820_table[1].addr + bp.e820_table[1].size ==
          0x100000 && bp.e820_table[1].type == 2);
    CHECK(bp.e820_table[2].addr == 0x100000 && bp.e820_table[2].size == MEM_SIZE - 0x100000 &&
          bp.e820_table[2].type == 1);
    CHECK(bp.e820_table[3].size == 0);
    CHECK(bp.ext_ramdisk_image == 0 && bp.sentinel == 0);

    /* A layout with high RAM (only the map is written; nothing lives above 64 MiB). */
    struct boot_ram big = boot_ram_layout(6 * GIB);
    CHECK(boot_write_params(&mem, &big, &k, "", 0, 0, err, sizeof(err)) == 0);
    bp = read_zero_page();
    CHECK(bp.e820_entries == 4);
    CHECK(bp.e820_table[2].size == 3 * GIB - 0x100000);
    CHECK(bp.e820_table[3].addr == 4 * GIB && bp.e820_table[3].size == 3 * GIB);
    CHECK(gm[LAYOUT_CMDLINE] == 0);

    /* Command line length: the kernel's cmdline_size (2047 here) is the limit. */
    char *line = malloc(8192);
    CHECK(line);
    memset(line, 'x', 8191);
    line[8191] = 0;
    line[2047] = 0;
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == 0);
    CHECK(strlen((char *)gm + LAYOUT_CMDLINE) == 2047);
    line[2047] = 'x';
    line[2048] = 0;
    err[0] = 0;
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == -E2BIG);
    CHECK(err[0] != 0);
    line[2048] = 'x';
    k.hdr.cmdline_size = 0;                              /* old default: 255 */
    line[255] = 0;
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == 0);
    line[255] = 'x';
    line[256] = 0;
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == -E2BIG);
    line[256] = 'x';
    k.hdr.cmdline_size = 0xffffffff;                     /* capped at our 4 KiB slot */
    line[4095] = 0;
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == 0);
    line[4095] = 'x';
    line[4096] = 0;
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == -E2BIG);
    line[4096] = 'x';
    CHECK(boot_write_params(&mem, &ram, &k, line, 0, 0, err, sizeof(err)) == -E2BIG);
    CHECK(gm[LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX] == 0xaa); /* nothing past the slot */
    free(line);
    image_free(&im);

    /* An ELF kernel gets a protocol 2.15 header of our own with a 4 KiB limit. */
    im = make_elf(&two_segs);
    reset_mem();
    CHECK(boot_load_kernel(&mem, &ram, im.bytes, im.len, &k, err, sizeof(err)) == 0);
    CHECK(boot_write_params(&mem, &ram, &k, "root=/dev/vda", 0, 0, err, sizeof(err)) == 0);
    bp = read_zero_page();
    CHECK(bp.hdr.boot_flag == 0xaa55 && bp.hdr.header == 0x53726448);
    CHECK(bp.hdr.type_of_loader == 0xff && bp.hdr.cmd_line_ptr == LAYOUT_CMDLINE);
    CHECK(bp.hdr.ramdisk_image == 0 && bp.hdr.ramdisk_size == 0);
    CHECK(bp.e820_entries == 3);
    image_free(&im);

    /* Guest memory too small for the zero page or command line. */
    uint8_t small_buf[0x8000];
    struct guest_mem small;
    gmem_init_flat(&small, small_buf, sizeof(small_buf));
    err[0] = 0;
    CHECK(boot_write_params(&small, &ram, &k, "x", 0, 0, err, sizeof(err)) == -E2BIG);
    CHECK(err[0] != 0);
}

int main(void)
{
    gm = calloc(1, MEM_SIZE);
    CHECK(gm);
    gmem_init_flat(&mem, gm, MEM_SIZE);
    test_ram_layout();
    test_e820();
    test_bzimage();
    test_bzimage_errors();
    test_elf();
    test_elf_errors();
    test_initrd();
    test_params();
    free(gm);
    printf("test_boot: ok\n");
    return 0;
}
