/* Small helpers: error messages, full reads and writes, atomic file
 * replacement, hashing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "internal.h"

static _Thread_local char last_error[512];

const char *snapfs_error(void) { return last_error; }

void seterr(const char *fmt, ...)
{
    char tmp[sizeof(last_error)];   /* the arguments may include last_error */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    memcpy(last_error, tmp, sizeof(tmp));
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ENODATA;          /* short file: the caller reports it */
        p += n, len -= n, off += n;
    }
    return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n, len -= n, off += n;
    }
    return 0;
}

int write_atomic(int dirfd, const char *name, const void *buf, size_t len)
{
    char tmp[128];
    int fd, rc;
    snprintf(tmp, sizeof(tmp), ".tmp.%s.%d", name, (int)getpid());
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = pwrite_full(fd, buf, len, 0);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        rc = -errno;
    if (rc == 0 && fsync(dirfd) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int read_file(int dirfd, const char *name, size_t max, uint8_t **buf, size_t *len)
{
    struct stat st;
    int rc = 0, fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    *buf = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        rc = -ENOMEM;
        goto out;
    }
    rc = pread_full(fd, *buf, *len, 0);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
out:
    close(fd);
    return rc;
}

void sha256(const void *buf, size_t len, uint8_t out[HASH_LEN])
{
    unsigned int n = HASH_LEN;
    if (!EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL))
        memset(out, 0, HASH_LEN);  /* cannot happen with the built-in provider */
}

bool all_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (len == 0)
        return true;
    return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

int ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int snapfs_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SNAPFS_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}
