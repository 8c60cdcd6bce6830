/* Loads the kernel modules listed, one path per line, in /lib/modules/load
 * (written by images/build-initrd in dependency order). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

int init_load_modules(const char *list, char *err, size_t errlen)
{
    char path[512];
    int rc = 0;
    FILE *f = fopen(list, "re");

    if (!f)
        return errno == ENOENT ? 0 : -1;
    while (fgets(path, sizeof(path), f)) {
        path[strcspn(path, "\n")] = '\0';
        if (!path[0])
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && syscall(SYS_finit_module, fd, "", 0) == 0) {
            close(fd);
            continue;
        }
        if (errno != EEXIST && rc == 0) {
            snprintf(err, errlen, "loading module %s: %s", path, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
    }
    fclose(f);
    return rc;
}
