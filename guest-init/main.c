/* sbx-init: PID 1 of every sbx guest.
 *
 * Mounts the kernel file systems, reports readiness on the console with the
 * kernel's uptime, then reaps children until asked to power off. Kernel
 * command-line flags (read from /proc/cmdline):
 *   sbx.poweroff   power off right after the readiness line (boot tests, benchmarks)
 *   sbx.panic      exit instead, which makes the kernel panic (crash tests) */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
    (void)w;
}

static void power_off(void)
{
    tcdrain(STDOUT_FILENO);  /* let the console show everything said so far */
    sync();
    init_unmount_all();
    reboot(RB_POWER_OFF);
    /* Only reached if the kernel has no way to power off. */
    say("sbx-init: power off failed: %s", strerror(errno));
    for (;;)
        pause();
}

static void reap_forever(void)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);   /* ctrl-alt-del */
    sigaddset(&set, SIGPWR);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (sigwait(&set, &sig) == 0 && sig != SIGCHLD)
            return;
    }
}

int main(int argc, char **argv)
{
    struct init_flags flags;
    char err[256];

    if (getpid() != 1) {
        fprintf(stderr, "usage: sbx-init runs as PID 1 of a guest\n");
        (void)argc;
        (void)argv;
        return 2;
    }
    int mounted = init_mount_all(err, sizeof(err));
    init_open_console();
    if (mounted < 0)
        say("sbx-init: warning: %s", err);
    if (init_load_modules("/lib/modules/load", err, sizeof(err)) < 0)
        say("sbx-init: warning: %s", err);
    init_read_flags(&flags);
    say("sbx-init: ready uptime=%.3fs cpus=%d", init_uptime(), init_online_cpus());
    if (flags.panic) {
        say("sbx-init: sbx.panic given: exiting to make the kernel panic");
        return 1;
    }
    if (!flags.poweroff)
        reap_forever();
    say("sbx-init: powering off");
    power_off();
    return 0;
}
