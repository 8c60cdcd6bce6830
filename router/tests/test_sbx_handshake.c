/* The "sbx" backend's handshake against a scripted VMM bridge + agent: a real state
 * folder (names/box -> ../sandboxes/1 holding a listening vsock.sock), the backend's own
 * connect/finish, replies fed in pieces as small as one byte. Checks what it sends
 * (CONNECT 52, HELLO, TUNNEL {PORT}), that it stops exactly at the end of the tunnel's OK
 * (the service's bytes after it stay in the socket), each refusal's errno, name lookup,
 * public ports and a state path too long for sun_path. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../backend.h"
#include "check.h"
#include "sbx/agent_proto.h"

static const struct backend_ops *ops;

/* A state folder with sandbox "box" whose vsock.sock listens; returns the listener. */
static int make_state(const char *state)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/sandboxes/1/public", state);
    char mk[4 * PATH_MAX + 64];
    snprintf(mk, sizeof(mk), "mkdir -p %s %s/names %s/sandboxes/2 %s/names/plain", p, state,
             state, state);
    if (system(mk) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/names/box", state);
    if (symlink("../sandboxes/1", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/names/stopped", state);
    if (symlink("../sandboxes/2", p) < 0)
        return -1;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* bind relative to the folder: the state path may be longer than sun_path */
    int cwd = open(".", O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof(p), "%s/sandboxes/1", state);
    if (l < 0 || cwd < 0 || chdir(p) < 0)
        return -1;
    strcpy(sa.sun_path, "vsock.sock");
    int rc = bind(l, (struct sockaddr *)&sa, sizeof(sa));
    if (fchdir(cwd) < 0 || rc < 0 || listen(l, 16) < 0)
        return -1;
    close(cwd);
    return l;
}

struct run {
    int rc;           /* finish's final answer */
    char sent[256];   /* what the backend wrote */
    size_t sent_len;
    char left[64];    /* what stayed in the socket after the handshake */
    size_t left_len;
};

/* Connects through the backend and answers with `reply` in pieces of `piece` bytes,
 * calling finish after each; close_after: hang up once all of it is written. */
static void handshake(void *ctx, int listener, const char *sandbox, unsigned port,
                      const void *reply, size_t len, size_t piece, int close_after,
                      struct run *r)
{
    void *state = NULL;
    memset(r, 0, sizeof(*r));
    int fd = ops->connect(ctx, sandbox, port, &state);
    r->rc = fd;
    if (fd < 0) {
        ops->release(ctx, state);
        return;
    }
    int peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    CHECK(peer >= 0);
    bool want_write = true;
    size_t off = 0;
    for (int guard = 0; guard < 100000; guard++) {
        r->rc = ops->finish(ctx, fd, state, &want_write);
        if (r->rc != -EINPROGRESS)
            break;
        if (off == len) {
            if (!close_after)
                break; /* stuck waiting: the caller sees -EINPROGRESS */
            shutdown(peer, SHUT_WR);
            close_after = 0;
            continue;
        }
        size_t n = len - off < piece ? len - off : piece;
        CHECK(write(peer, (const char *)reply + off, n) == (ssize_t)n);
        off += n;
    }
    ssize_t n = recv(peer, r->sent, sizeof(r->sent), MSG_DONTWAIT);
    r->sent_len = n > 0 ? (size_t)n : 0;
    if (r->rc == 0) {
        /* the rest is the service's: it must all still be there to read */
        if (off < len)
            CHECK(write(peer, (const char *)reply + off, len - off) == (ssize_t)(len - off));
        n = recv(fd, r->left, sizeof(r->left), MSG_DONTWAIT);
        r->left_len = n > 0 ? (size_t)n : 0;
    }
    close(peer);
    close(fd);
    ops->release(ctx, state);
}

/* reply frames */
static size_t frame(uint8_t *out, uint16_t type, const void *payload, uint32_t len)
{
    agent_frame_header(out, type, 0, len);
    if (len)
        memcpy(out + AGENT_HDR_SIZE, payload, len);
    return AGENT_HDR_SIZE + len;
}

static size_t hello(uint8_t *out)
{
    uint8_t p[8];
    agent_put16(p, AGENT_T_VERSION);
    agent_put16(p + 2, 4);
    agent_put32(p + 4, AGENT_PROTO_VERSION);
    return frame(out, AGENT_HELLO, p, sizeof(p));
}

static size_t error_frame(uint8_t *out, uint32_t err, const char *msg)
{
    uint8_t p[128];
    size_t ml = strlen(msg);
    agent_put16(p, AGENT_T_ERRNO);
    agent_put16(p + 2, 4);
    agent_put32(p + 4, err);
    agent_put16(p + 8, AGENT_T_MESSAGE);
    agent_put16(p + 10, (uint16_t)ml);
    memcpy(p + 12, msg, ml);
    return frame(out, AGENT_ERROR, p, (uint32_t)(12 + ml));
}

/* What a good handshake sends: the line, HELLO {VERSION=1}, TUNNEL {PORT}. */
static void check_sent(const struct run *r, unsigned port)
{
    const char line[] = "CONNECT 52\n";
    CHECK(r->sent_len > sizeof(line) - 1 && memcmp(r->sent, line, sizeof(line) - 1) == 0);
    const uint8_t *p = (const uint8_t *)r->sent + sizeof(line) - 1;
    size_t len = r->sent_len - (sizeof(line) - 1);
    struct agent_frame f;
    int n = agent_frame_parse(p, len, &f);
    CHECK(n > 0 && f.type == AGENT_HELLO && f.len == 8 && agent_le32(f.payload + 4) == 1);
    if (n <= 0)
        return;
    n = agent_frame_parse(p + n, len - (size_t)n, &f);
    CHECK(n > 0 && f.type == AGENT_TUNNEL && f.len == 8);
    CHECK(n > 0 && agent_le16(f.payload) == AGENT_T_PORT && agent_le32(f.payload + 4) == port);
}

static void test_good(void *ctx, int l)
{
    uint8_t reply[256];
    size_t len = 0;
    memcpy(reply, "OK 1073741824\n", 14);
    len = 14;
    len += hello(reply + len);
    len += frame(reply + len, AGENT_OK, NULL, 0);
    memcpy(reply + len, "HTTP/1.1 200 OK\r\n", 17); /* the service, right behind the OK */
    len += 17;
    size_t pieces[] = {1, 2, 5, 13, sizeof(reply)};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        struct run r;
        handshake(ctx, l, "box", 8080, reply, len, pieces[i], 0, &r);
        CHECK(r.rc == 0);
        check_sent(&r, 8080);
        CHECK(r.left_len == 17 && memcmp(r.left, "HTTP/1.1 200 OK\r\n", 17) == 0);
    }
}

static void test_refusals(void *ctx, int l)
{
    uint8_t reply[512];
    size_t len;
    struct run r;

    /* nothing listens on the port in the guest */
    len = 6;
    memcpy(reply, "OK 52\n", 6);
    len += hello(reply + len);
    len += error_frame(reply + len, ECONNREFUSED, "connect to 127.0.0.1:1: refused");
    handshake(ctx, l, "box", 1, reply, len, 3, 0, &r);
    CHECK(r.rc == -ECONNREFUSED);

    /* the agent refuses the protocol version */
    len = 6 + error_frame(reply + 6, EPROTONOSUPPORT, "version");
    handshake(ctx, l, "box", 80, reply, len, 64, 0, &r);
    CHECK(r.rc == -EPROTONOSUPPORT);

    /* the VMM hangs up after CONNECT (no agent on port 52) */
    handshake(ctx, l, "box", 80, "", 0, 1, 1, &r);
    CHECK(r.rc == -ECONNRESET);
    handshake(ctx, l, "box", 80, "OK 5", 4, 1, 1, &r);
    CHECK(r.rc == -ECONNRESET);
    /* or answers something else, or an endless line */
    handshake(ctx, l, "box", 80, "NO\n", 3, 1, 0, &r);
    CHECK(r.rc == -ECONNREFUSED);
    memset(reply, 'O', 64);
    handshake(ctx, l, "box", 80, reply, 64, 64, 0, &r);
    CHECK(r.rc == -EPROTO);

    /* malformed agent replies */
    memcpy(reply, "OK 52\n", 6);
    len = 6 + frame(reply + 6, AGENT_OK, NULL, 0); /* OK where HELLO belongs */
    handshake(ctx, l, "box", 80, reply, len, 64, 0, &r);
    CHECK(r.rc == -EPROTO);
    len = 6 + hello(reply + 6);
    len += frame(reply + len, AGENT_HELLO, NULL, 0); /* HELLO again instead of OK */
    handshake(ctx, l, "box", 80, reply, len, 64, 0, &r);
    CHECK(r.rc == -EPROTO);
    len = 6 + hello(reply + 6);
    agent_frame_header(reply + len, AGENT_OK, 0, 100000); /* over AGENT_MAX_PAYLOAD */
    handshake(ctx, l, "box", 80, reply, len + AGENT_HDR_SIZE, 64, 0, &r);
    CHECK(r.rc == -EPROTO);
    agent_frame_header(reply + len, AGENT_OK, 0, 5000); /* valid, but no handshake reply */
    handshake(ctx, l, "box", 80, reply, len + AGENT_HDR_SIZE, 64, 0, &r);
    CHECK(r.rc == -EMSGSIZE);
    agent_frame_header(reply + len, AGENT_OK, 0, 0);
    reply[len + 2] = 1; /* reserved flags */
    handshake(ctx, l, "box", 80, reply, len + AGENT_HDR_SIZE, 64, 0, &r);
    CHECK(r.rc == -EPROTO);
    /* the agent hangs up inside a frame */
    handshake(ctx, l, "box", 80, reply, 6 + 7, 64, 1, &r);
    CHECK(r.rc == -ECONNRESET);

    /* a partial reply leaves it waiting for more, for reading */
    handshake(ctx, l, "box", 80, "OK 52\n\x01", 7, 64, 0, &r);
    CHECK(r.rc == -EINPROGRESS);
}

static void test_lookup(void *ctx, const char *state)
{
    CHECK(ops->sandbox_exists(ctx, "box") == 1);
    CHECK(ops->sandbox_exists(ctx, "nobox") == 0);
    CHECK(ops->sandbox_exists(ctx, "stopped") == 0); /* named, no VMM socket */
    CHECK(ops->sandbox_exists(ctx, "plain") == 0);   /* a folder, not a name link */
    CHECK(ops->sandbox_exists(ctx, "..") == 0);
    CHECK(ops->sandbox_exists(ctx, "box/../box") == 0);
    CHECK(ops->port_public(ctx, "box", 8080) == 0);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/sandboxes/1/public/8080", state);
    int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(ops->port_public(ctx, "box", 8080) == 1);
    CHECK(ops->port_public(ctx, "box", 8081) == 0);
    CHECK(ops->port_public(ctx, "nobox", 8080) == 0);
    void *st = NULL;
    CHECK(ops->connect(ctx, "nobox", 80, &st) == -ENOENT);
    ops->release(ctx, st);
    st = NULL;
    CHECK(ops->connect(ctx, "stopped", 80, &st) == -ENOENT);
    ops->release(ctx, st);
}

static void run_all(const char *state)
{
    int l = make_state(state);
    CHECK(l >= 0);
    if (l < 0)
        return;
    void *ctx = ops->open(state);
    CHECK(ctx != NULL);
    if (ctx) {
        test_good(ctx, l);
        test_refusals(ctx, l);
        test_lookup(ctx, state);
        ops->close(ctx);
    }
    close(l);
}

int main(void)
{
    ops = backend_find("sbx");
    CHECK(ops != NULL && ops->release != NULL);
    if (!ops)
        return 1;
    errno = 0;
    CHECK(ops->open("/nonexistent/sbx-state") == NULL && errno == ENOENT);
    char dir[] = "/tmp/sbx-handshake.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char state[PATH_MAX];
    snprintf(state, sizeof(state), "%s/state", dir);
    run_all(state);
    /* a state path longer than sun_path holds: reached through /proc/self/fd */
    snprintf(state, sizeof(state), "%s/%0150d", dir, 0);
    run_all(state);
    char rm[PATH_MAX + 16];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    CHECK(system(rm) == 0);
    if (failures) {
        fprintf(stderr, "%d failed\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}
