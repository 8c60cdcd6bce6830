/* Backends: how the router reaches a port inside a sandbox. The proxy only sees this
 * table; each backend lives in its own file and is listed in backend.c.
 *
 * Life of a backend connection: connect() returns a non-blocking fd at once (the
 * connection may still be in progress); the proxy then calls finish() each time the
 * fd is readable or writable until it returns 0 (ready: from now on the fd carries the
 * service's bytes) or a negative errno. A backend that must speak to an agent first
 * (say "open port P" over a VMM vsock socket) does that inside finish(). */
#ifndef ROUTER_BACKEND_H
#define ROUTER_BACKEND_H

#include <stdbool.h>

struct backend_ops {
    const char *name;
    /* Sets up from the --backend-arg string; returns a context or NULL (errno set). */
    void *(*open)(const char *arg);
    void (*close)(void *ctx);
    /* 1 if the sandbox exists, 0 if not, -errno on failure. */
    int (*sandbox_exists)(void *ctx, const char *sandbox);
    /* 1 if the port is public (no token needed), 0 if not. */
    int (*port_public)(void *ctx, const char *sandbox, unsigned port);
    /* Starts a connection; returns a non-blocking CLOEXEC fd or -errno. *state (NULL
     * before the call) may be set to whatever the backend keeps per connection, such
     * as how far a tunnel request got; it is passed to finish() and release(). */
    int (*connect)(void *ctx, const char *sandbox, unsigned port, void **state);
    /* Continues a connection: 0 ready, -EINPROGRESS wait for `*want_write` (1) or
     * readability (0), any other -errno failed (-ECONNREFUSED, -ENOENT: nothing listens).
     * It must not read past its own handshake: what follows belongs to the service. */
    int (*finish)(void *ctx, int fd, void *state, bool *want_write);
    /* Frees *state when the proxy closes the fd (NULL for backends without state). */
    void (*release)(void *ctx, void *state);
};

/* Looks up a backend by name; NULL if there is none. */
const struct backend_ops *backend_find(const char *name);

/* Comma-separated names of all backends, for --help. */
const char *backend_names(void);

/* backend_unix_dir.c: Unix sockets in a folder, a stand-in for tests. */
extern const struct backend_ops backend_unix_dir;
/* backend_sbx.c: sbx-api's sandboxes through the VMM's vsock socket and the guest agent. */
extern const struct backend_ops backend_sbx;

#endif
