/* Public ports as marker files in the sandbox's state folder (ports.h). */
#include "ports.h"

#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PORT_MAX 65535u

/* STATE/sandboxes/ID/public */
static void public_dir(const struct svc *svc, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/sandboxes/%s/public", svc->state_dir, id);
}

/* "1".."65535" with no sign, spaces or leading zeros. */
static bool port_text(const char *text, unsigned *port)
{
    unsigned long v = 0;
    size_t n = strlen(text);

    if (n == 0 || n > 5 || text[0] == '0' || strspn(text, "0123456789") != n)
        return false;
    v = strtoul(text, NULL, 10);
    if (v < 1 || v > PORT_MAX)
        return false;
    *port = (unsigned)v;
    return true;
}

int ports_parse_segment(const char *text, unsigned *port, struct apierr *err)
{
    if (!port_text(text, port))
        return apierr_set(err, APIERR_VALIDATION, "port must be a whole number 1..65535");
    return 0;
}

int ports_parse(json_t *arr, unsigned *out, size_t *n, struct apierr *err)
{
    size_t i;
    json_t *v;

    *n = 0;
    if (!json_is_array(arr))
        return apierr_set(err, APIERR_VALIDATION, "public_ports must be an array of ports");
    json_array_foreach(arr, i, v) {
        json_int_t p = json_integer_value(v);
        bool dup = false;

        if (!json_is_integer(v) || p < 1 || p > PORT_MAX)
            return apierr_set(err, APIERR_VALIDATION,
                              "public_ports[%zu] must be a whole number 1..65535", i);
        for (size_t j = 0; j < *n; j++)
            dup |= out[j] == (unsigned)p;
        if (dup)
            continue;
        if (*n == PORTS_MAX_PUBLIC)
            return apierr_set(err, APIERR_VALIDATION, "at most %d public ports",
                              PORTS_MAX_PUBLIC);
        out[(*n)++] = (unsigned)p;
    }
    return 0;
}

/* Sets the bit of each port with a marker in dir; returns how many, or -errno. */
static int each_marker(const char *dir, uint8_t *seen)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    int n = 0;

    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((de = readdir(d))) {
        unsigned port;

        if (!port_text(de->d_name, &port) || (seen[port / 8] & (1u << (port % 8))))
            continue;
        seen[port / 8] |= (uint8_t)(1u << (port % 8));
        n++;
    }
    closedir(d);
    return n;
}

static int add_marker(const char *dir, unsigned port, struct apierr *err)
{
    char path[STORE_PATH_LEN + 32];
    int fd;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return apierr_set(err, APIERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    snprintf(path, sizeof(path), "%s/%u", dir, port);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return apierr_set(err, APIERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    close(fd);
    return 0;
}

int ports_set(struct svc *svc, const char *sandbox_id, unsigned port, bool public,
              struct apierr *err)
{
    uint8_t seen[(PORT_MAX + 1) / 8] = { 0 };   /* a bit a port */
    char dir[STORE_PATH_LEN + 16], path[STORE_PATH_LEN + 32];
    int n;

    if (port < 1 || port > PORT_MAX)
        return apierr_set(err, APIERR_VALIDATION, "port must be a whole number 1..65535");
    public_dir(svc, sandbox_id, dir, sizeof(dir));
    if (!public) {
        snprintf(path, sizeof(path), "%s/%u", dir, port);
        if (unlink(path) < 0 && errno != ENOENT)
            return apierr_set(err, APIERR_INTERNAL, "cannot remove %s: %s", path,
                              strerror(errno));
        return 0;
    }
    n = each_marker(dir, seen);
    if (n < 0)
        return apierr_set(err, APIERR_INTERNAL, "cannot read %s: %s", dir, strerror(-n));
    if (seen[port / 8] & (1u << (port % 8)))
        return 0;
    if (n >= PORTS_MAX_PUBLIC)
        return apierr_set(err, APIERR_QUOTA, "at most %d ports of a sandbox may be public",
                          PORTS_MAX_PUBLIC);
    return add_marker(dir, port, err);
}

json_t *ports_json(struct svc *svc, const char *sandbox_id)
{
    uint8_t seen[(PORT_MAX + 1) / 8] = { 0 };   /* a bit a port */
    char dir[STORE_PATH_LEN + 16];
    json_t *arr = json_array();

    public_dir(svc, sandbox_id, dir, sizeof(dir));
    if (each_marker(dir, seen) <= 0)
        return arr;
    for (unsigned p = 1; p <= PORT_MAX; p++)
        if (seen[p / 8] & (1u << (p % 8)))
            json_array_append_new(arr, json_integer(p));
    return arr;
}
