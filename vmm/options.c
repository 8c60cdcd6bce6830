/* Option parsing with getopt_long: the one way sbx-vmm reads its command line. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char vmm_default_cmdline[] =
    "console=ttyS0 reboot=k panic=-1 pci=off nomodeset i8042.noaux i8042.nomux "
    "i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check quiet";

const char *vmm_options_usage(void)
{
    return "usage: sbx-vmm --kernel PATH [--initrd PATH] [--cmdline STR] [--mem MIB] [--vcpus N]\n"
           "               [--console stdio|none|PATH] [--vsock-uds PATH]\n"
           "               [--disk store=DIR,image=NAME|store=DIR,overlay=PATH]\n"
           "               [--net user[,host-loopback=on][,lan=on][,mac=MAC]]\n"
           "               [--seccomp kill|log|off] [-v]\n"
           "  --kernel PATH     Linux bzImage or ELF vmlinux (x86_64)\n"
           "  --initrd PATH     initial ramdisk\n"
           "  --cmdline STR     kernel command line (default: a quiet serial console)\n"
           "  --mem MIB         guest memory in MiB (default 256)\n"
           "  --vcpus N         virtual CPUs (default 1)\n"
           "  --console WHERE   serial console: stdio (default), none, or a file to write\n"
           "  --vsock-uds PATH  Unix socket bridging the guest's vsock (CID 3)\n"
           "  --disk SPEC       virtio-blk disk from a snapfs store: store=DIR,image=NAME\n"
           "                    (read-only) or store=DIR,overlay=PATH (read-write overlay);\n"
           "                    add io=sync to serve requests one at a time on the event\n"
           "                    loop instead of in flight together on io_uring (io=uring)\n"
           "  --net user[,OPT]  virtio-net with user-mode networking (libslirp): outbound\n"
           "                    TCP/UDP/ping from guest address 10.0.2.15/24, gateway\n"
           "                    10.0.2.2, DNS 10.0.2.3 (forwarded to the host's resolver);\n"
           "                    the guest sets itself up from sbx.net=" NET_SLIRP_GUEST_CMDLINE "\n"
           "                    on its command line (sbx-init). Never reachable: 0.0.0.0/8\n"
           "                    and 169.254.0.0/16 (cloud metadata); the host's loopback\n"
           "                    (127.0.0.0/8, 10.0.2.2) only with host-loopback=on;\n"
           "                    private networks (10/8, 172.16/12, 192.168/16,\n"
           "                    100.64/10) and multicast only with lan=on.\n"
           "                    mac=52:54:00:12:34:56 sets the MAC (default: random).\n"
           "                    --net none: no network device (the default)\n"
           "  --seccomp MODE    system calls outside the VMM's run-time allow-list, from\n"
           "                    just before the guest runs: kill (default: the process\n"
           "                    dies of SIGSYS), log (allowed, logged by the kernel:\n"
           "                    dmesg/audit, to find a missing one), off (no filter)\n"
           "  -v                more logging (repeat for debug)\n"
           "exit status: 0 guest powered off, 1 set-up error, 2 guest reset or rebooted,\n"
           "             3 guest crashed (triple fault, KVM internal error, failed entry)\n";
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;

    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_VCPUS, OPT_CONSOLE, OPT_VSOCK,
       OPT_DISK, OPT_SECCOMP, OPT_NET };

static const struct option long_opts[] = {
    { "kernel", required_argument, NULL, OPT_KERNEL },
    { "initrd", required_argument, NULL, OPT_INITRD },
    { "cmdline", required_argument, NULL, OPT_CMDLINE },
    { "mem", required_argument, NULL, OPT_MEM },
    { "vcpus", required_argument, NULL, OPT_VCPUS },
    { "console", required_argument, NULL, OPT_CONSOLE },
    { "vsock-uds", required_argument, NULL, OPT_VSOCK },
    { "disk", required_argument, NULL, OPT_DISK },
    { "seccomp", required_argument, NULL, OPT_SECCOMP },
    { "net", required_argument, NULL, OPT_NET },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int apply_option(struct vmm_options *o, int c, const char *arg, char *err, size_t errlen)
{
    uint64_t v;

    switch (c) {
    case OPT_KERNEL: o->kernel = arg; return 0;
    case OPT_INITRD: o->initrd = arg; return 0;
    case OPT_CMDLINE: o->cmdline = arg; return 0;
    case OPT_CONSOLE: o->console = arg; return 0;
    case OPT_VSOCK: o->vsock_uds = arg; return 0;
    case OPT_DISK: o->disk = arg; return 0;
    case 'v': o->verbose++; return 0;
    case 'h': o->help = 1; return 0;
    case OPT_MEM:
        if (parse_u64(arg, VMM_MIN_MEM_MIB, VMM_MAX_MEM_MIB, &v) < 0) {
            snprintf(err, errlen, "--mem: expected MiB between %d and %d, got '%s'",
                     VMM_MIN_MEM_MIB, VMM_MAX_MEM_MIB, arg);
            return -EINVAL;
        }
        o->mem_mib = v;
        return 0;
    case OPT_SECCOMP:
        if (vmm_seccomp_parse(arg, &o->seccomp) < 0) {
            snprintf(err, errlen, "--seccomp: expected kill, log or off, got '%s'", arg);
            return -EINVAL;
        }
        return 0;
    case OPT_NET:
        if (net_slirp_parse(arg, &o->net) < 0) {
            snprintf(err, errlen, "--net: expected none or user[,host-loopback=on|off]"
                     "[,lan=on|off][,mac=XX:XX:XX:XX:XX:XX], got '%s'", arg);
            return -EINVAL;
        }
        return 0;
    case OPT_VCPUS:
        if (parse_u64(arg, 1, VMM_MAX_VCPUS, &v) < 0) {
            snprintf(err, errlen, "--vcpus: expected 1 to %d, got '%s'", VMM_MAX_VCPUS, arg);
            return -EINVAL;
        }
        o->vcpus = (unsigned)v;
        return 0;
    default:
        snprintf(err, errlen, "unknown or incomplete option (see --help)");
        return -EINVAL;
    }
}

int vmm_options_parse(struct vmm_options *o, int argc, char **argv, char *err, size_t errlen)
{
    int c;

    *o = (struct vmm_options){ .console = "stdio", .mem_mib = 256, .vcpus = 1,
                                .seccomp = VMM_SECCOMP_KILL };
    optind = 0;  /* 0, not 1: glibc then also forgets the previous argv's state */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
        int rc = apply_option(o, c, optarg, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (o->help)
        return 0;
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!o->kernel) {
        snprintf(err, errlen, "--kernel is required");
        return -EINVAL;
    }
    if (!o->cmdline)
        o->cmdline = vmm_default_cmdline;
    return 0;
}
