/* sbx-api's command-line options (the one way it is configured; the API key
 * comes from a file or SBX_API_KEY so it never shows in ps). */
#ifndef SBX_API_OPTIONS_H
#define SBX_API_OPTIONS_H

#include "service.h"

#include <stddef.h>
#include <stdint.h>

struct api_options {
    char host[64];
    uint16_t port;
    const char *port_file;          /* written with the bound port once listening */
    const char *state_dir;
    char db_path[1024];
    char snapshot_dir[1024];
    char api_key[256];
    char vmm_path[1024];
    char kernel_path[1024];
    char initrd_path[1024];
    const char *cmdline;
    const char *net;                /* sbx-vmm --net for every sandbox; "none": no network */
    const char *default_snapshot;   /* ext4 image for snapshot debian-12, or NULL */
    int64_t sweep_interval_ms;
    int64_t stop_grace_ms;
    int64_t poweroff_timeout_ms;
    int64_t max_body;
    const char *service_domain;     /* service URLs: NAME--PORT.DOMAIN */
    const char *service_url_base;   /* URL template; {host} is NAME--PORT.DOMAIN */
    int verbose;
    struct svc_limits limits;
};

/* Parses argv (and SBX_API_KEY). Returns 0, 1 when --help was printed,
 * or -1 after printing an error to stderr. */
int options_parse(int argc, char **argv, struct api_options *opt);

#endif
