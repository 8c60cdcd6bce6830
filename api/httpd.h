/* HTTP/1.1 front end: libmicrohttpd with a thread per connection. Collects
 * each control-plane request (body capped at max_body bytes) and hands it to
 * the router under the service lock; data-plane routes (exec, files, tunnels,
 * service URLs, WebSocket upgrades) go to dataplane.c. */
#ifndef SBX_API_HTTPD_H
#define SBX_API_HTTPD_H

#include "dataplane.h"
#include "router.h"

#include <stddef.h>
#include <stdint.h>

struct httpd;

/* Listens on host:port (port 0 picks a free one) on libmicrohttpd's threads.
 * dp may be NULL (no data plane). Returns 0 or negative errno; *out is set on
 * success. */
int httpd_start(struct router *router, struct dataplane *dp, const char *host, uint16_t port,
                size_t max_body, struct httpd **out);
/* The port actually bound. */
uint16_t httpd_port(const struct httpd *h);
/* Ends the data plane's streams, then stops serving. */
void httpd_stop(struct httpd *h);

#endif
