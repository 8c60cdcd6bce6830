/* Process-supervising driver: spawns sbx-vmm, watches it with a pidfd. */
#include "driver_proc.h"

#include "apilog.h"
#include "logtail.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define KILL_WAIT_MS 5000

struct child {
    char sandbox_id[STORE_ID_LEN];
    char log_path[STORE_PATH_LEN];
    pid_t pid;
    int pidfd;
    bool is_child;          /* ours to reap; adopted VMMs belong to init */
    struct procdrv *drv;
    struct child *next;
};

struct procdrv {
    struct procdrv_config cfg;
    struct loop *loop;
    driver_exit_cb on_exit;
    void *cb_arg;
    struct child *children;
};

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Field 22 of /proc/PID/stat; zombies count as gone unless allow_zombie. */
static int64_t read_start_ticks(int64_t pid, bool allow_zombie)
{
    char path[64], buf[1024], *p, *save = NULL, *tok;
    ssize_t n;
    int fd, i;

    if (pid <= 0 || pid > INT32_MAX)
        return -ESRCH;
    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ESRCH;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and ')': fields resume after the last ')'. */
    p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -EIO;
    tok = strtok_r(p + 2, " ", &save);          /* field 3: state */
    if (!tok || *tok == 'X' || (*tok == 'Z' && !allow_zombie))
        return -ESRCH;
    for (i = 3; i < 22 && tok; i++)
        tok = strtok_r(NULL, " ", &save);
    return tok ? strtoll(tok, NULL, 10) : -EIO;
}

int64_t procdrv_start_ticks(int64_t pid)
{
    return read_start_ticks(pid, false);
}

/* Fills reason; returns whether the VMM exited with status 0 (its guest
 * powered off). An adopted VMM's status is unknown: not a power-off. */
static bool describe_exit(struct child *c, char *reason, size_t len)
{
    siginfo_t si;
    char last[160];

    memset(&si, 0, sizeof(si));
    if (!c->is_child || waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) < 0 ||
        si.si_pid == 0) {
        snprintf(reason, len, "sbx-vmm (pid %d) exited", (int)c->pid);
        return false;
    }
    if (si.si_code == CLD_EXITED && si.si_status == 0) {
        snprintf(reason, len, "the guest powered off");
        return true;
    }
    logtail_last_line(c->log_path, last, sizeof(last));
    if (si.si_code == CLD_EXITED)
        snprintf(reason, len, "sbx-vmm exited with status %d%s%s", si.si_status,
                 last[0] ? ": " : "", last);
    else
        snprintf(reason, len, "sbx-vmm was killed by signal %d (%s)", si.si_status,
                 strsignal(si.si_status));
    return false;
}

static void unlink_child(struct procdrv *d, struct child *c)
{
    struct child **pp;

    for (pp = &d->children; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    loop_del(d->loop, c->pidfd);
}

static void on_pidfd(void *arg, int fd, uint32_t events)
{
    struct child *c = arg;
    struct procdrv *d = c->drv;
    char reason[STORE_MSG_LEN], id[STORE_ID_LEN];

    (void)fd;
    (void)events;
    bool powered_off = describe_exit(c, reason, sizeof(reason));
    snprintf(id, sizeof(id), "%s", c->sandbox_id);
    if (powered_off)
        log_info("sandbox %s: %s", id, reason);
    else
        log_warn("sandbox %s: %s", id, reason);
    unlink_child(d, c);
    close(c->pidfd);
    free(c);
    d->on_exit(d->cb_arg, id, powered_off, reason);
}

static struct child *find_child(struct procdrv *d, const char *sandbox_id)
{
    for (struct child *c = d->children; c; c = c->next)
        if (!strcmp(c->sandbox_id, sandbox_id))
            return c;
    return NULL;
}

static int watch(struct procdrv *d, const char *sandbox_id, const char *log_path, pid_t pid,
                 int pidfd, bool is_child)
{
    struct child *c = calloc(1, sizeof(*c));
    int err;

    if (!c)
        return -ENOMEM;
    snprintf(c->sandbox_id, sizeof(c->sandbox_id), "%s", sandbox_id);
    snprintf(c->log_path, sizeof(c->log_path), "%s", log_path ? log_path : "");
    c->pid = pid;
    c->pidfd = pidfd;
    c->is_child = is_child;
    c->drv = d;
    err = loop_add(d->loop, pidfd, POLLIN, on_pidfd, c);
    if (err) {
        free(c);
        return err;
    }
    c->next = d->children;
    d->children = c;
    return 0;
}

/* In the forked child: never returns. Reports exec failure through errfd. */
static void child_exec(const struct procdrv *d, char *const argv[], const char *log_path,
                       int errfd)
{
    sigset_t none;
    int err, fd;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0 && fd != 0) {
        dup2(fd, 0);
        close(fd);
    }
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    execv(d->cfg.vmm_path, argv);
    err = errno;
    if (write(errfd, &err, sizeof(err)) < 0)
        _exit(126);
    _exit(127);
}

static bool has_net(const struct procdrv *d)
{
    return d->cfg.net && strcmp(d->cfg.net, "none") != 0;
}

/* sbx-vmm's --disk and --cmdline for l; -EINVAL with err when a path cannot be
 * written in the --disk syntax (items are split at ','). */
static int disk_and_cmdline(const struct procdrv *d, const struct driver_launch *l, char *disk,
                            size_t disklen, char *cmdline, size_t cmdlen, char *err,
                            size_t errlen)
{
    int n;

    if (strchr(l->store_path, ',') || strchr(l->overlay_path, ',')) {
        snprintf(err, errlen, "the state directory path must not contain ','");
        return -EINVAL;
    }
    n = snprintf(disk, disklen, "store=%s,overlay=%s", l->store_path, l->overlay_path);
    if (n < 0 || (size_t)n >= disklen) {
        snprintf(err, errlen, "disk paths are too long");
        return -ENAMETOOLONG;
    }
    /* sbx-init switches to the root disk (the only virtio-blk device: vda) and
     * sets eth0 up for sbx-vmm's user-mode network (vmm/net_slirp.h). */
    n = snprintf(cmdline, cmdlen, "%s sbx.root=/dev/vda sbx.hostname=%s%s", d->cfg.cmdline,
                 l->hostname, has_net(d) ? " sbx.net=10.0.2.15/24,10.0.2.2,10.0.2.3" : "");
    if (n < 0 || (size_t)n >= cmdlen) {
        snprintf(err, errlen, "kernel command line is too long");
        return -ENAMETOOLONG;
    }
    return 0;
}

static int spawn(struct procdrv *d, const struct driver_launch *l, pid_t *pid_out, char *err,
                 size_t errlen)
{
    char mem[24], vcpus[24], disk[2 * STORE_PATH_LEN + 32], cmdline[4096];
    int pipefd[2], child_errno = 0, rc;
    ssize_t n;
    pid_t pid;

    rc = disk_and_cmdline(d, l, disk, sizeof(disk), cmdline, sizeof(cmdline), err, errlen);
    if (rc)
        return rc;
    snprintf(mem, sizeof(mem), "%lld", (long long)l->memory_mib);
    snprintf(vcpus, sizeof(vcpus), "%lld", (long long)l->vcpus);
    char *const argv[] = {
        (char *)d->cfg.vmm_path, "--kernel", (char *)d->cfg.kernel_path,
        "--initrd", (char *)d->cfg.initrd_path, "--cmdline", cmdline,
        "--mem", mem, "--vcpus", vcpus, "--console", (char *)l->console_path,
        "--disk", disk, "--vsock-uds", (char *)l->vsock_path,
        has_net(d) ? "--net" : NULL, (char *)d->cfg.net, NULL,
    };
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(pipefd[0]);
        close(pipefd[1]);
        snprintf(err, errlen, "fork: %s", strerror(-e));
        return e;
    }
    if (pid == 0)
        child_exec(d, argv, l->log_path, pipefd[1]);
    close(pipefd[1]);
    do
        n = read(pipefd[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == (ssize_t)sizeof(child_errno)) {
        waitpid(pid, NULL, 0);
        snprintf(err, errlen, "cannot run %s: %s", d->cfg.vmm_path, strerror(child_errno));
        return -child_errno;
    }
    *pid_out = pid;
    return 0;
}

static int proc_start(void *self, const struct driver_launch *l, struct driver_handle *out,
                      char *err, size_t errlen)
{
    struct procdrv *d = self;
    pid_t pid;
    int pidfd, rc;
    int64_t ticks;

    rc = spawn(d, l, &pid, err, errlen);
    if (rc)
        return rc;
    /* Our unreaped child cannot be recycled, so pid and ticks are stable here;
     * it may already have exited (a zombie), which the pidfd then reports. */
    pidfd = sys_pidfd_open(pid);
    ticks = read_start_ticks(pid, true);
    if (pidfd < 0 || ticks < 0) {
        rc = pidfd < 0 ? -errno : (int)ticks;
        snprintf(err, errlen, "cannot watch sbx-vmm: %s", strerror(-rc));
        goto kill_it;
    }
    rc = watch(d, l->sandbox_id, l->log_path, pid, pidfd, true);
    if (rc) {
        snprintf(err, errlen, "cannot watch sbx-vmm: %s", strerror(-rc));
        goto kill_it;
    }
    out->pid = pid;
    out->start_ticks = ticks;
    log_info("sandbox %s: sbx-vmm started, pid %d", l->sandbox_id, (int)pid);
    return 0;
kill_it:
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (pidfd >= 0)
        close(pidfd);
    return rc;
}

/* A pidfd for h's process, or -ESRCH if it is gone or the pid was reused. */
static int open_checked(const struct driver_handle *h)
{
    int fd;

    if (procdrv_start_ticks(h->pid) != h->start_ticks)
        return -ESRCH;
    fd = sys_pidfd_open((pid_t)h->pid);
    if (fd < 0)
        return -ESRCH;
    /* The pidfd pins the process now; check again that it is the same one. */
    if (procdrv_start_ticks(h->pid) != h->start_ticks) {
        close(fd);
        return -ESRCH;
    }
    return fd;
}

static int wait_pidfd(int pidfd, int timeout_ms)
{
    struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
    int rc;

    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0;
}

static int terminate(int pidfd, int grace_ms)
{
    if (sys_pidfd_signal(pidfd, SIGTERM) < 0)
        return errno == ESRCH ? 0 : -errno;
    if (wait_pidfd(pidfd, grace_ms))
        return 0;
    if (sys_pidfd_signal(pidfd, SIGKILL) < 0 && errno != ESRCH)
        return -errno;
    return wait_pidfd(pidfd, KILL_WAIT_MS) ? 0 : -ETIMEDOUT;
}

static int proc_stop(void *self, const char *sandbox_id, const struct driver_handle *h)
{
    struct procdrv *d = self;
    struct child *c = find_child(d, sandbox_id);
    bool is_child = false;
    int pidfd, rc;

    if (c) {
        unlink_child(d, c);
        pidfd = c->pidfd;
        is_child = c->is_child;
        free(c);
    } else {
        pidfd = open_checked(h);
        if (pidfd == -ESRCH)
            return 0;
    }
    rc = terminate(pidfd, d->cfg.stop_grace_ms);
    if (rc == 0 && is_child) {
        siginfo_t si;
        waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
    }
    close(pidfd);
    log_info("sandbox %s: sbx-vmm pid %lld stopped", sandbox_id, (long long)h->pid);
    return rc;
}

static int proc_wait_exit(void *self, const struct driver_handle *h, int timeout_ms)
{
    int fd = open_checked(h), gone;

    (void)self;
    if (fd < 0)
        return 1;
    gone = wait_pidfd(fd, timeout_ms);
    close(fd);
    return gone;
}

static int proc_status(void *self, const struct driver_handle *h)
{
    int fd = open_checked(h);

    (void)self;
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static int proc_adopt(void *self, const char *sandbox_id, const struct driver_handle *h)
{
    struct procdrv *d = self;
    int fd, err;

    if (find_child(d, sandbox_id))
        return 0;
    fd = open_checked(h);
    if (fd < 0)
        return fd;
    err = watch(d, sandbox_id, NULL, (pid_t)h->pid, fd, false);
    if (err) {
        close(fd);
        return err;
    }
    log_info("sandbox %s: adopted running sbx-vmm pid %lld", sandbox_id, (long long)h->pid);
    return 0;
}

/* Leaves the VMMs running: a restarted sbx-api adopts them. */
static void proc_destroy(void *self)
{
    struct procdrv *d = self;

    while (d->children) {
        struct child *c = d->children;
        unlink_child(d, c);
        close(c->pidfd);
        free(c);
    }
    free(d);
}

static const struct driver_ops procdrv_ops = {
    .name = "process",
    .start = proc_start,
    .stop = proc_stop,
    .wait_exit = proc_wait_exit,
    .status = proc_status,
    .adopt = proc_adopt,
    .destroy = proc_destroy,
};

int procdrv_create(const struct procdrv_config *config, struct loop *loop,
                   driver_exit_cb on_exit, void *cb_arg, struct driver *drv)
{
    struct procdrv *d = calloc(1, sizeof(*d));

    if (!d)
        return -ENOMEM;
    d->cfg = *config;
    d->loop = loop;
    d->on_exit = on_exit;
    d->cb_arg = cb_arg;
    drv->ops = &procdrv_ops;
    drv->self = d;
    return 0;
}
