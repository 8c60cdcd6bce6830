/* sbx-vmm's command line. */
#ifndef SBX_VMM_OPTIONS_H
#define SBX_VMM_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "net_slirp.h"
#include "seccomp.h"

#define VMM_MAX_VCPUS   64
#define VMM_MIN_MEM_MIB 16
#define VMM_MAX_MEM_MIB (1024 * 1024)

struct vmm_options {
    const char *kernel;     /* bzImage or ELF vmlinux; required */
    const char *initrd;     /* optional */
    const char *cmdline;    /* kernel command line; a default when NULL */
    const char *console;    /* "stdio" (default), "none" or a file path */
    const char *vsock_uds;  /* host Unix socket of the vsock bridge; NULL: no vsock */
    const char *disk;       /* virtio-blk SPEC (parsed by virtio_blk.c); NULL: no disk */
    struct net_slirp_config net;  /* --net; net.enabled false: no network device */
    uint64_t mem_mib;
    unsigned vcpus;
    enum vmm_seccomp_mode seccomp;  /* --seccomp; default VMM_SECCOMP_KILL */
    int verbose;            /* -v count */
    int help;
};

/* The kernel command line used when --cmdline is not given. */
extern const char vmm_default_cmdline[];

/* Parses argv into opts. Returns 0, or -EINVAL with a one-line reason in err.
 * With --help, returns 0 and sets opts->help (no other checks). */
int vmm_options_parse(struct vmm_options *opts, int argc, char **argv, char *err, size_t errlen);

/* The usage text. */
const char *vmm_options_usage(void);

#endif
