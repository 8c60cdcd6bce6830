/* sbx-vmm's seccomp filter (see seccomp.h), built with libseccomp.
 *
 * The allow-list is what runs after set-up, by thread:
 *   vCPU threads   KVM_RUN, KVM_IRQ_LINE (device interrupts), KVM_GET_REGS/SREGS
 *                  (register dumps of a crashed or stopped guest), write (console),
 *                  getrandom (virtio-rng), futex (device locks); they are started
 *                  after the filter: clone with thread flags, mmap/mprotect of the
 *                  stack, set_robust_list, rseq, prctl(PR_SET_NAME), rt_sigprocmask
 *   event loop     epoll, read/write, the vsock bridge's Unix sockets (accept4,
 *                  socket(AF_UNIX)+connect to the guest's ports, recv/send/sendmsg,
 *                  shutdown, close), signalfd reads, evloop_call's eventfd, the
 *                  vCPU kick (rt_sigaction, tgkill SIGUSR1), pthread_join at the end
 *   snapfs         pread/pwrite(v) on the overlay and packs, packs opened on first
 *                  use (openat, read-only only), fdatasync, hole punching, the
 *                  io_uring path (io_uring_enter, its eventfd, decoder threads
 *                  started at disk open: futex, malloc), poll at close
 *   everywhere     malloc (brk, mmap/munmap/mremap/madvise, never executable),
 *                  clock_gettime, exit/exit_group.
 *   --net user     libslirp's IPv4 sockets on the loop thread (net_rules, added
 *                  only with a network device).
 * Nothing can become executable (mmap/mprotect with PROT_EXEC), files can only be
 * opened read-only, and the KVM ioctls that create vCPUs, memory slots or devices
 * are gone. clone3 answers ENOSYS (its flags live in memory, where a filter cannot
 * look) so that glibc falls back to clone, whose flags are checked. unlink answers
 * EPERM: the vsock socket file stays behind at exit (the next start replaces it)
 * rather than an escaped guest being able to delete files.
 *
 * Operations submitted through snapfs's io_uring (io_uring_enter is allowed)
 * are not system calls and are not filtered here; snapfs restricts the ring
 * itself to read, write, writev, fsync and fallocate (IORING_REGISTER_RESTRICTIONS,
 * snapfs/aio.c). What a filter cannot stop: connect
 * reaches any Unix socket path and openat reads any file the VMM's user may read
 * (paths live in memory). */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "log.h"

struct rule {
    int nr;             /* SCMP_SYS(name) */
    uint32_t action;    /* SCMP_ACT_ALLOW or SCMP_ACT_ERRNO(...) */
    unsigned nargs;     /* conditions, all of which must hold */
    struct scmp_arg_cmp args[2];
};

#define ALLOW(name) { SCMP_SYS(name), SCMP_ACT_ALLOW, 0, { { 0 } } }
#define ALLOW_IF(name, cmp) { SCMP_SYS(name), SCMP_ACT_ALLOW, 1, { cmp } }
#define ALLOW_IF2(name, c1, c2) { SCMP_SYS(name), SCMP_ACT_ALLOW, 2, { c1, c2 } }
#define DENY(name, err) { SCMP_SYS(name), SCMP_ACT_ERRNO(err), 0, { { 0 } } }
#define ARG_EQ(n, v) { .arg = (n), .op = SCMP_CMP_EQ, .datum_a = (v) }
#define ARG_MASKED_EQ(n, mask, v) \
    { .arg = (n), .op = SCMP_CMP_MASKED_EQ, .datum_a = (mask), .datum_b = (v) }
/* ioctl's command is an unsigned int to the kernel: compare the low 32 bits. */
#define IOCTL(cmd) ALLOW_IF(ioctl, ARG_MASKED_EQ(1, 0xffffffffu, (cmd)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The flags glibc's pthread_create passes to clone must all be set; namespaces,
 * vfork and ptrace flags must not be: new threads only, never processes. */
#define THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD)
#define NOT_FOR_THREADS (CLONE_VFORK | CLONE_PTRACE | CLONE_UNTRACED | CLONE_NEWNS | \
                         CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
                         CLONE_NEWPID | CLONE_NEWNET | CLONE_IO)
/* socket's type without SOCK_NONBLOCK / SOCK_CLOEXEC. */
#define SOCK_TYPE_MASK 0xf
/* openat: read-only, nothing created or truncated. */
#define OPEN_WRITE_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)

static const struct rule rules[] = {
    /* KVM at run time */
    IOCTL(KVM_RUN),
    IOCTL(KVM_IRQ_LINE),
    IOCTL(KVM_GET_REGS),
    IOCTL(KVM_GET_SREGS),
    /* file descriptors the loop and snapfs already hold */
    ALLOW(read), ALLOW(write), ALLOW(readv), ALLOW(writev),
    ALLOW(pread64), ALLOW(pwrite64), ALLOW(preadv), ALLOW(pwritev),
    ALLOW(preadv2), ALLOW(pwritev2),
    ALLOW(close),
    ALLOW(fdatasync),
    ALLOW_IF(fallocate, ARG_EQ(1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)),
    ALLOW_IF(openat, ARG_MASKED_EQ(2, OPEN_WRITE_FLAGS, O_RDONLY)),  /* packs on demand */
    ALLOW(io_uring_enter),
    /* event loop */
    ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_pwait2), ALLOW(epoll_ctl),
    ALLOW(poll), ALLOW(ppoll),  /* waits for I/O in flight at close */
    /* vsock bridge: Unix stream sockets only */
    ALLOW_IF2(socket, ARG_EQ(0, AF_UNIX), ARG_MASKED_EQ(1, SOCK_TYPE_MASK, SOCK_STREAM)),
    ALLOW(connect), ALLOW(accept4), ALLOW(shutdown),
    ALLOW(recvfrom), ALLOW(recvmsg), ALLOW(sendto), ALLOW(sendmsg),
    DENY(unlink, EPERM), DENY(unlinkat, EPERM),
    /* signals: signalfd, the vCPU kick, abort() */
    ALLOW(rt_sigaction), ALLOW(rt_sigprocmask), ALLOW(rt_sigreturn), ALLOW(restart_syscall),
    ALLOW_IF(tgkill, ARG_EQ(2, SIGUSR1)), ALLOW_IF(tgkill, ARG_EQ(2, SIGABRT)),
    ALLOW(getpid), ALLOW(gettid),
    /* memory */
    ALLOW(brk), ALLOW(munmap), ALLOW(mremap), ALLOW(madvise),
    ALLOW_IF(mmap, ARG_MASKED_EQ(2, PROT_EXEC, 0)),
    ALLOW_IF(mprotect, ARG_MASKED_EQ(2, PROT_EXEC, 0)),
    /* threads */
    ALLOW(futex),
    ALLOW_IF(clone, ARG_MASKED_EQ(0, THREAD_FLAGS | NOT_FOR_THREADS, THREAD_FLAGS)),
    DENY(clone3, ENOSYS),
    ALLOW(set_robust_list), ALLOW(rseq),
    ALLOW_IF(prctl, ARG_EQ(0, PR_SET_NAME)),
    /* time, entropy, the end */
    ALLOW(clock_gettime),  /* the vDSO's fallback */
    ALLOW(getrandom),
    ALLOW(exit), ALLOW(exit_group),
#ifdef SBX_TEST_BUILD
    /* The sanitizer runtime's own calls in a thread it starts (unit tests only). */
    ALLOW(sigaltstack), ALLOW(sched_getaffinity),
#endif
};

/* --net user: libslirp makes the guest's connections with IPv4 sockets of its
 * own (TCP, UDP, ping), made non-blocking and tuned with fcntl/setsockopt, and
 * rereads the host's /etc/resolv.conf for the DNS forwarder. A raw socket (its
 * ping fallback where unprivileged ping sockets are not allowed) is refused
 * rather than fatal: only ping fails. */
static const struct rule net_rules[] = {
    ALLOW_IF2(socket, ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SOCK_TYPE_MASK, SOCK_STREAM)),
    ALLOW_IF2(socket, ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SOCK_TYPE_MASK, SOCK_DGRAM)),
    { SCMP_SYS(socket), SCMP_ACT_ERRNO(EPERM), 2,
      { ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SOCK_TYPE_MASK, SOCK_RAW) } },
    ALLOW(bind), ALLOW(getsockname), ALLOW(getpeername),
    ALLOW(setsockopt), ALLOW(getsockopt),
    ALLOW_IF(fcntl, ARG_EQ(1, F_GETFL)), ALLOW_IF(fcntl, ARG_EQ(1, F_SETFL)),
    ALLOW_IF(fcntl, ARG_EQ(1, F_GETFD)), ALLOW_IF(fcntl, ARG_EQ(1, F_SETFD)),
    IOCTL(FIONREAD), IOCTL(FIONBIO),
    ALLOW(timerfd_settime),
    ALLOW(newfstatat), ALLOW(fstat), ALLOW(lseek),
};

int vmm_seccomp_parse(const char *s, enum vmm_seccomp_mode *mode)
{
    static const enum vmm_seccomp_mode all[] = { VMM_SECCOMP_KILL, VMM_SECCOMP_LOG,
                                                 VMM_SECCOMP_OFF };

    for (size_t i = 0; s && i < ARRAY_LEN(all); i++) {
        if (strcmp(s, vmm_seccomp_name(all[i])) == 0) {
            *mode = all[i];
            return 0;
        }
    }
    return -EINVAL;
}

const char *vmm_seccomp_name(enum vmm_seccomp_mode mode)
{
    switch (mode) {
    case VMM_SECCOMP_KILL: return "kill";
    case VMM_SECCOMP_LOG: return "log";
    case VMM_SECCOMP_OFF: return "off";
    }
    return "?";
}

static int add_rules(scmp_filter_ctx ctx, const struct rule *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct rule *r = &table[i];
        int rc = seccomp_rule_add_array(ctx, r->action, r->nr, r->nargs, r->args);
        if (rc < 0) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
            log_err("seccomp: cannot add the rule for %s: %s", name ? name : "?",
                    strerror(-rc));
            free(name);
            return rc;
        }
    }
    return 0;
}

int vmm_seccomp_install(enum vmm_seccomp_mode mode, unsigned needs)
{
    if (mode == VMM_SECCOMP_OFF) {
        log_info("seccomp: off, no filter");
        return 0;
    }
    uint32_t deflt = mode == VMM_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
    scmp_filter_ctx ctx = seccomp_init(deflt);
    int rc;

    if (!ctx)
        return -ENOMEM;
    /* All threads at once: snapfs's decoder threads already run. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = add_rules(ctx, rules, ARRAY_LEN(rules));
    if (rc == 0 && (needs & VMM_SECCOMP_NEED_NET))
        rc = add_rules(ctx, net_rules, ARRAY_LEN(net_rules));
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (rc < 0)
        log_err("seccomp: cannot install the filter: %s", strerror(-rc));
    else
        log_info("seccomp: filter installed, calls outside the allow-list %s",
                 mode == VMM_SECCOMP_LOG ? "are logged by the kernel" : "kill the process");
    seccomp_release(ctx);
    return rc;
}
