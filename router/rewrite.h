/* Heads as forwarded: the request the service sees (Host kept, X-Forwarded-* set,
 * router credentials and hop-by-hop headers removed) and the response the client
 * sees (connection handling replaced by the router's own). */
#ifndef ROUTER_REWRITE_H
#define ROUTER_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "http_msg.h"

struct rewrite_request_info {
    const char *peer;  /* client address, for X-Forwarded-For */
    bool tls;          /* X-Forwarded-Proto https */
    bool strip_bearer; /* Authorization held a service token */
};

/* Writes the head to send to the service for request m, whose head starts at `head`.
 * Returns its length, or -1 if it does not fit in cap. */
long rewrite_request(const struct http_msg *m, const char *head,
                     const struct rewrite_request_info *info, char *out, size_t cap);

/* Writes the head to send to the client for response m (head at `head`), saying
 * whether the client connection stays open (keep_alive) and, for an HTTP/1.0
 * client (http10), saying so explicitly. Returns its length or -1 if cap is too small. */
long rewrite_response(const struct http_msg *m, const char *head, bool keep_alive, bool http10,
                      char *out, size_t cap);

#endif
