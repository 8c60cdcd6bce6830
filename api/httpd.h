/* HTTP/1.1 front end: libmicrohttpd in external-epoll mode on sbx-api's one
 * event loop. Collects each request (body capped at max_body bytes) and hands
 * it to the router. */
#ifndef SBX_API_HTTPD_H
#define SBX_API_HTTPD_H

#include "loop.h"
#include "router.h"

#include <stddef.h>
#include <stdint.h>

struct httpd;

/* Listens on host:port (port 0 picks a free one) and registers with loop.
 * Returns 0 or negative errno; *out is set on success. */
int httpd_start(struct loop *loop, struct router *router, const char *host, uint16_t port,
                size_t max_body, struct httpd **out);
/* The port actually bound. */
uint16_t httpd_port(const struct httpd *h);
void httpd_stop(struct httpd *h);

#endif
