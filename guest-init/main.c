/* sbx-init: PID 1 of every sbx guest.
 *
 * Mounts the kernel file systems, loads the initramfs's modules, sets the hostname,
 * brings up loopback, reports readiness on the console with the kernel's uptime,
 * then serves the guest agent (agent.h) on vsock port AGENT_VSOCK_PORT until a
 * client asks for power-off; without vsock it just reaps children. Kernel
 * command-line flags (read from /proc/cmdline):
 *   sbx.poweroff       power off right after the readiness line (boot tests, benchmarks)
 *   sbx.panic          exit instead, which makes the kernel panic (crash tests)
 *   sbx.hostname=NAME  the guest's hostname (default "sandbox")
 *   sbx.root=DEV       switch the root to this ext4 disk (e.g. /dev/vda) before serving
 *   sbx.net=ADDR/PREFIX,GATEWAY[,DNS]  bring eth0 (virtio-net) up with this address
 *                      and default route, DNS into /etc/resolv.conf of the (new) root
 * Outside a guest, `sbx-init --agent-unix PATH` runs only the agent, on a Unix
 * socket (host tests and development). */
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
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "init.h"
#include "sbx/agent_proto.h"

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

/* Reaps children until none is left or timeout_ms passed. 1 when none is left. */
static int reap_all(int timeout_ms)
{
    struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };

    for (int waited = 0;; waited += 10) {
        pid_t pid;

        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
            ;
        if (pid < 0 && errno == ECHILD)
            return 1;
        if (waited >= timeout_ms)
            return 0;
        nanosleep(&tick, NULL);
    }
}

/* Everything but PID 1 (daemons the sandbox started, e.g. sshd): a second to
 * exit on SIGTERM, then SIGKILL, so that nothing holds the root disk open for
 * writing when it goes read-only. Orphans are PID 1's children, so reaping tells. */
static void stop_processes(void)
{
    if (kill(-1, SIGTERM) < 0)
        return;   /* ESRCH: no other process */
    if (reap_all(1000))
        return;
    kill(-1, SIGKILL);
    reap_all(1000);
}

static int root_switched;   /* the root is a disk: make it read-only before power-off */

static void power_off(void)
{
    tcdrain(STDOUT_FILENO);  /* let the console show everything said so far */
    stop_processes();
    sync();
    init_unmount_all();
    if (root_switched && mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
        say("sbx-init: warning: root disk stays writable: %s", strerror(errno));
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

/* Serves the agent on vsock until it asks for power-off; without vsock (no
 * device or module), reaps children until a signal asks to stop. */
static void serve(void)
{
    int fd = init_vsock_listen(AGENT_VSOCK_PORT);

    if (fd < 0) {
        say("sbx-init: no vsock agent (%s)", strerror(-fd));
        reap_forever();
        return;
    }
    int rc = agent_serve(fd, NULL);
    if (rc != AGENT_SERVE_POWEROFF)
        say("sbx-init: agent stopped: %s", strerror(-rc));
    close(fd);
}

/* The root disk may be larger than its file system (a sandbox's disk_gib
 * above its snapshot's size): the file system grows to fill it. */
static void grow_root(const char *dev)
{
    uint64_t grown_to;
    char err[256];

    if (init_grow_root(dev, "/", &grown_to, err, sizeof(err)) < 0)
        say("sbx-init: warning: %s", err);
    else if (grown_to)
        say("sbx-init: root file system grown to %llu MiB",
            (unsigned long long)(grown_to >> 20));
}

/* sbx.net=: eth0 for the VMM's user-mode network (sbx-vmm --net user). */
static void setup_net(const char *spec)
{
    struct init_net net;
    char err[256];

    if (init_parse_net(spec, &net) < 0)
        say("sbx-init: warning: malformed sbx.net=%s", spec);
    else if (init_net_up(&net, 3000, err, sizeof(err)) < 0)
        say("sbx-init: warning: network: %s", err);
}

int main(int argc, char **argv)
{
    struct init_flags flags;
    char err[256];

    if (argc == 3 && strcmp(argv[1], "--agent-unix") == 0)
        return agent_main_unix(argv[2]) < 0 ? 1 : 0;
    if (getpid() != 1) {
        fprintf(stderr, "usage: sbx-init (as PID 1 of a guest) | sbx-init --agent-unix PATH\n");
        return 2;
    }
    int mounted = init_mount_all(err, sizeof(err));
    init_open_console();
    if (mounted < 0)
        say("sbx-init: warning: %s", err);
    if (init_load_modules("/lib/modules/load", err, sizeof(err)) < 0)
        say("sbx-init: warning: %s", err);
    init_read_flags(&flags);
    if (flags.root[0]) {
        if (init_switch_root(flags.root, err, sizeof(err)) == 0) {
            root_switched = 1;
            grow_root(flags.root);
        } else {
            say("sbx-init: warning: staying in the initramfs: %s", err);
        }
    }
    sethostname(flags.hostname, strlen(flags.hostname));
    if (init_loopback_up() < 0)
        say("sbx-init: warning: cannot bring up loopback");
    if (flags.net[0])
        setup_net(flags.net);
    say("sbx-init: ready uptime=%.3fs cpus=%d", init_uptime(), init_online_cpus());
    if (flags.panic) {
        say("sbx-init: sbx.panic given: exiting to make the kernel panic");
        return 1;
    }
    if (!flags.poweroff)
        serve();
    say("sbx-init: powering off");
    power_off();
    return 0;
}
