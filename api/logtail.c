/* Shared by the snapshot builds' children (snapshot_build.c) and the VMM
 * driver's exit reasons (driver_proc.c). */
#include "logtail.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void logtail_last_line(const char *path, char *out, size_t len)
{
    char buf[1024], *end, *start;
    ssize_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    off_t size;

    out[0] = '\0';
    if (fd < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    if (size > 0)
        n = pread(fd, buf, sizeof(buf) - 1,
                  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    end = buf + n;
    while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    start = memrchr(buf, '\n', (size_t)(end - buf));
    start = start ? start + 1 : buf;
    snprintf(out, len, "%.*s", (int)(len - 1), start);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
}
