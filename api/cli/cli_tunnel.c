/* sbx tunnel: TCP into a sandbox over the tunnel WebSocket (api/DATAPLANE.md
 * "Tunnels"). Binary frames carry the stream; a close from either side ends it. */
#include "cli_cmds.h"
#include "cli_format.h"
#include "cli_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct relay {
    int out_fd;
    bool out_broken;
};

static void on_binary(struct cli_ws *ws, const uint8_t *msg, size_t len, void *arg)
{
    struct relay *r = arg;

    if (r->out_broken)
        return;
    if (cli_write_all(r->out_fd, msg, len)) {
        r->out_broken = true;
        cli_ws_close(ws, 1000, NULL);
    }
}

static int on_input(struct cli_ws *ws, struct cli_ws_fd *f, short revents, void *arg)
{
    int rc = cli_ws_forward_input(ws, f, -1);

    (void)revents;
    (void)arg;
    if (rc != 1)
        return rc;
    /* no half-close in the protocol: our side is done, end it once sent */
    return cli_ws_close(ws, 1000, NULL) ? -1 : 0;
}

/* Relays in_fd -> sandbox port -> out_fd until either side ends. */
static int relay(const struct cli_conn *conn, const char *name, int port, int in_fd, int out_fd)
{
    static const struct cli_ws_handler h = { .on_binary = on_binary };
    struct relay r = { .out_fd = out_fd };
    struct cli_ws_fd fds[1] = { { .fd = in_fd, .events = POLLIN, .throttle = true,
                                  .ready = on_input } };
    char suffix[32];
    struct cli_ws *ws;
    int rc;

    snprintf(suffix, sizeof(suffix), "/tunnel?port=%d", port);
    rc = cli_ws_open_sandbox(conn, name, suffix, &h, &r, &ws);
    if (rc)
        return rc;
    rc = cli_ws_loop(ws, fds, 1, &r) ? 1 : 0;
    if (rc)
        fprintf(stderr, "sbx: tunnel: %s\n", cli_ws_error(ws));
    else if (cli_ws_close_code(ws) != 1000 && cli_ws_close_code(ws) != 0 &&
             cli_ws_close_code(ws) != 1005) {
        fprintf(stderr, "sbx: tunnel to %s port %d closed (%u)%s%s\n", name, port,
                cli_ws_close_code(ws), *cli_ws_close_reason(ws) ? ": " : "",
                cli_ws_close_reason(ws));
        rc = 1;
    }
    cli_ws_free(ws);
    return rc;
}

int cli_tunnel_stdio(const struct cli_conn *conn, const char *name, int remote_port)
{
    signal(SIGPIPE, SIG_IGN);
    return relay(conn, name, remote_port, STDIN_FILENO, STDOUT_FILENO);
}

/* Fails early, before listening, when the sandbox does not exist. */
static int check_sandbox(const struct cli_conn *conn, const char *name)
{
    struct cli_reply r;
    char path[512], err[512];
    int rc = 0;

    if (cli_path(path, sizeof(path), "/v1/sandboxes/", name, "")) {
        fprintf(stderr, "sbx: bad name '%s'\n", name);
        return 2;
    }
    if (cli_request(conn, "GET", path, NULL, &r, err, sizeof(err))) {
        fprintf(stderr, "sbx: %s\n", err);
        return 1;
    }
    if (r.status >= 400) {
        json_t *e = json_object_get(r.json, "error");
        fprintf(stderr, "sbx: %s: %s\n", json_string_value(json_object_get(e, "type")) ?: "error",
                json_string_value(json_object_get(e, "message")) ?: "sbx-api refused");
        rc = 1;
    }
    cli_reply_free(&r);
    return rc;
}

static int listen_on(int port, int *bound)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64) ||
        getsockname(fd, (struct sockaddr *)&a, &alen)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static void announce(const char *name, int remote_port, int port, bool pretty)
{
    if (pretty) {
        printf("forwarding 127.0.0.1:%d -> %s port %d (Ctrl+C stops)\n", port, name, remote_port);
    } else {
        json_t *j = json_pack("{s:s,s:i,s:s,s:i}", "sandbox", name, "remote_port", remote_port,
                              "local_address", "127.0.0.1", "local_port", port);
        char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
        json_decref(j);
    }
    fflush(stdout);
}

int cli_tunnel_listen(const struct cli_conn *conn, const char *name, int remote_port,
                      int local_port, bool pretty)
{
    struct sigaction sa = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };
    int lfd, port, rc = check_sandbox(conn, name);

    if (rc)
        return rc;
    lfd = listen_on(local_port, &port);
    if (lfd < 0) {
        fprintf(stderr, "sbx: cannot listen on 127.0.0.1:%d: %s\n", local_port, strerror(errno));
        return 1;
    }
    sigaction(SIGCHLD, &sa, NULL);      /* children reaped by the kernel */
    signal(SIGPIPE, SIG_IGN);
    announce(name, remote_port, port, pretty);
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        pid_t pid;

        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE)
                    usleep(100 * 1000);
                continue;
            }
            fprintf(stderr, "sbx: accept: %s\n", strerror(errno));
            close(lfd);
            return 1;
        }
        pid = fork();
        if (pid == 0) {
            close(lfd);
            rc = relay(conn, name, remote_port, c, c);
            shutdown(c, SHUT_RDWR);
            _exit(rc);
        }
        if (pid < 0)
            fprintf(stderr, "sbx: fork: %s\n", strerror(errno));
        close(c);
    }
}
