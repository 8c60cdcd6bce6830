/* seccomp: the filter sbx-vmm installs before its guest runs. Each case runs in a
 * forked child that installs the filter and then makes calls: allowed ones work
 * (reads and writes, Unix stream sockets, read-only opens, threads, KVM_RUN-type
 * ioctls), forbidden ones (execve, socket(AF_INET), a Unix datagram socket, ptrace,
 * a writable open, an executable mapping, KVM_CREATE_VM, fork) kill the child with
 * SIGSYS, also when made by a thread that existed before the filter (TSYNC). With
 * --net user's needs, IPv4 TCP/UDP sockets work and a raw one gets EPERM. In
 * log mode the forbidden call runs; off installs nothing. Also the --seccomp
 * values. */
#include "../seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)
/* A filtered child leaves with the raw exit_group: exit() runs the leak check and
 * ASan calls sigaltstack before any call to a noreturn function (_exit too), calls
 * the filter forbids; so this one is not declared noreturn. */
static void child_exit(int code)
{
    syscall(SYS_exit_group, code);
}

#define CHILD_CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: child: CHECK(%s) failed " \
                     "(errno %d)\n", __FILE__, __LINE__, #c, errno); child_exit(1); } } while (0)

/* Exit code a child uses once everything allowed worked and only the forbidden
 * call is left; seeing it means the forbidden call did not kill. */
#define SURVIVED 42

/* Runs fn in a child with the filter of mode (and needs) installed; returns the
 * wait status. */
static int run_child(enum vmm_seccomp_mode mode, unsigned needs, void (*fn)(void))
{
    pid_t pid = fork();
    int status;

    CHECK(pid >= 0);
    if (pid == 0) {
        CHILD_CHECK(vmm_seccomp_install(mode, needs) == 0);
        fn();
        child_exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    return status;
}

static int killed_by_sigsys(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

static int exited(int status, int code)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

/* ---- allowed calls ---- */

static void *thread_main(void *arg)
{
    return arg;
}

static void allowed_io(void)
{
    char buf[4];
    int fd;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(close(fd) == 0);
    fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);  /* read-only: like a pack */
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(read(fd, buf, sizeof(buf)) == sizeof(buf));
    CHILD_CHECK(pread(fd, buf, sizeof(buf), 0) == sizeof(buf));
    CHILD_CHECK(close(fd) == 0);
    CHILD_CHECK(write(STDERR_FILENO, "", 0) == 0);
    void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(m != MAP_FAILED);
    CHILD_CHECK(madvise(m, 1 << 20, MADV_DONTNEED) == 0);
    CHILD_CHECK(munmap(m, 1 << 20) == 0);
    free(malloc(1 << 22));
    /* A KVM_RUN on something that is not a vCPU is let through (and refused). */
    CHILD_CHECK(ioctl(STDERR_FILENO, KVM_RUN, 0) < 0);
    /* clone3 says ENOSYS, so that glibc falls back to clone, whose flags are checked. */
    CHILD_CHECK(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS);
    CHILD_CHECK(unlink("/nonexistent/sbx-seccomp-test") < 0 && errno == EPERM);
    CHILD_CHECK(prctl(PR_SET_NAME, "vcpu0") == 0);
}

/* vCPU threads are started after the filter. */
static void allowed_thread(void)
{
    static int token;
    pthread_t t;
    void *ret = NULL;

    CHILD_CHECK(pthread_create(&t, NULL, thread_main, &token) == 0);
    CHILD_CHECK(pthread_join(t, &ret) == 0);
    CHILD_CHECK(ret == &token);
}

/* ---- forbidden calls: each child exits SURVIVED if the call did not kill it ---- */

static void forbidden_execve(void)
{
    char *argv[] = { "true", NULL };
    execve("/bin/true", argv, NULL);
    child_exit(SURVIVED);
}

static void forbidden_inet_socket(void)
{
    socket(AF_INET, SOCK_STREAM, 0);
    child_exit(SURVIVED);
}

static void forbidden_unix_dgram(void)
{
    socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    child_exit(SURVIVED);
}

static void forbidden_ptrace(void)
{
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    child_exit(SURVIVED);
}

static void forbidden_open_write(void)
{
    open("/dev/null", O_WRONLY | O_CLOEXEC);
    child_exit(SURVIVED);
}

static void forbidden_exec_mapping(void)
{
    mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    child_exit(SURVIVED);
}

static void forbidden_kvm_create_vm(void)
{
    ioctl(STDERR_FILENO, KVM_CREATE_VM, 0);
    child_exit(SURVIVED);
}

static void forbidden_fork(void)
{
    /* fork is clone without CLONE_THREAD (or clone3, which says ENOSYS). */
    syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
    child_exit(SURVIVED);
}

/* A thread started before the filter is filtered too. */
static int go_pipe[2];

static void *late_thread(void *arg)
{
    char c;

    (void)arg;
    if (read(go_pipe[0], &c, 1) == 1)
        socket(AF_INET, SOCK_DGRAM, 0);
    child_exit(SURVIVED);
    return NULL;
}

static void tsync_child(void)
{
    pthread_t t;

    CHILD_CHECK(pthread_create(&t, NULL, late_thread, NULL) == 0);
    CHILD_CHECK(vmm_seccomp_install(VMM_SECCOMP_KILL, 0) == 0);
    CHILD_CHECK(write(go_pipe[1], "g", 1) == 1);
    pthread_join(t, NULL);
    child_exit(SURVIVED + 1);
}

static void check_tsync(void)
{
    int status;
    pid_t pid;

    CHECK(pipe(go_pipe) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        tsync_child();
    CHECK(waitpid(pid, &status, 0) == pid);
    close(go_pipe[0]);
    close(go_pipe[1]);
    CHECK(killed_by_sigsys(status));
}

/* ---- --net user: libslirp's sockets ---- */

static void net_calls(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1, fd, fl, n;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK((fl = fcntl(fd, F_GETFL)) >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
    CHILD_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
    CHILD_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0);  /* refused or pending */
    close(fd);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(ioctl(fd, FIONREAD, &n) == 0);
    close(fd);
    /* slirp's ping fallback gets EPERM rather than killing the VMM. */
    CHILD_CHECK(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0 && errno == EPERM);
}

static void net_forbidden_inet6(void)
{
    socket(AF_INET6, SOCK_STREAM, 0);
    child_exit(SURVIVED);
}

static void net_forbidden_fcntl_dup(void)
{
    fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
    child_exit(SURVIVED);
}

static void check_net(void)
{
    CHECK(exited(run_child(VMM_SECCOMP_KILL, VMM_SECCOMP_NEED_NET, net_calls), 0));
    CHECK(exited(run_child(VMM_SECCOMP_KILL, VMM_SECCOMP_NEED_NET, allowed_io), 0));
    CHECK(killed_by_sigsys(run_child(VMM_SECCOMP_KILL, VMM_SECCOMP_NEED_NET,
                                     net_forbidden_inet6)));
    CHECK(killed_by_sigsys(run_child(VMM_SECCOMP_KILL, VMM_SECCOMP_NEED_NET,
                                     net_forbidden_fcntl_dup)));
    CHECK(killed_by_sigsys(run_child(VMM_SECCOMP_KILL, VMM_SECCOMP_NEED_NET,
                                     forbidden_execve)));
    CHECK(killed_by_sigsys(run_child(VMM_SECCOMP_KILL, 0, net_calls)));
}

/* ---- log and off ---- */

static void inet_socket_works(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHILD_CHECK(fd >= 0);
    close(fd);
}

static void no_filter(void)
{
    CHILD_CHECK(prctl(PR_GET_SECCOMP) == 0);
    inet_socket_works();
}

static void check_parse(void)
{
    enum vmm_seccomp_mode m = VMM_SECCOMP_OFF;

    CHECK(vmm_seccomp_parse("kill", &m) == 0 && m == VMM_SECCOMP_KILL);
    CHECK(vmm_seccomp_parse("log", &m) == 0 && m == VMM_SECCOMP_LOG);
    CHECK(vmm_seccomp_parse("off", &m) == 0 && m == VMM_SECCOMP_OFF);
    CHECK(vmm_seccomp_parse("", &m) == -EINVAL && m == VMM_SECCOMP_OFF);
    CHECK(vmm_seccomp_parse("KILL", &m) == -EINVAL);
    CHECK(vmm_seccomp_parse("kill2", &m) == -EINVAL);
    CHECK(vmm_seccomp_parse(NULL, &m) == -EINVAL);
    CHECK(strcmp(vmm_seccomp_name(VMM_SECCOMP_LOG), "log") == 0);
}

int main(void)
{
    static void (*const forbidden[])(void) = {
        forbidden_execve, forbidden_inet_socket, forbidden_unix_dgram, forbidden_ptrace, forbidden_open_write,
        forbidden_exec_mapping, forbidden_kvm_create_vm, forbidden_fork,
    };

    check_parse();
    if (prctl(PR_GET_SECCOMP) < 0 && errno == EINVAL) {
        printf("seccomp: skipped, the kernel has no seccomp\n");
        return 77;
    }
    CHECK(exited(run_child(VMM_SECCOMP_KILL, 0, allowed_io), 0));
    CHECK(exited(run_child(VMM_SECCOMP_KILL, 0, allowed_thread), 0));
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        int status = run_child(VMM_SECCOMP_KILL, 0, forbidden[i]);
        if (!killed_by_sigsys(status)) {
            fprintf(stderr, "forbidden call %zu: status %#x, not SIGSYS\n", i, status);
            return 1;
        }
    }
    check_tsync();
    check_net();
    CHECK(exited(run_child(VMM_SECCOMP_LOG, 0, inet_socket_works), 0));
    CHECK(exited(run_child(VMM_SECCOMP_OFF, 0, no_filter), 0));
    printf("seccomp: ok\n");
    return 0;
}
