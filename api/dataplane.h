/* The data plane (api/DATAPLANE.md): exec, files, tunnels and service URLs,
 * served on libmicrohttpd's per-connection threads. Handlers look the sandbox
 * up under the service lock, release it, then talk to the guest agent over a
 * fresh connection to STATE/sandboxes/ID/vsock.sock (port 52). */
#ifndef SBX_API_DATAPLANE_H
#define SBX_API_DATAPLANE_H

#include "router.h"

#include <microhttpd.h>
#include <stddef.h>

struct dataplane_config {
    struct svc *svc;
    const struct router *router;        /* for the API key check */
    const char *state_dir;
    const char *service_domain;         /* service URLs: NAME--PORT.DOMAIN */
    const char *service_url_base;       /* template; {host} is NAME--PORT.DOMAIN */
    size_t max_body;                    /* JSON bodies (exec, service-url) */
};

struct dataplane;
struct dp_req;

/* Loads (or creates, 0600) STATE/service.key. Returns 0 or negative errno. */
int dataplane_init(const struct dataplane_config *cfg, struct dataplane **out);
/* Ends every open stream and agent call (their clients see them end) and
 * waits for the stream threads. New requests fail afterwards. */
void dataplane_shutdown(struct dataplane *dp);
void dataplane_free(struct dataplane *dp);

/* httpd's access handler, first call of a request: a request object when url is
 * a data-plane route (any method: a wrong one is answered 405), else NULL. */
struct dp_req *dataplane_begin(struct dataplane *dp, struct MHD_Connection *conn,
                               const char *method, const char *url);
/* Every later call of that request (body chunks, then the final call). */
enum MHD_Result dataplane_step(struct dp_req *r, struct MHD_Connection *conn,
                               const char *upload_data, size_t *upload_data_size);
/* The request is over (MHD_OPTION_NOTIFY_COMPLETED). */
void dataplane_end(struct dp_req *r);

#endif
