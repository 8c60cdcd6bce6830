/* sbx-api: the control plane's REST server. */
#include "apilog.h"
#include "dataplane.h"
#include "driver_proc.h"
#include "httpd.h"
#include "loop.h"
#include "options.h"
#include "retention.h"
#include "router.h"
#include "sandbox.h"
#include "snapshot.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct app {
    struct api_options opt;
    struct loop *loop;
    struct store *store;
    struct driver driver;
    struct svc svc;
    struct router router;
    struct dataplane *dataplane;
    struct httpd *httpd;
    int sigfd, timerfd;
};

static void on_signal(void *arg, int fd, uint32_t events)
{
    struct app *app = arg;
    struct signalfd_siginfo si;

    (void)events;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return;
    log_info("signal %u: shutting down (sandboxes keep running)", si.ssi_signo);
    loop_stop(app->loop);
}

static void on_sweep(void *arg, int fd, uint32_t events)
{
    struct app *app = arg;
    uint64_t ticks;

    (void)events;
    if (read(fd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
        return;
    retention_sweep(&app->svc, svc_now_ms());
}

static int setup_signals(struct app *app)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    app->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (app->sigfd < 0)
        return -errno;
    return loop_add(app->loop, app->sigfd, EPOLLIN, on_signal, app);
}

static int setup_sweep(struct app *app)
{
    int64_t ms = app->opt.sweep_interval_ms;
    struct itimerspec its = {
        .it_interval = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
        .it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
    };

    app->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (app->timerfd < 0 || timerfd_settime(app->timerfd, 0, &its, NULL) < 0)
        return -errno;
    return loop_add(app->loop, app->timerfd, EPOLLIN, on_sweep, app);
}

static int make_dirs(const struct api_options *opt)
{
    const char *dirs[] = { opt->state_dir, opt->snapshot_dir };

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST) {
            log_err("cannot create %s: %s", dirs[i], strerror(errno));
            return -errno;
        }
    }
    return 0;
}

static int write_port_file(const char *path, uint16_t port)
{
    char tmp[1100];
    FILE *f;

    /* Write then rename, so a reader never sees a half-written number. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "we");
    if (!f)
        return -errno;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        return -errno;
    return 0;
}

/* --default-snapshot: built in the background unless it exists. */
static void ensure_default_snapshot(struct app *app)
{
    struct apierr aerr;

    if (app->opt.default_snapshot &&
        snapshot_ensure(&app->svc, "debian-12", app->opt.default_snapshot, &aerr))
        log_err("default snapshot debian-12: %s", aerr.message);
}

static int setup_service(struct app *app)
{
    struct api_options *opt = &app->opt;
    struct procdrv_config pc = {
        .vmm_path = opt->vmm_path, .kernel_path = opt->kernel_path,
        .initrd_path = opt->initrd_path, .cmdline = opt->cmdline, .net = opt->net,
        .stop_grace_ms = (int)opt->stop_grace_ms,
    };
    int err;

    if ((err = make_dirs(opt)))
        return err;
    if ((err = store_open(opt->db_path, &app->store))) {
        log_err("cannot open database %s: %s", opt->db_path, strerror(-err));
        return err;
    }
    app->svc = (struct svc){ .store = app->store, .driver = &app->driver,
                             .state_dir = opt->state_dir, .snapshot_dir = opt->snapshot_dir,
                             .limits = opt->limits,
                             .poweroff_timeout_ms = opt->poweroff_timeout_ms };
    if ((err = snapshot_init(&app->svc)))
        return err;
    if ((err = procdrv_create(&pc, app->loop, sandbox_on_vmm_exit, &app->svc, &app->driver)))
        return err;
    log_info("adopted %d running sandbox(es)", sandbox_adopt_all(&app->svc));
    ensure_default_snapshot(app);
    app->router = (struct router){ .svc = &app->svc, .api_key = opt->api_key };
    struct dataplane_config dc = {
        .svc = &app->svc, .router = &app->router, .state_dir = opt->state_dir,
        .service_domain = opt->service_domain, .service_url_base = opt->service_url_base,
        .max_body = (size_t)opt->max_body,
    };
    return dataplane_init(&dc, &app->dataplane);
}

static int setup(struct app *app)
{
    struct api_options *opt = &app->opt;
    int err;

    app->loop = loop_new();
    if (!app->loop)
        return -errno;
    /* HTTP threads and the loop share the service: one lock. */
    loop_set_guard(app->loop, svc_lock, svc_unlock);
    if ((err = setup_signals(app)) || (err = setup_service(app)) || (err = setup_sweep(app)))
        return err;
    err = httpd_start(&app->router, app->dataplane, opt->host, opt->port,
                      (size_t)opt->max_body, &app->httpd);
    if (err) {
        log_err("cannot listen on %s:%u: %s", opt->host, opt->port, strerror(-err));
        return err;
    }
    log_info("listening on http://%s:%u (state %s)", opt->host, httpd_port(app->httpd),
             opt->state_dir);
    if (opt->port_file && (err = write_port_file(opt->port_file, httpd_port(app->httpd))))
        log_err("cannot write %s: %s", opt->port_file, strerror(-err));
    return err;
}

static void teardown(struct app *app)
{
    httpd_stop(app->httpd);
    dataplane_free(app->dataplane);
    if (app->driver.ops)
        app->driver.ops->destroy(app->driver.self);
    snapshot_shutdown(&app->svc);
    store_close(app->store);
    loop_free(app->loop);
    if (app->sigfd >= 0)
        close(app->sigfd);
    if (app->timerfd >= 0)
        close(app->timerfd);
}

int main(int argc, char **argv)
{
    static struct app app = { .sigfd = -1, .timerfd = -1 };
    int rc = options_parse(argc, argv, &app.opt);

    if (rc)
        return rc > 0 ? 0 : 2;
    if (app.opt.verbose)
        apilog_set_level(APILOG_DEBUG);
    rc = setup(&app);
    if (rc == 0)
        rc = loop_run(app.loop);
    teardown(&app);
    return rc ? 1 : 0;
}
