/* Fuzzes the Linux boot protocol loader: the input is taken as a kernel image
 * (bzImage or ELF), as an initrd and as a command line, loaded into a 64 MiB flat
 * guest memory under one of several RAM layouts, including ones that claim more
 * RAM than guest memory has. Nothing may crash or write outside guest memory.
 * Input: u8 layout, u8 command line length / 32, then the image bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../boot.h"
#include "../layout.h"

#define MEM_SIZE (64ULL << 20)

static uint8_t *gm;
static struct guest_mem mem;

static struct boot_ram pick_layout(uint8_t sel)
{
    switch (sel & 3) {
    case 0: return boot_ram_layout(MEM_SIZE);
    case 1: return boot_ram_layout(2ULL << 20);             /* smaller than memory */
    case 2: return boot_ram_layout(2ULL << 30);             /* claims RAM it lacks */
    default: return boot_ram_layout(8ULL << 30);            /* high RAM above 4 GiB */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char cmdline[8192];
    struct boot_kernel k;
    char err[256];
    uint64_t initrd = 0;

    if (size < 2)
        return 0;
    if (!gm) {
        gm = calloc(1, MEM_SIZE);
        if (!gm)
            abort();
        gmem_init_flat(&mem, gm, MEM_SIZE);
    }
    struct boot_ram ram = pick_layout(data[0]);
    const uint8_t *image = data + 2;
    size_t len = size - 2;
    size_t cmdlen = (size_t)data[1] * 32;

    if (cmdlen > len)
        cmdlen = len;
    memcpy(cmdline, image, cmdlen);
    cmdline[cmdlen] = 0;

    if (boot_load_kernel(&mem, &ram, image, len, &k, err, sizeof(err)) < 0) {
        if (err[0] == 0)
            abort();                                        /* a failure says why */
        return 0;
    }
    if (k.end < LAYOUT_KERNEL && k.is_bzimage)
        abort();
    /* The image doubles as the initrd: every size up to the fuzzer's limit. */
    if (boot_load_initrd(&mem, &ram, &k, image, len, &initrd, err, sizeof(err)) == 0) {
        if (initrd & 4095 || initrd + len > ram.low_end)
            abort();
    } else {
        initrd = 0;
    }
    boot_write_params(&mem, &ram, &k, cmdline, initrd, initrd ? len : 0, err, sizeof(err));
    return 0;
}
