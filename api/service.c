/* Helpers shared by the service operations. */
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

static pthread_mutex_t svc_mutex = PTHREAD_MUTEX_INITIALIZER;
static __thread bool svc_held;      /* this thread holds svc_mutex */

void svc_lock(void)
{
    pthread_mutex_lock(&svc_mutex);
    svc_held = true;
}

void svc_unlock(void)
{
    svc_held = false;
    pthread_mutex_unlock(&svc_mutex);
}

bool svc_lock_held(void)
{
    return svc_held;
}

int svc_start_detached(void *(*main)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&tid, &attr, main, arg);
    pthread_attr_destroy(&attr);
    return -rc;
}

void svc_default_limits(struct svc_limits *l)
{
    *l = (struct svc_limits){
        .max_vcpus = 16,
        .max_memory_mib = 65536,
        .max_disk_gib = 1024,
        .max_sandboxes = 1000,
        .max_running = 64,
        .default_vcpus = 2,
        .default_memory_mib = 1024,
        .default_disk_gib = 8,
        .default_idle_ttl_seconds = 600,
        .default_delete_after_stop_seconds = 14 * 24 * 3600,
    };
}

int64_t svc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int svc_new_id(char out[STORE_ID_LEN])
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    snprintf(out, STORE_ID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

json_t *svc_time_json(int64_t ms)
{
    char buf[64];
    struct tm tm;
    time_t secs;

    if (ms <= 0)
        return json_null();
    secs = (time_t)(ms / 1000);
    if (!gmtime_r(&secs, &tm))
        return json_null();
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}
