/* libFuzzer: what a VMM bridge and guest agent answer to the "sbx" backend's handshake,
 * fed over a real Unix socket in pieces (size from the first byte), finish() called
 * after each. Aborts when the handshake succeeds on replies a reference reading says
 * are not "OK <n>\n", HELLO, OK, or when it consumed a byte more or less than those:
 * what follows the tunnel's OK must stay in the socket for the service. */
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

#include "../backend.h"
#include "sbx/agent_proto.h"

#define MAX_INPUT 8192 /* fits the socket buffer: writes never block */

static const struct backend_ops *ops;
static void *ctx;
static int listener = -1;
static char dir[] = "/tmp/fuzz-sbx-state.XXXXXX";

static void remove_state(void)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void setup(void)
{
    char p[256];
    if (!mkdtemp(dir))
        abort();
    atexit(remove_state);
    snprintf(p, sizeof(p), "%s/sandboxes", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/sandboxes/1", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/names", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/names/box", dir);
    if (symlink("../sandboxes/1", p) < 0)
        abort();
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sandboxes/1/vsock.sock", dir);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(listener, 4) < 0)
        abort();
    ops = backend_find("sbx");
    ctx = ops ? ops->open(dir) : NULL;
    if (!ctx)
        abort();
}

/* Where a correct handshake over buf ends, or 0 if it cannot succeed. */
static size_t reference_end(const uint8_t *buf, size_t len)
{
    const uint8_t *nl = memchr(buf, '\n', len < 32 ? len : 32);
    if (!nl || nl - buf < 3 || memcmp(buf, "OK ", 3) != 0)
        return 0;
    size_t off = (size_t)(nl - buf) + 1;
    struct agent_frame f;
    int n = agent_frame_parse(buf + off, len - off, &f);
    if (n <= 0 || f.type != AGENT_HELLO || f.len > 1024)
        return 0;
    off += (size_t)n;
    n = agent_frame_parse(buf + off, len - off, &f);
    if (n <= 0 || f.type != AGENT_OK || f.len > 1024)
        return 0;
    return off + (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        setup();
    if (size < 1 || size > MAX_INPUT)
        return 0;
    size_t piece = (size_t)data[0] % 40 + 1;
    const uint8_t *reply = data + 1;
    size_t len = size - 1, off = 0;
    void *state = NULL;
    int fd = ops->connect(ctx, "box", 8080, &state);
    if (fd < 0)
        abort();
    int peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (peer < 0)
        abort();
    bool want_write = false, shut = false;
    int rc;
    for (;;) {
        rc = ops->finish(ctx, fd, state, &want_write);
        if (rc != -EINPROGRESS)
            break;
        if (want_write)
            abort(); /* a few dozen bytes never fill a Unix socket */
        if (off < len) {
            size_t n = len - off < piece ? len - off : piece;
            if (write(peer, reply + off, n) != (ssize_t)n)
                abort();
            off += n;
        } else if (!shut) {
            shutdown(peer, SHUT_WR);
            shut = true;
        } else {
            abort(); /* waits for bytes that can never come */
        }
    }
    size_t end = reference_end(reply, len);
    if ((rc == 0) != (end != 0))
        abort();
    if (rc == 0) {
        /* Everything after the OK, written now if not yet, must still be readable. */
        if (off < len && write(peer, reply + off, len - off) != (ssize_t)(len - off))
            abort();
        static uint8_t left[MAX_INPUT];
        ssize_t n = recv(fd, left, sizeof(left), MSG_DONTWAIT);
        size_t got = n > 0 ? (size_t)n : 0;
        if (got != len - end || memcmp(left, reply + end, got) != 0)
            abort();
    }
    close(peer);
    close(fd);
    ops->release(ctx, state);
    return 0;
}
