/* sbx-vmm: one KVM microVM per process. See options.c for the command line and
 * vm.h for the life cycle. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"
#include "options.h"
#include "seccomp.h"
#include "vm.h"

/* SIGINT/SIGTERM/SIGHUP stop the guest like a power cut, reported as
 * VM_EXIT_CRASH so that callers notice it did not power off by itself. */
static void on_signal(void *opaque, int fd, uint32_t events)
{
    struct vm *vm = opaque;
    struct signalfd_siginfo si;
    char reason[64];

    (void)events;
    if (read(fd, &si, sizeof(si)) != sizeof(si))
        return;
    snprintf(reason, sizeof(reason), "stopped by signal %s", strsignal((int)si.ssi_signo));
    vm->dump_regs_on_stop = 1;  /* where was it? useful when a supervisor times out */
    vm_stop(vm, VM_EXIT_CRASH, reason);
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

/* Blocked before set-up starts any thread (snapfs's decoder threads at disk
 * open), so that every thread inherits the mask: a stop signal delivered to a
 * thread that did not block it would kill the process instead of reaching the
 * signalfd. */
static int block_signals(void)
{
    sigset_t set;

    stop_signals(&set);
    sigaddset(&set, SIGUSR1);  /* unblocked only in vCPU threads (vcpu.c) */
    return pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ? -EINVAL : 0;
}

static int watch_signals(struct vm *vm)
{
    sigset_t set;

    stop_signals(&set);
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    return evloop_add(vm->loop, fd, EPOLLIN, on_signal, vm);
}

static int setup(struct vm *vm, const struct vmm_options *opts)
{
    char err[512] = "";
    int rc = vm_create(vm, opts, err, sizeof(err));

    if (rc == 0 && block_signals() < 0) {
        snprintf(err, sizeof(err), "cannot block signals");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = vm_add_devices(vm, opts, err, sizeof(err));
    if (rc == 0)
        rc = vm_load(vm, opts, err, sizeof(err));
    if (rc == 0 && watch_signals(vm) < 0) {
        snprintf(err, sizeof(err), "cannot watch signals");
        rc = -EINVAL;
    }
    if (rc < 0)
        log_err("%s", err);
    return rc;
}

int main(int argc, char **argv)
{
    struct vmm_options opts;
    static struct vm vm;
    char err[256];

    if (vmm_options_parse(&opts, argc, argv, err, sizeof(err)) < 0) {
        log_err("%s", err);
        fputs(vmm_options_usage(), stderr);
        return VM_EXIT_SETUP;
    }
    if (opts.help) {
        fputs(vmm_options_usage(), stdout);
        return 0;
    }
    log_set_level(opts.verbose >= 2 ? LOG_DEBUG : opts.verbose ? LOG_INFO : LOG_WARN);
    int code = VM_EXIT_SETUP;
    /* The filter goes on once everything is opened and before any guest code runs. */
    if (setup(&vm, &opts) == 0 &&
        vmm_seccomp_install(opts.seccomp, opts.net.enabled ? VMM_SECCOMP_NEED_NET : 0) == 0)
        code = vm_run(&vm);
    vm_destroy(&vm);
    return code;
}
