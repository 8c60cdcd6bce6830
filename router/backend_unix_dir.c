/* Backend "unix-dir": a stand-in for the guest tunnel. The argument is a folder DIR;
 * sandbox S exists when DIR/S is a folder, port P of S is the Unix stream socket
 * DIR/S/P.sock, and P is public when the file DIR/S/P.public exists. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"

struct unix_dir {
    int dir_fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void *ud_open(const char *arg)
{
    if (!arg || !*arg) {
        errno = EINVAL;
        return NULL;
    }
    struct unix_dir *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->dir_fd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (u->dir_fd < 0 || strlen(arg) >= sizeof(u->path)) {
        int e = u->dir_fd < 0 ? errno : ENAMETOOLONG;
        if (u->dir_fd >= 0)
            close(u->dir_fd);
        free(u);
        errno = e;
        return NULL;
    }
    strcpy(u->path, arg);
    return u;
}

static void ud_close(void *ctx)
{
    struct unix_dir *u = ctx;
    close(u->dir_fd);
    free(u);
}

static int ud_sandbox_exists(void *ctx, const char *sandbox)
{
    struct unix_dir *u = ctx;
    struct stat st;
    if (fstatat(u->dir_fd, sandbox, &st, 0) < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    return S_ISDIR(st.st_mode) ? 1 : 0;
}

static int ud_port_public(void *ctx, const char *sandbox, unsigned port)
{
    struct unix_dir *u = ctx;
    char name[96];
    snprintf(name, sizeof(name), "%s/%u.public", sandbox, port);
    return faccessat(u->dir_fd, name, F_OK, 0) == 0;
}

static int ud_connect(void *ctx, const char *sandbox, unsigned port, void **state)
{
    (void)state; /* a plain connect needs no per-connection state */
    struct unix_dir *u = ctx;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s/%u.sock", u->path, sandbox, port);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        int e = errno == EAGAIN ? ECONNREFUSED : errno; /* full backlog: nobody accepting */
        close(fd);
        return -e;
    }
    return fd;
}

static int ud_finish(void *ctx, int fd, void *state, bool *want_write)
{
    (void)ctx;
    (void)state;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    *want_write = true;
    return err ? -err : 0;
}

const struct backend_ops backend_unix_dir = {
    .name = "unix-dir",
    .open = ud_open,
    .close = ud_close,
    .sandbox_exists = ud_sandbox_exists,
    .port_public = ud_port_public,
    .connect = ud_connect,
    .finish = ud_finish,
};
