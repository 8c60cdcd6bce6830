/* Switching PID 1 from the initramfs to the root disk given by sbx.root=DEV
 * (ext4): the kernel file systems move along (with /dev go /dev/pts and /dev/shm),
 * and so does the /tmp tmpfs, so a root disk's /tmp starts empty on every boot and
 * its files do not end up in the disk's overlay. The agent keeps running in PID 1. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define NEW_ROOT "/newroot"

static const char *const moved_mounts[] = { "/dev", "/proc", "/sys", "/run", "/tmp" };

/* The disk appears once its driver has probed, which may lag module loading. */
static int wait_for_device(const char *dev, int timeout_ms)
{
    struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
    struct stat st;

    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode))
            return 0;
        nanosleep(&tick, NULL);
    }
    return -1;
}

/* Puts the first n moved mounts back where they were (a failed switch). */
static void unmove_kernel_mounts(size_t n)
{
    char from[64];

    while (n-- > 0) {
        snprintf(from, sizeof(from), NEW_ROOT "%s", moved_mounts[n]);
        mount(from, moved_mounts[n], NULL, MS_MOVE, NULL);
    }
}

static int move_kernel_mounts(char *err, size_t errlen)
{
    char target[64];

    for (size_t i = 0; i < sizeof(moved_mounts) / sizeof(moved_mounts[0]); i++) {
        snprintf(target, sizeof(target), NEW_ROOT "%s", moved_mounts[i]);
        mkdir(target, 0755);
        if (mount(moved_mounts[i], target, NULL, MS_MOVE, NULL) < 0) {
            snprintf(err, errlen, "moving %s to the root disk: %s", moved_mounts[i],
                     strerror(errno));
            unmove_kernel_mounts(i);
            return -1;
        }
    }
    return 0;
}

int init_switch_root(const char *dev, char *err, size_t errlen)
{
    if (wait_for_device(dev, 5000) < 0) {
        snprintf(err, errlen, "root disk %s did not appear", dev);
        return -1;
    }
    mkdir(NEW_ROOT, 0755);
    if (mount(dev, NEW_ROOT, "ext4", MS_NOATIME, NULL) < 0) {
        snprintf(err, errlen, "mounting %s (ext4) as root: %s", dev, strerror(errno));
        return -1;
    }
    if (move_kernel_mounts(err, errlen) < 0) {
        umount2(NEW_ROOT, MNT_DETACH);
        return -1;
    }
    if (chdir(NEW_ROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
        chdir("/") < 0) {
        snprintf(err, errlen, "switching to the root disk: %s", strerror(errno));
        return -1;
    }
    return 0;
}
