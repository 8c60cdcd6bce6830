/* getopt_long parsing of sbx-api's options. */
#include "options.h"

#include "oci_registry.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_LISTEN = 256, OPT_PORT_FILE, OPT_STATE_DIR, OPT_DB, OPT_SNAPSHOT_DIR, OPT_KEY_FILE,
    OPT_VMM, OPT_KERNEL, OPT_INITRD, OPT_CMDLINE, OPT_SWEEP, OPT_GRACE, OPT_POWEROFF, OPT_MAX_BODY,
    OPT_DEFAULT_SNAPSHOT,
    OPT_MAX_RUNNING, OPT_MAX_SANDBOXES, OPT_MAX_VCPUS, OPT_MAX_MEMORY, OPT_MAX_DISK,
    OPT_IDLE_TTL, OPT_DELETE_AFTER, OPT_SVC_DOMAIN, OPT_SVC_URL_BASE, OPT_INSECURE_REGISTRY,
    OPT_GUEST_NET,
};

static const struct option long_opts[] = {
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "port-file", required_argument, NULL, OPT_PORT_FILE },
    { "state-dir", required_argument, NULL, OPT_STATE_DIR },
    { "db", required_argument, NULL, OPT_DB },
    { "snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR },
    { "api-key-file", required_argument, NULL, OPT_KEY_FILE },
    { "vmm", required_argument, NULL, OPT_VMM },
    { "kernel", required_argument, NULL, OPT_KERNEL },
    { "initrd", required_argument, NULL, OPT_INITRD },
    { "cmdline", required_argument, NULL, OPT_CMDLINE },
    { "default-snapshot", required_argument, NULL, OPT_DEFAULT_SNAPSHOT },
    { "sweep-interval-ms", required_argument, NULL, OPT_SWEEP },
    { "stop-grace-ms", required_argument, NULL, OPT_GRACE },
    { "poweroff-timeout-ms", required_argument, NULL, OPT_POWEROFF },
    { "max-body-bytes", required_argument, NULL, OPT_MAX_BODY },
    { "max-running", required_argument, NULL, OPT_MAX_RUNNING },
    { "max-sandboxes", required_argument, NULL, OPT_MAX_SANDBOXES },
    { "max-vcpus", required_argument, NULL, OPT_MAX_VCPUS },
    { "max-memory-mib", required_argument, NULL, OPT_MAX_MEMORY },
    { "max-disk-gib", required_argument, NULL, OPT_MAX_DISK },
    { "default-idle-ttl", required_argument, NULL, OPT_IDLE_TTL },
    { "default-delete-after-stop", required_argument, NULL, OPT_DELETE_AFTER },
    { "service-domain", required_argument, NULL, OPT_SVC_DOMAIN },
    { "service-url-base", required_argument, NULL, OPT_SVC_URL_BASE },
    { "insecure-registry", required_argument, NULL, OPT_INSECURE_REGISTRY },
    { "guest-net", required_argument, NULL, OPT_GUEST_NET },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static const char usage[] =
    "usage: sbx-api [options]\n"
    "  --listen HOST:PORT          address to serve on (127.0.0.1:8080; port 0 = any free)\n"
    "  --port-file PATH            write the bound port here once listening\n"
    "  --state-dir DIR             sandboxes' files and the database (/var/lib/sbx)\n"
    "  --db PATH                   SQLite database (STATE/sbx-api.db)\n"
    "  --snapshot-dir DIR          where snapshot images live (STATE/snapshots)\n"
    "  --api-key-file PATH         file holding the API key (else $SBX_API_KEY)\n"
    "  --vmm PATH                  sbx-vmm binary (next to sbx-api)\n"
    "  --kernel PATH --initrd PATH --cmdline STR   guest boot files (STATE/boot/...)\n"
    "  --default-snapshot PATH     ext4 image built as snapshot debian-12 if it is missing\n"
    "  --sweep-interval-ms N       retention sweep period (1000)\n"
    "  --poweroff-timeout-ms N     how long a stop waits for the guest to power off\n"
    "                              (sync its disk) before it stops the VMM (10000; 0: no wait)\n"
    "  --stop-grace-ms N           then SIGTERM to SIGKILL delay (3000)\n"
    "  --max-body-bytes N          request body limit (65536)\n"
    "  --max-running N --max-sandboxes N --max-vcpus N --max-memory-mib N --max-disk-gib N\n"
    "  --default-idle-ttl S --default-delete-after-stop S\n"
    "  --service-domain D          service URLs are NAME--PORT.D (localhost)\n"
    "  --service-url-base URL      service URL template, {host} = NAME--PORT.D\n"
    "                              (http://{host}:8081)\n"
    "  --insecure-registry HOST:PORT  pull docker_image from HOST:PORT over plain HTTP\n"
    "                              (repeatable, at most 16)\n"
    "  --guest-net SPEC            every sandbox's network, sbx-vmm's --net: user (the\n"
    "                              default: outbound TCP/UDP through the VMM, the\n"
    "                              host's loopback and private networks unreachable),\n"
    "                              user,lan=on, user,host-loopback=on, or none\n"
    "  -v, --verbose               log every request\n";

static int parse_i64(const char *name, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "sbx-api: --%s must be an integer from %lld to %lld\n", name,
                (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_listen(const char *s, struct api_options *opt)
{
    const char *colon = strrchr(s, ':');
    int64_t port;

    if (!colon || (size_t)(colon - s) >= sizeof(opt->host) || colon == s) {
        fprintf(stderr, "sbx-api: --listen wants HOST:PORT\n");
        return -1;
    }
    snprintf(opt->host, sizeof(opt->host), "%.*s", (int)(colon - s), s);
    if (parse_i64("listen port", colon + 1, 0, 65535, &port))
        return -1;
    opt->port = (uint16_t)port;
    return 0;
}

static int read_key_file(const char *path, struct api_options *opt)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (!f) {
        fprintf(stderr, "sbx-api: %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fread(opt->api_key, 1, sizeof(opt->api_key) - 1, f);
    fclose(f);
    opt->api_key[n] = '\0';
    opt->api_key[strcspn(opt->api_key, "\r\n")] = '\0';
    return 0;
}

static void set_defaults(struct api_options *opt)
{
    char self[1000];
    ssize_t n;

    memset(opt, 0, sizeof(*opt));
    snprintf(opt->host, sizeof(opt->host), "127.0.0.1");
    opt->port = 8080;
    opt->state_dir = "/var/lib/sbx";
    /* Quiet, and no probing of hardware sbx-vmm does not have: boots faster. */
    opt->cmdline = "console=ttyS0 reboot=k panic=-1 pci=off nomodeset i8042.noaux i8042.nomux "
                   "i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check quiet";
    opt->net = "user";
    opt->sweep_interval_ms = 1000;
    opt->stop_grace_ms = 3000;
    opt->poweroff_timeout_ms = 10000;
    opt->max_body = 65536;
    opt->service_domain = "localhost";
    opt->service_url_base = "http://{host}:8081";
    svc_default_limits(&opt->limits);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    if (n > 0 && strrchr(self, '/'))
        *strrchr(self, '/') = '\0';
    snprintf(opt->vmm_path, sizeof(opt->vmm_path), "%s/sbx-vmm", n > 0 ? self : ".");
}

/* Paths that default to places under the state directory. */
static void derive_paths(struct api_options *opt)
{
    if (!opt->db_path[0])
        snprintf(opt->db_path, sizeof(opt->db_path), "%s/sbx-api.db", opt->state_dir);
    if (!opt->snapshot_dir[0])
        snprintf(opt->snapshot_dir, sizeof(opt->snapshot_dir), "%s/snapshots", opt->state_dir);
    if (!opt->kernel_path[0])
        snprintf(opt->kernel_path, sizeof(opt->kernel_path), "%s/boot/vmlinux", opt->state_dir);
    if (!opt->initrd_path[0])
        snprintf(opt->initrd_path, sizeof(opt->initrd_path), "%s/boot/initrd.img",
                 opt->state_dir);
    if (!opt->api_key[0] && getenv("SBX_API_KEY"))
        snprintf(opt->api_key, sizeof(opt->api_key), "%s", getenv("SBX_API_KEY"));
}

/* Defaults never exceed the configured maxima. */
static void clamp_defaults(struct svc_limits *l)
{
    if (l->default_vcpus > l->max_vcpus)
        l->default_vcpus = l->max_vcpus;
    if (l->default_memory_mib > l->max_memory_mib)
        l->default_memory_mib = l->max_memory_mib;
    if (l->default_disk_gib > l->max_disk_gib)
        l->default_disk_gib = l->max_disk_gib;
}

static int copy_path(char *dst, size_t len, const char *src, const char *name)
{
    if (strlen(src) >= len) {
        fprintf(stderr, "sbx-api: --%s is too long\n", name);
        return -1;
    }
    strcpy(dst, src);
    return 0;
}

static int insecure_registry(const char *host)
{
    if (oci_registry_allow_insecure(host) == 0)
        return 0;
    fprintf(stderr, "sbx-api: --insecure-registry wants HOST[:PORT] (at most 16 of them)\n");
    return -1;
}

static int apply(int c, const char *arg, struct api_options *opt)
{
    struct svc_limits *l = &opt->limits;
    const int64_t big = INT32_MAX;

    switch (c) {
    case OPT_LISTEN: return parse_listen(arg, opt);
    case OPT_PORT_FILE: opt->port_file = arg; return 0;
    case OPT_STATE_DIR: opt->state_dir = arg; return 0;
    case OPT_DB: return copy_path(opt->db_path, sizeof(opt->db_path), arg, "db");
    case OPT_SNAPSHOT_DIR:
        return copy_path(opt->snapshot_dir, sizeof(opt->snapshot_dir), arg, "snapshot-dir");
    case OPT_KEY_FILE: return read_key_file(arg, opt);
    case OPT_VMM: return copy_path(opt->vmm_path, sizeof(opt->vmm_path), arg, "vmm");
    case OPT_KERNEL: return copy_path(opt->kernel_path, sizeof(opt->kernel_path), arg, "kernel");
    case OPT_INITRD: return copy_path(opt->initrd_path, sizeof(opt->initrd_path), arg, "initrd");
    case OPT_CMDLINE: opt->cmdline = arg; return 0;
    case OPT_DEFAULT_SNAPSHOT: opt->default_snapshot = arg; return 0;
    case OPT_SWEEP: return parse_i64("sweep-interval-ms", arg, 10, 3600000, &opt->sweep_interval_ms);
    case OPT_GRACE: return parse_i64("stop-grace-ms", arg, 0, 600000, &opt->stop_grace_ms);
    case OPT_POWEROFF:
        return parse_i64("poweroff-timeout-ms", arg, 0, 600000, &opt->poweroff_timeout_ms);
    case OPT_MAX_BODY: return parse_i64("max-body-bytes", arg, 1024, 1 << 24, &opt->max_body);
    case OPT_MAX_RUNNING: return parse_i64("max-running", arg, 0, big, &l->max_running);
    case OPT_MAX_SANDBOXES: return parse_i64("max-sandboxes", arg, 0, big, &l->max_sandboxes);
    case OPT_MAX_VCPUS: return parse_i64("max-vcpus", arg, 1, 256, &l->max_vcpus);
    case OPT_MAX_MEMORY: return parse_i64("max-memory-mib", arg, 64, 1 << 22, &l->max_memory_mib);
    case OPT_MAX_DISK: return parse_i64("max-disk-gib", arg, 1, 1 << 16, &l->max_disk_gib);
    case OPT_IDLE_TTL:
        return parse_i64("default-idle-ttl", arg, 0, big, &l->default_idle_ttl_seconds);
    case OPT_DELETE_AFTER:
        return parse_i64("default-delete-after-stop", arg, 0, big,
                         &l->default_delete_after_stop_seconds);
    case OPT_SVC_DOMAIN: opt->service_domain = arg; return 0;
    case OPT_SVC_URL_BASE: opt->service_url_base = arg; return 0;
    case OPT_INSECURE_REGISTRY: return insecure_registry(arg);
    case OPT_GUEST_NET:
        if (strcmp(arg, "none") && strcmp(arg, "user") && strncmp(arg, "user,", 5)) {
            fprintf(stderr, "sbx-api: --guest-net wants user[,OPTIONS] or none\n");
            return -1;
        }
        opt->net = arg;  /* sbx-vmm checks the options when it starts */
        return 0;
    case 'v': opt->verbose = 1; return 0;
    default: return -1;
    }
}

int options_parse(int argc, char **argv, struct api_options *opt)
{
    int c;

    set_defaults(opt);
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        if (apply(c, optarg, opt)) {
            fputs(usage, stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sbx-api: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    derive_paths(opt);
    clamp_defaults(&opt->limits);
    if (!opt->api_key[0]) {
        fprintf(stderr, "sbx-api: no API key: set SBX_API_KEY or --api-key-file\n");
        return -1;
    }
    return 0;
}
