/* The kernel file systems every guest gets. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "init.h"

struct init_mount {
    const char *source, *target, *type, *options;
    unsigned long flags;
    mode_t mode;
};

static const struct init_mount init_mounts[] = {
    { "proc", "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555 },
    { "sysfs", "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555 },
    { "devtmpfs", "/dev", "devtmpfs", "mode=0755", MS_NOSUID, 0755 },
    { "devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=666", MS_NOSUID | MS_NOEXEC, 0755 },
    { "tmpfs", "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777 },
    { "tmpfs", "/tmp", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777 },
    { "tmpfs", "/run", "tmpfs", "mode=0755", MS_NOSUID | MS_NODEV, 0755 },
};

#define NR_MOUNTS (sizeof(init_mounts) / sizeof(init_mounts[0]))

/* What udev would add to devtmpfs: bash's <(...) and many scripts need /dev/fd. */
static const char *const dev_links[][2] = {
    { "/proc/self/fd", "/dev/fd" },
    { "/proc/self/fd/0", "/dev/stdin" },
    { "/proc/self/fd/1", "/dev/stdout" },
    { "/proc/self/fd/2", "/dev/stderr" },
};

static void make_dev_links(void)
{
    for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
        if (symlink(dev_links[i][0], dev_links[i][1]) < 0 && errno != EEXIST)
            return;   /* no /dev: nothing else will work either */
}

int init_mount_all(char *err, size_t errlen)
{
    int rc = 0;

    for (size_t i = 0; i < NR_MOUNTS; i++) {
        const struct init_mount *m = &init_mounts[i];
        mkdir(m->target, m->mode);
        if (mount(m->source, m->target, m->type, m->flags, m->options) == 0 || errno == EBUSY)
            continue;
        if (rc == 0)
            snprintf(err, errlen, "mount %s on %s: %s", m->type, m->target, strerror(errno));
        rc = -1;
    }
    make_dev_links();
    return rc;
}

void init_unmount_all(void)
{
    for (size_t i = NR_MOUNTS; i-- > 0;)
        umount2(init_mounts[i].target, MNT_DETACH);
}

void init_open_console(void)
{
    if (fcntl(STDOUT_FILENO, F_GETFD) >= 0)
        return;
    int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < 3; i++)
        dup2(fd, i);
    if (fd > 2)
        close(fd);
}
