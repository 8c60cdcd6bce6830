/* The event loop of sbx-router (see proxy.h): one epoll set for the listening
 * socket, a signalfd, and both sockets of every connection (conn.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "proxy.h"

/* epoll data of the two non-connection fds; connections use their (aligned) address. */
#define TAG_LISTEN 1
#define TAG_SIGNAL 2

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Splits "ADDR:PORT" or "[ADDR]:PORT". */
static int split_listen(const char *spec, char *host, size_t host_size, const char **port)
{
    const char *colon = strrchr(spec, ':');
    if (!colon)
        return -1;
    const char *h = spec;
    size_t hlen = (size_t)(colon - spec);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= host_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

static int write_port_file(const char *path, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    unsigned port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        return -errno;
    log_info("listening on port %u", port);
    return 0;
}

static int open_listener(const char *spec)
{
    char host[256];
    const char *port;
    if (split_listen(spec, host, sizeof(host), &port) < 0) {
        log_error("--listen %s: want ADDR:PORT", spec);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        log_error("--listen %s: %s", spec, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        rc = -errno;
        log_error("--listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t size)
{
    const void *addr = ss->ss_family == AF_INET6
                           ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                           : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (!inet_ntop(ss->ss_family, addr, out, (socklen_t)size))
        snprintf(out, size, "unknown");
}

static void accept_all(struct relay_env *env, int lfd)
{
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        if (env->n_conns >= env->cfg->opts->max_conns) {
            close(fd); /* over the limit: refuse rather than grow */
            continue;
        }
        int one = 1;
        if (ss.ss_family != AF_UNIX)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char peer[INET6_ADDRSTRLEN];
        peer_name(&ss, peer, sizeof(peer));
        conn_new(env, fd, peer);
    }
}

static int add_fd(int epfd, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int open_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void loop(struct relay_env *env, int lfd)
{
    struct epoll_event events[256];
    uint64_t last_sweep = monotonic_ms();
    for (;;) {
        int n = epoll_wait(env->epfd, events, 256, env->again ? 0 : 1000);
        if (n < 0 && errno != EINTR) {
            log_error("epoll_wait: %s", strerror(errno));
            return;
        }
        env->now_ms = monotonic_ms();
        for (int i = 0; i < n; i++) {
            uint64_t d = events[i].data.u64;
            if (d == TAG_SIGNAL)
                return;
            if (d == TAG_LISTEN)
                accept_all(env, lfd);
            else
                conn_event((struct conn *)(uintptr_t)(d & ~(uint64_t)CONN_TAG_MASK),
                           (int)(d & CONN_TAG_MASK), events[i].events);
        }
        conn_run_again(env);
        if (env->now_ms - last_sweep >= 1000) {
            conn_sweep(env);
            last_sweep = env->now_ms;
        }
        conn_reap(env);
    }
}

int proxy_run(const struct proxy_config *cfg)
{
    struct relay_env env = {.cfg = cfg, .now_ms = monotonic_ms()};
    int rc = 0, sfd = -1, lfd = open_listener(cfg->opts->listen);
    if (lfd < 0)
        return lfd;
    env.epfd = epoll_create1(EPOLL_CLOEXEC);
    sfd = open_signals();
    if (env.epfd < 0 || sfd < 0 || add_fd(env.epfd, lfd, TAG_LISTEN) < 0 ||
        add_fd(env.epfd, sfd, TAG_SIGNAL) < 0) {
        rc = -errno;
        log_error("event loop set-up: %s", strerror(errno));
        goto out;
    }
    if (cfg->opts->port_file && (rc = write_port_file(cfg->opts->port_file, lfd)) < 0) {
        log_error("--port-file %s: %s", cfg->opts->port_file, strerror(-rc));
        goto out;
    }
    log_info("serving *--*.%s (%s, backend %s, %zu KiB max per connection)", cfg->opts->domain,
             cfg->tls ? "https" : "http", cfg->backend->name, conn_size / 1024);
    loop(&env, lfd);
    log_info("stopping");
    conn_close_all(&env);
out:
    if (sfd >= 0)
        close(sfd);
    if (env.epfd >= 0)
        close(env.epfd);
    close(lfd);
    return rc;
}
