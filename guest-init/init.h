/* sbx-init's PID-1 duties: file systems, flags, facts about the guest. */
#ifndef SBX_INIT_INIT_H
#define SBX_INIT_INIT_H

#include <stddef.h>
#include <stdint.h>

struct init_flags {
    int poweroff;        /* sbx.poweroff */
    int panic;           /* sbx.panic */
    char hostname[64];   /* sbx.hostname=NAME, default "sandbox" */
    char root[64];       /* sbx.root=DEV: switch to this ext4 disk; "" stays in the initramfs */
    char net[96];        /* sbx.net=ADDR/PREFIX,GATEWAY[,DNS]: eth0's set-up; "" none */
};

/* eth0's static IPv4 set-up from sbx.net= (addresses in network byte order). */
struct init_net {
    uint32_t addr, netmask, gateway, dns;  /* dns 0: no resolv.conf */
};

/* Mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp and /run (creating the
 * directories) and adds /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr. Goes on
 * past a failure; returns -1 with the first failure in err. */
int init_mount_all(char *err, size_t errlen);

/* Makes fds 0, 1 and 2 /dev/console when the kernel could not (no /dev/console
 * in the initramfs); call after init_mount_all. */
void init_open_console(void);

/* Loads the modules listed in list (one path per line), in order; a missing
 * list is fine. Goes on past a failure; returns -1 with the first failure in err. */
int init_load_modules(const char *list, char *err, size_t errlen);

/* Unmounts what init_mount_all mounted (best effort), after a sync. */
void init_unmount_all(void);

/* Parses the sbx.* flags of a kernel command line. */
void init_parse_flags(const char *cmdline, struct init_flags *flags);

/* Reads /proc/cmdline and parses it. */
void init_read_flags(struct init_flags *flags);

/* Mounts dev (ext4) and makes it the root, moving /dev (with /dev/pts and
 * /dev/shm), /proc, /sys, /run and /tmp along; the calling process (PID 1) goes on
 * in the new root. 0, or -1 with the reason in err (the initramfs stays the root
 * then, its mounts where they were). */
int init_switch_root(const char *dev, char *err, size_t errlen);

#define INIT_EXT4_SB_SIZE 1024

/* From an ext4 superblock (the 1024 bytes at byte 1024 of its device) and the
 * device's size in bytes: the file system's block count now, and the count that
 * fills the device (never less than now; at most 2^32 - 1 without the 64bit
 * feature). 0, or -EINVAL when sb is not ext4's. */
int init_ext4_grow_target(const uint8_t sb[INIT_EXT4_SB_SIZE], uint64_t dev_bytes,
                          uint64_t *blocks_now, uint64_t *blocks_new);

/* Grows the ext4 on dev, mounted at mountpoint, online to fill dev (a sandbox
 * disk larger than its snapshot). *grown_to: the new size in bytes, 0 when it
 * already filled dev. 0, or negative errno with the reason in err. */
int init_grow_root(const char *dev, const char *mountpoint, uint64_t *grown_to, char *err,
                   size_t errlen);

/* Brings the loopback interface up. 0 or -1. */
int init_loopback_up(void);

/* Parses sbx.net's value "10.0.2.15/24,10.0.2.2[,10.0.2.3]" (prefix 1 to 30,
 * the gateway inside the network). 0, or -1 if malformed. */
int init_parse_net(const char *spec, struct init_net *net);

/* Brings eth0 up (waiting up to timeout_ms for its driver) with net's address,
 * a default route through the gateway, and with a DNS server writes
 * /etc/resolv.conf (replacing a symlink there). 0, or -1 with the reason in err. */
int init_net_up(const struct init_net *net, int timeout_ms, char *err, size_t errlen);

/* A listening AF_VSOCK stream socket on port (any CID): fd or negative errno. */
int init_vsock_listen(unsigned port);

/* Kernel uptime in seconds (from /proc/uptime), or -1. */
double init_uptime(void);

/* Number of online CPUs (from /sys/devices/system/cpu/online), or -1. */
int init_online_cpus(void);

#endif
