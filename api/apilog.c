/* Timestamped log lines on stderr (journald or the test log captures them). */
#include "apilog.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum apilog_level min_level = APILOG_INFO;

void apilog_set_level(enum apilog_level level)
{
    min_level = level;
}

static const char *level_name(enum apilog_level level)
{
    switch (level) {
    case APILOG_DEBUG: return "debug";
    case APILOG_INFO: return "info";
    case APILOG_WARN: return "warn";
    default: return "error";
    }
}

void apilog(enum apilog_level level, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    va_list ap;

    if (level < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    flockfile(stderr);
    fprintf(stderr, "%s.%03ldZ sbx-api %s: ", stamp, ts.tv_nsec / 1000000, level_name(level));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}
