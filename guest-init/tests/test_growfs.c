/* The root file system's grow target (init_ext4_grow_target) on superblocks
 * made by the real mke2fs: 64-bit and 32-bit ext4, a device the same size, one
 * larger, one smaller, and a superblock that is not ext4's. The online resize
 * itself runs in qemu-tests (t-sandbox-cli), on a mounted root. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../init.h"
#include "check.h"

#define MIB (1024ull * 1024)

/* Makes a 64 MiB ext4 with 4 KiB blocks (features as given) and reads its superblock. */
static int make_sb(const char *dir, const char *features, uint8_t sb[INIT_EXT4_SB_SIZE])
{
    char img[64], cmd[256];
    int fd, ok;

    snprintf(img, sizeof(img), "%s/fs.img", dir);
    snprintf(cmd, sizeof(cmd), "rm -f %s && mke2fs -q -F -t ext4 -b 4096 %s %s 64M", img,
             features, img);
    if (system(cmd) != 0)
        return -1;
    fd = open(img, O_RDONLY);
    if (fd < 0)
        return -1;
    ok = pread(fd, sb, INIT_EXT4_SB_SIZE, 1024) == INIT_EXT4_SB_SIZE;
    close(fd);
    return ok ? 0 : -1;
}

static void check_targets(const uint8_t *sb)
{
    uint64_t now = 0, want = 0;

    CHECK(init_ext4_grow_target(sb, 64 * MIB, &now, &want) == 0);
    CHECK(now == 64 * MIB / 4096 && want == now);              /* fills its disk */
    CHECK(init_ext4_grow_target(sb, 200 * MIB + 1000, &now, &want) == 0);
    CHECK(want == 200 * MIB / 4096);                             /* whole blocks only */
    CHECK(init_ext4_grow_target(sb, 32 * MIB, &now, &want) == 0);
    CHECK(want == now);                                          /* never shrinks */
}

int main(void)
{
    char dir[] = "/tmp/sbx-growfs.XXXXXX", cmd[300];
    uint8_t sb[INIT_EXT4_SB_SIZE], junk[INIT_EXT4_SB_SIZE] = { 0 };
    uint64_t now, want;

    if (system("command -v mke2fs >/dev/null 2>&1") != 0) {
        printf("SKIP: no mke2fs\n");
        return 77;
    }
    if (!mkdtemp(dir))
        return 1;
    CHECK(make_sb(dir, "-O 64bit", sb) == 0);
    check_targets(sb);
    CHECK(init_ext4_grow_target(sb, 1ull << 50, &now, &want) == 0);
    CHECK(want == (1ull << 50) / 4096);                          /* past 2^32 blocks */

    CHECK(make_sb(dir, "-O ^64bit", sb) == 0);
    check_targets(sb);
    CHECK(init_ext4_grow_target(sb, 1ull << 50, &now, &want) == 0);
    CHECK(want == UINT32_MAX);                                   /* 32-bit block numbers */

    CHECK(init_ext4_grow_target(junk, 200 * MIB, &now, &want) == -EINVAL);
    memcpy(junk, sb, sizeof(junk));
    junk[24] = 40;                                               /* absurd block size */
    CHECK(init_ext4_grow_target(junk, 200 * MIB, &now, &want) == -EINVAL);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return failures ? 1 : 0;
}
