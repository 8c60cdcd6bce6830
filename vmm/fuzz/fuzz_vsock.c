/* Fuzzes virtio-vsock with guest-written packets on its tx queue, driving the
 * device as a guest would (virtio-mmio initialisation through the bus, rx
 * buffers posted). A host Unix socket listens on vsock port 1 so REQUESTs can
 * make real connections. The event loop is not run: the fuzzer processes the
 * queues itself (virtio_vsock_process), so runs are deterministic.
 * Input: packets of { u8 flags; u16 len (LE); u8 bytes[len] }; flags bit 0
 * splits the packet over two descriptors, bit 1 processes the queue after it. */
#include "../tests/test_virtio_driver.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_ids.h>

#include "../evloop.h"
#include "../virtio_vsock.h"

#define QSIZE 16u
#define RX_BASE 0x100000ull
#define RX_LEN 0x1000u
#define TX_BASE 0x200000ull
#define TX_MAX 0x3000u

static struct td t;
static struct virtio_vsock *vs;
static struct evloop *loop;
static char dir[] = "/tmp/sbx-fuzz-vsock-XXXXXX";
static char path[108], port1[108];
static int port1_fd = -1;

static void cleanup(void)
{
    if (vs)
        virtio_vsock_destroy(vs);
    evloop_free(loop);
    unlink(port1);
    rmdir(dir);
}

static void setup_once(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    td_init(&t);
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/v", dir);
    snprintf(port1, sizeof(port1), "%s/v_1", dir);
    loop = evloop_new();
    CHECK(loop);
    vs = virtio_vsock_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, loop, VSOCK_GUEST_CID, path);
    CHECK(vs);
    port1_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, port1, strlen(port1));
    CHECK(bind(port1_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(port1_fd, 64) == 0);
    atexit(cleanup);
}

static void process(void)
{
    int fd;

    virtio_vsock_process(vs);
    while ((fd = accept(port1_fd, NULL, NULL)) >= 0)
        close(fd); /* the host side hangs up at once */
    td_recycle_writable(&t, 0, QSIZE, RX_BASE, RX_LEN, RX_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned slot = 0;

    if (!vs)
        setup_once();
    td_wr(&t, VIRTIO_MMIO_STATUS, 0);
    virtio_vsock_process(vs); /* drops the last run's connections */
    memset(t.mem_buf, 0, RX_BASE);
    t.alloc_next = 0x1000;
    if (td_probe(&t, VIRTIO_ID_VSOCK, (1ull << VIRTIO_F_VERSION_1) |
                 (1ull << VIRTIO_RING_F_EVENT_IDX), 3, QSIZE) & VIRTIO_CONFIG_S_NEEDS_RESET)
        return 0;
    td_post_writable(&t, &t.q[0], QSIZE, RX_BASE, RX_LEN);
    for (;;) {
        uint64_t gpa = TX_BASE + (uint64_t)slot * TX_MAX;
        uint8_t flags;
        size_t len;

        if (!td_fuzz_record(&t, &data, &size, gpa, TX_MAX, &flags, &len))
            break;
        td_post_bytes(&t, &t.q[1], slot, QSIZE / 2, gpa, len, flags & 1, 0);
        if (++slot == QSIZE / 2 || (flags & 2)) {
            process();
            slot = 0;
        }
    }
    process();
    return 0;
}
