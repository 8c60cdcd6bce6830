/* Backend "sbx": real sandboxes of sbx-api. The argument is sbx-api's state folder
 * STATE (api/DATAPLANE.md, "Service URLs"):
 *   - sandbox S exists while STATE/names/S is a symlink to its folder and that folder
 *     holds the VMM's vsock bridge socket vsock.sock;
 *   - port P of S is public when STATE/names/S/public/P exists;
 *   - port P is reached by connecting to vsock.sock, "CONNECT 52\n" -> "OK <n>\n" (the
 *     VMM's bridge to guest vsock port 52, the agent), then the agent protocol
 *     (include/sbx/agent_proto.h): HELLO, TUNNEL {PORT} -> OK, after which the socket is
 *     a raw byte pipe to 127.0.0.1:P in the guest.
 * The handshake runs non-blocking in finish(), one step per readiness, and reads exactly
 * the bytes of each reply: whatever follows the tunnel's OK is the service's. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "sbx/agent_proto.h"
#include "sbx/svc_token.h"

#define SBX_SOCK_NAME "vsock.sock"
#define SBX_LINE_MAX  32                     /* "OK 4294967295\n" and then some */
#define SBX_REPLY_MAX (AGENT_HDR_SIZE + 1024) /* HELLO, OK, ERROR with its message */
#define SBX_OUT_MAX   64                     /* the CONNECT line, or HELLO + TUNNEL */

struct sbx_backend {
    int dir_fd;
    char *path;             /* STATE as given, for socket addresses */
    struct agent_msg *msg;  /* frame builder, shared: the router is one thread */
};

enum sbx_step { STEP_LINE, STEP_HELLO, STEP_TUNNEL };

/* One connection's progress through the handshake. */
struct sbx_conn {
    enum sbx_step step;
    unsigned port;
    uint8_t out[SBX_OUT_MAX];
    size_t out_len, out_off;
    uint8_t in[SBX_REPLY_MAX]; /* the reply being read: a line, then one frame at a time */
    size_t in_len;
};

static void *sbx_open(const char *arg)
{
    if (!arg || !*arg) {
        errno = EINVAL;
        return NULL;
    }
    struct sbx_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->dir_fd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    b->path = strdup(arg);
    b->msg = malloc(sizeof(*b->msg));
    if (b->dir_fd < 0 || !b->path || !b->msg) {
        int e = b->dir_fd < 0 ? errno : ENOMEM;
        if (b->dir_fd >= 0)
            close(b->dir_fd);
        free(b->path);
        free(b->msg);
        free(b);
        errno = e;
        return NULL;
    }
    return b;
}

static void sbx_close(void *ctx)
{
    struct sbx_backend *b = ctx;
    close(b->dir_fd);
    free(b->path);
    free(b->msg);
    free(b);
}

/* Only names a token can carry: never a path of their own ("..", "a/b"). */
static int name_ok(const char *sandbox)
{
    return svc_token_sandbox_valid(sandbox, strlen(sandbox));
}

static int sbx_sandbox_exists(void *ctx, const char *sandbox)
{
    struct sbx_backend *b = ctx;
    char rel[SVC_TOKEN_SANDBOX_MAX + 32];
    struct stat st;
    if (!name_ok(sandbox))
        return 0;
    snprintf(rel, sizeof(rel), "names/%s", sandbox);
    if (fstatat(b->dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    if (!S_ISLNK(st.st_mode))
        return 0;
    snprintf(rel, sizeof(rel), "names/%s/" SBX_SOCK_NAME, sandbox);
    if (fstatat(b->dir_fd, rel, &st, 0) < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
    return S_ISSOCK(st.st_mode) ? 1 : 0;
}

static int sbx_port_public(void *ctx, const char *sandbox, unsigned port)
{
    struct sbx_backend *b = ctx;
    char rel[SVC_TOKEN_SANDBOX_MAX + 32];
    if (!name_ok(sandbox))
        return 0;
    snprintf(rel, sizeof(rel), "names/%s/public/%u", sandbox, port);
    return faccessat(b->dir_fd, rel, F_OK, 0) == 0;
}

/* STATE/names/S/vsock.sock, or through /proc/self/fd when STATE is too long for
 * sun_path. */
static int sock_addr(const struct sbx_backend *b, const char *sandbox, struct sockaddr_un *sa)
{
    *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
    int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/names/%s/" SBX_SOCK_NAME,
                     b->path, sandbox);
    if (n >= 0 && (size_t)n < sizeof(sa->sun_path))
        return 0;
    n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/names/%s/" SBX_SOCK_NAME,
                 b->dir_fd, sandbox);
    return n >= 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -ENAMETOOLONG;
}

static int sbx_connect(void *ctx, const char *sandbox, unsigned port, void **state)
{
    struct sbx_backend *b = ctx;
    struct sockaddr_un sa;
    if (!name_ok(sandbox) || port == 0 || port > 65535)
        return -EINVAL;
    int rc = sock_addr(b, sandbox, &sa);
    if (rc < 0)
        return rc;
    struct sbx_conn *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    *state = s; /* the proxy releases it, also when this fails */
    s->step = STEP_LINE;
    s->port = port;
    s->out_len = (size_t)snprintf((char *)s->out, sizeof(s->out), "CONNECT %u\n",
                                  AGENT_VSOCK_PORT);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A Unix connect completes at once or fails; EAGAIN: full backlog, nobody accepting. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno == EAGAIN ? ECONNREFUSED : errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Queues HELLO {VERSION} and TUNNEL {PORT} together: the agent takes them in order, so
 * one round trip serves both. */
static int queue_requests(struct sbx_backend *b, struct sbx_conn *s)
{
    struct agent_msg *m = b->msg;
    s->out_len = s->out_off = 0;
    agent_msg_init(m, AGENT_HELLO, 0);
    agent_msg_u32(m, AGENT_T_VERSION, AGENT_PROTO_VERSION);
    int n = agent_msg_finish(m);
    if (n < 0 || (size_t)n > sizeof(s->out))
        return -EMSGSIZE;
    memcpy(s->out, m->buf, (size_t)n);
    s->out_len = (size_t)n;
    agent_msg_init(m, AGENT_TUNNEL, 0);
    agent_msg_u32(m, AGENT_T_PORT, s->port);
    n = agent_msg_finish(m);
    if (n < 0 || (size_t)n > sizeof(s->out) - s->out_len)
        return -EMSGSIZE;
    memcpy(s->out + s->out_len, m->buf, (size_t)n);
    s->out_len += (size_t)n;
    return 0;
}

/* Sends what is queued. 0 when all went, -EAGAIN, or -errno. */
static int flush_out(int fd, struct sbx_conn *s)
{
    while (s->out_off < s->out_len) {
        ssize_t n = send(fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        s->out_off += (size_t)n;
    }
    return 0;
}

/* Receives up to want bytes into s->in. 0 once they are all there, -EAGAIN, -errno. */
static int recv_in(int fd, struct sbx_conn *s, size_t want, int flags)
{
    while (s->in_len < want) {
        ssize_t n = recv(fd, s->in + s->in_len, want - s->in_len, flags);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ECONNRESET; /* the VMM or the agent hung up: nothing to reach */
        s->in_len += (size_t)n;
    }
    return 0;
}

/* Reads the bridge's answer line up to its '\n', no further: a peek says where it ends.
 * Returns 0 when the line was "OK <n>", -EAGAIN, or -errno. */
static int read_line(int fd, struct sbx_conn *s)
{
    for (;;) {
        uint8_t peek[SBX_LINE_MAX];
        size_t room = SBX_LINE_MAX - s->in_len;
        if (room == 0)
            return -EPROTO;
        ssize_t n = recv(fd, peek, room, MSG_PEEK);
        if (n < 0)
            return errno == EINTR ? -EAGAIN : -errno;
        if (n == 0)
            return -ECONNRESET;
        const uint8_t *nl = memchr(peek, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
        int rc = recv_in(fd, s, s->in_len + take, 0);
        if (rc < 0)
            return rc;
        if (!nl)
            continue;
        if (s->in_len < 4 || memcmp(s->in, "OK ", 3) != 0)
            return -ECONNREFUSED; /* the guest refused port 52: no agent */
        return 0;
    }
}

/* Reads one whole frame into s->in: the header, then exactly its payload. */
static int read_frame(int fd, struct sbx_conn *s, struct agent_frame *f)
{
    int rc = recv_in(fd, s, AGENT_HDR_SIZE, 0);
    if (rc < 0)
        return rc;
    int n = agent_frame_parse(s->in, s->in_len, f);
    if (n == -1)
        return -EPROTO;
    if (f->len > sizeof(s->in) - AGENT_HDR_SIZE)
        return -EMSGSIZE; /* no reply of the handshake is that long */
    rc = recv_in(fd, s, AGENT_HDR_SIZE + f->len, 0);
    if (rc < 0)
        return rc;
    return agent_frame_parse(s->in, s->in_len, f) > 0 ? 0 : -EPROTO;
}

/* An ERROR frame as -errno, its message logged. */
static int agent_error(const struct sbx_conn *s, const struct agent_frame *f)
{
    struct agent_tlv_iter it;
    const uint8_t *v;
    uint16_t tag, vlen;
    uint32_t err = EIO;
    char msg[256] = "";
    agent_tlv_begin(&it, f->payload, f->len);
    while (agent_tlv_next(&it, &tag, &v, &vlen) == 1) {
        if (tag == AGENT_T_ERRNO)
            agent_tlv_u32(v, vlen, &err);
        else if (tag == AGENT_T_MESSAGE && agent_tlv_str(v, vlen, msg, sizeof(msg)) < 0)
            snprintf(msg, sizeof(msg), "(unreadable message)");
    }
    if (err == 0 || err > 4095)
        err = EIO;
    log_debug("sbx backend: port %u: agent: %s (%s)", s->port, msg, strerror((int)err));
    return -(int)err;
}

/* Acts on a complete reply. 1: go on, 0: the tunnel is open, -errno: failed. */
static int advance(struct sbx_backend *b, struct sbx_conn *s, const struct agent_frame *f)
{
    s->in_len = 0;
    switch (s->step) {
    case STEP_LINE:
        s->step = STEP_HELLO;
        return queue_requests(b, s) < 0 ? -EMSGSIZE : 1;
    case STEP_HELLO:
        if (f->type == AGENT_ERROR)
            return agent_error(s, f);
        if (f->type != AGENT_HELLO)
            return -EPROTO;
        s->step = STEP_TUNNEL;
        return 1;
    case STEP_TUNNEL:
        if (f->type == AGENT_ERROR)
            return agent_error(s, f);
        return f->type == AGENT_OK ? 0 : -EPROTO;
    }
    return -EPROTO;
}

static int sbx_finish(void *ctx, int fd, void *state, bool *want_write)
{
    struct sbx_backend *b = ctx;
    struct sbx_conn *s = state;
    for (;;) {
        int rc = flush_out(fd, s);
        if (rc == -EAGAIN) {
            *want_write = true;
            return -EINPROGRESS;
        }
        if (rc < 0)
            return rc == -EPIPE ? -ECONNRESET : rc;
        struct agent_frame f = {0};
        rc = s->step == STEP_LINE ? read_line(fd, s) : read_frame(fd, s, &f);
        if (rc == -EAGAIN) {
            *want_write = false;
            return -EINPROGRESS;
        }
        if (rc < 0)
            return rc;
        rc = advance(b, s, &f);
        if (rc <= 0)
            return rc;
    }
}

static void sbx_release(void *ctx, void *state)
{
    (void)ctx;
    free(state);
}

const struct backend_ops backend_sbx = {
    .name = "sbx",
    .open = sbx_open,
    .close = sbx_close,
    .sandbox_exists = sbx_sandbox_exists,
    .port_public = sbx_port_public,
    .connect = sbx_connect,
    .finish = sbx_finish,
    .release = sbx_release,
};
