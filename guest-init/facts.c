/* Flags from the kernel command line and facts about the running guest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

/* True if word appears in cmdline as a whole space-separated token. */
static int has_token(const char *cmdline, const char *word)
{
    size_t len = strlen(word);

    for (const char *p = cmdline; (p = strstr(p, word)) != NULL; p += len) {
        int starts = p == cmdline || p[-1] == ' ';
        int ends = p[len] == '\0' || p[len] == ' ' || p[len] == '\n';
        if (starts && ends)
            return 1;
    }
    return 0;
}

/* Copies the value of the first "key=VALUE" token of cmdline into out when it
 * is non-empty and fits; otherwise leaves out as it is. */
static void token_value(const char *cmdline, const char *key, char *out, size_t outlen)
{
    size_t keylen = strlen(key);

    for (const char *p = cmdline; (p = strstr(p, key)) != NULL; p += keylen) {
        if (p != cmdline && p[-1] != ' ')
            continue;
        const char *v = p + keylen;
        size_t len = strcspn(v, " \n");
        if (len > 0 && len < outlen)
            snprintf(out, outlen, "%.*s", (int)len, v);
        return;
    }
}

void init_parse_flags(const char *cmdline, struct init_flags *flags)
{
    flags->poweroff = has_token(cmdline, "sbx.poweroff");
    flags->panic = has_token(cmdline, "sbx.panic");
    snprintf(flags->hostname, sizeof(flags->hostname), "sandbox");
    token_value(cmdline, "sbx.hostname=", flags->hostname, sizeof(flags->hostname));
    token_value(cmdline, "sbx.root=", flags->root, sizeof(flags->root));
    token_value(cmdline, "sbx.net=", flags->net, sizeof(flags->net));
}

/* Reads a small text file into buf; returns 0 or -1. */
static int read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");

    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

void init_read_flags(struct init_flags *flags)
{
    char cmdline[4096];

    memset(flags, 0, sizeof(*flags));
    if (read_small("/proc/cmdline", cmdline, sizeof(cmdline)) == 0)
        init_parse_flags(cmdline, flags);
}

double init_uptime(void)
{
    char buf[64];

    return read_small("/proc/uptime", buf, sizeof(buf)) == 0 ? strtod(buf, NULL) : -1;
}

/* Counts CPUs in a list like "0-3,5,7-8". */
static int count_cpu_list(const char *s)
{
    int count = 0;

    while (*s && *s != '\n') {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s)
            return -1;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        if (b < a)
            return -1;
        count += (int)(b - a + 1);
        s = *end == ',' ? end + 1 : end;
    }
    return count;
}

int init_online_cpus(void)
{
    char buf[256];

    if (read_small("/sys/devices/system/cpu/online", buf, sizeof(buf)) < 0)
        return -1;
    return count_cpu_list(buf);
}
