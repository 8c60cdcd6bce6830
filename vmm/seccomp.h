/* sbx-vmm's seccomp filter: once set-up is done (KVM, guest RAM, devices,
 * disk and sockets opened, kernel loaded), every thread of the process may only
 * make the system calls the VMM makes at run time (see the table in seccomp.c).
 * A guest that escapes into the VMM finds no execve, no new files to write, no
 * sockets but Unix ones (and IPv4 TCP/UDP/ping with --net user), and no KVM
 * ioctls that create anything. */
#ifndef SBX_VMM_SECCOMP_H
#define SBX_VMM_SECCOMP_H

/* What a call outside the allow-list does (--seccomp=kill|log|off). */
enum vmm_seccomp_mode {
    VMM_SECCOMP_KILL = 0,  /* the whole process dies of SIGSYS (default) */
    VMM_SECCOMP_LOG,       /* the call runs and is logged by the kernel (audit/dmesg) */
    VMM_SECCOMP_OFF,       /* no filter */
};

/* "kill", "log" or "off" into *mode. 0, or -EINVAL for anything else. */
int vmm_seccomp_parse(const char *s, enum vmm_seccomp_mode *mode);

/* The mode's name ("kill", "log", "off"). */
const char *vmm_seccomp_name(enum vmm_seccomp_mode mode);

/* What the configured devices add to the allow-list. */
#define VMM_SECCOMP_NEED_NET (1u << 0)  /* --net user: libslirp's IPv4 sockets */

/* Installs the filter on every thread of the process (threads started later
 * inherit it); VMM_SECCOMP_OFF installs nothing. needs: VMM_SECCOMP_NEED_* bits.
 * Sets no_new_privs. Call once, after set-up and before the vCPUs run.
 * 0, or negative errno. */
int vmm_seccomp_install(enum vmm_seccomp_mode mode, unsigned needs);

#endif
