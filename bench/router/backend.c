/* Benchmark service: answers every HTTP/1.1 request on a Unix socket with a small
 * fixed response, keeping connections open. Single thread, epoll. Fast enough that
 * the proxy in front of it is what a benchmark measures.
 * usage: backend SOCKET_PATH */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BODY "hello from the sandbox service, through a proxy\n"

#define STR(x)  #x
#define XSTR(x) STR(x)
#define BODY_LEN 48
static const char response[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " XSTR(BODY_LEN) "\r\n\r\n" BODY;

struct client {
    int fd;
    size_t len;
    char buf[8192];
};

/* Answers every complete head in c->buf; returns -1 to close. */
static int serve(struct client *c)
{
    char out[64 * sizeof(response)];
    size_t out_len = 0, off = 0;
    char *end;
    while ((end = memmem(c->buf + off, c->len - off, "\r\n\r\n", 4)) != NULL) {
        off = (size_t)(end - c->buf) + 4;
        if (out_len + sizeof(response) - 1 > sizeof(out))
            break;
        memcpy(out + out_len, response, sizeof(response) - 1);
        out_len += sizeof(response) - 1;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (out_len && send(c->fd, out, out_len, MSG_NOSIGNAL) != (ssize_t)out_len)
        return -1; /* tiny responses: a short write means a dead peer here */
    return c->len == sizeof(c->buf) ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 || sizeof(BODY) - 1 != BODY_LEN) {
        fprintf(stderr, "usage: backend SOCKET_PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* proxies close kept connections at the end of a run */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    unlink(argv[1]);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
        perror("backend: listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[128];
    for (;;) {
        int n = epoll_wait(ep, evs, 128, -1);
        for (int i = 0; i < n; i++) {
            struct client *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0 || (c->len += (size_t)r, serve(c) < 0)) {
                close(c->fd);
                free(c);
            }
        }
    }
}
