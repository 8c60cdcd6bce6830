/* Growing the root ext4 to its disk: a sandbox's disk (disk_gib) may be larger
 * than the snapshot's file system, which was made at the snapshot's size. The
 * resize is online (EXT4_IOC_RESIZE_FS on the mounted root), done once: a
 * file system that already fills its disk is left alone.
 *
 * Superblock fields (offsets within the 1024-byte superblock at byte 1024 of
 * the device), from the kernel's ext4 on-disk layout: s_blocks_count_lo at 4,
 * s_log_block_size at 24, s_magic at 56, s_feature_incompat at 96,
 * s_blocks_count_hi at 336 (with INCOMPAT_64BIT). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "init.h"

#define SB_OFFSET 1024
#define EXT4_MAGIC 0xEF53
#define INCOMPAT_64BIT 0x80
/* Not in Debian 12's uapi headers: fs/ext4/ext4.h's EXT4_IOC_RESIZE_FS. */
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int init_ext4_grow_target(const uint8_t sb[INIT_EXT4_SB_SIZE], uint64_t dev_bytes,
                          uint64_t *blocks_now, uint64_t *blocks_new)
{
    uint32_t log = le32(sb + 24);
    bool is64 = le32(sb + 96) & INCOMPAT_64BIT;
    uint64_t bsize, now, fit;

    if ((sb[56] | sb[57] << 8) != EXT4_MAGIC || log > 6)   /* 1 KiB .. 64 KiB blocks */
        return -EINVAL;
    bsize = 1024ull << log;
    now = le32(sb + 4) | (is64 ? (uint64_t)le32(sb + 336) << 32 : 0);
    fit = dev_bytes / bsize;
    if (!is64 && fit > UINT32_MAX)
        fit = UINT32_MAX;                  /* a 32-bit file system stops at 2^32 blocks */
    *blocks_now = now;
    *blocks_new = fit > now ? fit : now;
    return 0;
}

static int read_superblock(int fd, uint8_t sb[INIT_EXT4_SB_SIZE], uint64_t *dev_bytes)
{
    if (ioctl(fd, BLKGETSIZE64, dev_bytes) < 0)
        return -errno;
    if (pread(fd, sb, INIT_EXT4_SB_SIZE, SB_OFFSET) != INIT_EXT4_SB_SIZE)
        return -EIO;
    return 0;
}

int init_grow_root(const char *dev, const char *mountpoint, uint64_t *grown_to, char *err,
                   size_t errlen)
{
    uint8_t sb[INIT_EXT4_SB_SIZE];
    uint64_t dev_bytes, now, want;
    int dfd = -1, mfd = -1, rc;

    *grown_to = 0;
    dfd = open(dev, O_RDONLY | O_CLOEXEC);
    rc = dfd < 0 ? -errno : read_superblock(dfd, sb, &dev_bytes);
    if (rc == 0)
        rc = init_ext4_grow_target(sb, dev_bytes, &now, &want);
    if (rc < 0) {
        snprintf(err, errlen, "reading %s's ext4 superblock: %s", dev, strerror(-rc));
        goto out;
    }
    if (want == now)
        goto out;
    mfd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd < 0 || ioctl(mfd, EXT4_IOC_RESIZE_FS, &want) < 0) {
        rc = -errno;
        snprintf(err, errlen, "growing %s from %llu to %llu blocks: %s", mountpoint,
                 (unsigned long long)now, (unsigned long long)want, strerror(errno));
        goto out;
    }
    *grown_to = want * (1024ull << le32(sb + 24));
out:
    if (dfd >= 0)
        close(dfd);
    if (mfd >= 0)
        close(mfd);
    return rc;
}
