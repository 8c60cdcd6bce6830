/* libFuzzer target for sbx-api's request path: routing, authentication, JSON
 * body validation and the service calls behind them, on an in-memory SQLite
 * store with a driver that boots nothing.
 * Input: byte 0 picks the method, byte 1 the credentials, then the path up
 * to '\n', then the body. */
#include "../apilog.h"
#include "../router.h"
#include "../snapshot.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_KEY "fuzz-key"

static int64_t next_pid = 1000;

static int null_start(void *self, const struct driver_launch *l, struct driver_handle *out,
                      char *err, size_t errlen)
{
    (void)self;
    (void)err;
    (void)errlen;
    out->pid = next_pid++;
    out->start_ticks = l->vcpus;
    return 0;
}

static int null_stop(void *self, const char *id, const struct driver_handle *h)
{
    (void)self;
    (void)id;
    (void)h;
    return 0;
}

static int null_wait_exit(void *self, const struct driver_handle *h, int timeout_ms)
{
    (void)self;
    (void)h;
    (void)timeout_ms;
    return 1;
}

static int null_status(void *self, const struct driver_handle *h)
{
    (void)self;
    (void)h;
    return 1;
}

static int null_adopt(void *self, const char *id, const struct driver_handle *h)
{
    (void)self;
    (void)id;
    (void)h;
    return 0;
}

static void null_destroy(void *self)
{
    (void)self;
}

static const struct driver_ops null_ops = {
    .name = "null", .start = null_start, .stop = null_stop, .wait_exit = null_wait_exit,
    .status = null_status,
    .adopt = null_adopt, .destroy = null_destroy,
};

static struct driver driver = { .ops = &null_ops };
static struct svc svc;
static struct router router;
static char state_dir[64] = "/tmp/sbx-fuzz-api.XXXXXX";
static char snap_dir[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_state_dir(void)
{
    nftw(state_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int rmdir_tmp(void)
{
    char tmp[128];

    snprintf(tmp, sizeof(tmp), "%s/tmp", state_dir);
    return rmdir(tmp);
}

static void setup(void)
{
    char image[192];
    struct snapshot_rec rec;
    struct apierr err;
    struct store *st;
    FILE *f;

    apilog_set_level(APILOG_ERR + 1);
    if (!mkdtemp(state_dir) || store_open(":memory:", &st))
        abort();
    snprintf(snap_dir, sizeof(snap_dir), "%s/snapshots", state_dir);
    snprintf(image, sizeof(image), "%s/base.img", snap_dir);
    if (mkdir(snap_dir, 0700) || !(f = fopen(image, "w")))
        abort();
    fclose(f);
    if (truncate(image, 1 << 20))       /* a raw disk image for snapfs */
        abort();
    atexit(remove_state_dir);
    svc = (struct svc){ .store = st, .driver = &driver, .state_dir = state_dir,
                        .snapshot_dir = snap_dir };
    /* The snapshot store, but no STATE/tmp: every build the fuzzer asks for
     * fails before running tar or mke2fs on whatever path it named. */
    if (snapshot_init(&svc) || rmdir_tmp())
        abort();
    svc_default_limits(&svc.limits);
    svc.limits.max_sandboxes = 32;
    svc.limits.default_disk_gib = 1;
    if (snapshot_register(&svc, "base", image, &rec, &err))
        abort();
    router = (struct router){ .svc = &svc, .api_key = FUZZ_KEY };
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE", "PUT", "HEAD" };
    static int ready;
    struct api_response resp;
    struct api_request req = { 0 };
    const uint8_t *nl;
    char *path;

    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 2)
        return 0;
    req.method = methods[data[0] % 6];
    if (data[1] % 4 == 0)
        req.x_api_key = FUZZ_KEY;
    else if (data[1] % 4 == 1)
        req.authorization = "Bearer " FUZZ_KEY;
    else if (data[1] % 4 == 3)
        req.x_api_key = "wrong";
    req.body_too_large = data[1] & 0x80;
    data += 2;
    size -= 2;
    nl = memchr(data, '\n', size);
    path = strndup((const char *)data, nl ? (size_t)(nl - data) : size);
    if (!path)
        return 0;
    req.path = path;
    req.body = nl ? (const char *)nl + 1 : "";
    req.body_len = nl ? size - (size_t)(nl - data) - 1 : 0;
    /* As in httpd.c: handlers run under the service lock (build threads take it). */
    svc_lock();
    router_handle(&router, &req, &resp);
    svc_unlock();
    /* Every answer is a status and, unless 204, a JSON body. */
    if (resp.status < 200 || resp.status > 599 || (resp.status != 204 && !resp.body))
        abort();
    api_response_free(&resp);
    free(path);
    return 0;
}
