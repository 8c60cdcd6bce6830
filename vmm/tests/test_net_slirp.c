/* net_slirp: a real libslirp stack driven by the real event loop (in a thread,
 * as in sbx-vmm); the test plays the guest with hand-built Ethernet frames and
 * the host with a TCP listener on 127.0.0.1. Covers ARP, a TCP SYN to 10.0.2.2
 * reaching the host's loopback only with host-loopback=on (refused by default:
 * an RST or ICMP error comes back, the listener sees nothing), the filter
 * (169.254.169.254, 127.0.0.1 and the LAN ranges dropped), the flow cap, and --net SPEC
 * parsing. No traffic
 * leaves the machine. */
#include "test_virtio_driver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../evloop.h"
#include "../net_slirp.h"

#define MAXF 32

static struct evloop *loop;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t frames[MAXF][2048];
static size_t frame_len[MAXF];
static unsigned nr_frames;
static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static uint8_t slirp_mac[6];

static void to_guest(void *opaque, const uint8_t *frame, size_t len)
{
    (void)opaque;
    pthread_mutex_lock(&lock);
    if (nr_frames < MAXF && len <= sizeof(frames[0])) {
        memcpy(frames[nr_frames], frame, len);
        frame_len[nr_frames++] = len;
    }
    pthread_mutex_unlock(&lock);
}

/* Waits up to ms for a frame; copies and forgets the oldest. */
static size_t next_frame(uint8_t *out, int ms)
{
    long end = td_now_ms() + ms;

    for (;;) {
        pthread_mutex_lock(&lock);
        if (nr_frames) {
            size_t len = frame_len[0];
            memcpy(out, frames[0], len);
            memmove(frames, frames + 1, (nr_frames - 1) * sizeof(frames[0]));
            memmove(frame_len, frame_len + 1, (nr_frames - 1) * sizeof(frame_len[0]));
            nr_frames--;
            pthread_mutex_unlock(&lock);
            return len;
        }
        pthread_mutex_unlock(&lock);
        if (td_now_ms() > end)
            return 0;
        usleep(1000);
    }
}

/* Runs fn(arg) on the loop thread and waits: slirp and the loop's table are
 * the loop thread's alone, as in sbx-vmm. */
struct loop_call {
    void (*fn)(void *);
    void *arg;
    atomic_int done;
};

static void do_call(void *opaque)
{
    struct loop_call *c = opaque;

    c->fn(c->arg);
    atomic_store(&c->done, 1);
}

static void on_loop(void (*fn)(void *), void *arg)
{
    struct loop_call c = { .fn = fn, .arg = arg };

    CHECK(evloop_call(loop, do_call, &c) == 0);
    while (!atomic_load(&c.done))
        usleep(200);
}

struct input {
    struct net_slirp *ns;
    const uint8_t *frame;
    size_t len;
};

static void do_input(void *opaque)
{
    struct input *in = opaque;

    net_slirp_input(in->ns, in->frame, in->len);
}

static void guest_send(struct net_slirp *ns, const uint8_t *frame, size_t len)
{
    struct input in = { ns, frame, len };

    on_loop(do_input, &in);
}

/* ---- frames ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static size_t arp_request(uint8_t *f, uint32_t target)
{
    memset(f, 0, 60);
    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x0806);
    put16(f + 14, 1);       /* Ethernet */
    put16(f + 16, 0x0800);  /* IPv4 */
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, 1);       /* request */
    memcpy(f + 22, guest_mac, 6);
    put32(f + 28, 0x0a00020f);
    put32(f + 38, target);
    return 60;
}

static size_t tcp_seg(uint8_t *f, uint32_t dst, uint16_t dport, uint16_t sport, uint8_t flags,
                      uint32_t seq)
{
    uint8_t *ip = f + 14, *tcp = ip + 20, pseudo[12];

    memset(f, 0, 54);
    memcpy(f, slirp_mac, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x0800);
    ip[0] = 0x45;
    put16(ip + 2, 40);
    put16(ip + 4, 0x1234);
    ip[8] = 64;
    ip[9] = IPPROTO_TCP;
    put32(ip + 12, 0x0a00020f);
    put32(ip + 16, dst);
    put16(ip + 10, fold(sum16(ip, 20, 0)));
    put16(tcp, sport);
    put16(tcp + 2, dport);
    put32(tcp + 4, seq);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    put16(pseudo + 10, 20);
    put16(tcp + 16, fold(sum16(tcp, 20, sum16(pseudo, 12, 0))));
    return 54;
}

static size_t tcp_syn_from(uint8_t *f, uint32_t dst, uint16_t dport, uint16_t sport)
{
    return tcp_seg(f, dst, dport, sport, 0x02, 1000);  /* SYN */
}

static size_t tcp_syn(uint8_t *f, uint32_t dst, uint16_t dport)
{
    return tcp_syn_from(f, dst, dport, 40000);
}

/* ---- cases ---- */

struct stack {
    bool host_loopback;
    unsigned max_flows;
    struct net_slirp *ns;
};

static void do_new(void *opaque)
{
    struct stack *st = opaque;
    struct net_slirp_config cfg = { .enabled = true, .host_loopback = st->host_loopback,
                                    .max_flows = st->max_flows };

    st->ns = net_slirp_new(loop, &cfg, to_guest, NULL);
}

static void do_free(void *opaque)
{
    net_slirp_free(opaque);
}

static struct net_slirp *new_stack_capped(bool host_loopback, unsigned max_flows)
{
    struct stack st = { .host_loopback = host_loopback, .max_flows = max_flows };

    on_loop(do_new, &st);
    CHECK(st.ns);
    return st.ns;
}

static struct net_slirp *new_stack(bool host_loopback)
{
    return new_stack_capped(host_loopback, 0);
}

static void check_arp(struct net_slirp *ns)
{
    uint8_t f[2048];
    size_t len = arp_request(f, 0x0a000202);

    guest_send(ns, f, len);
    len = next_frame(f, 2000);
    CHECK(len >= 42);
    CHECK(f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2);  /* ARP reply */
    CHECK(memcmp(f, guest_mac, 6) == 0);
    CHECK(f[28] == 10 && f[29] == 0 && f[30] == 2 && f[31] == 2);
    memcpy(slirp_mac, f + 22, 6);
}

static int listener(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static bool accepted(int lfd, int ms)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    int fd;

    if (poll(&p, 1, ms) <= 0)
        return false;
    fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* From 10.0.2.2:port to the guest: the TCP flags, or 0x100 for an ICMP error. */
static int reply_to_syn(uint16_t port)
{
    uint8_t f[2048];
    size_t len;

    while ((len = next_frame(f, 3000)) > 0) {
        if (len < 34 || f[12] != 0x08 || f[13] != 0x00)
            continue;  /* ARP and such */
        if (f[14 + 9] == IPPROTO_ICMP)
            return 0x100;
        size_t ihl = (f[14] & 15u) * 4;
        const uint8_t *tcp = f + 14 + ihl;
        if (f[14 + 9] == IPPROTO_TCP && len >= 14 + ihl + 20 &&
            (tcp[0] << 8 | tcp[1]) == port)
            return tcp[13];
    }
    return -1;
}

static void check_host_loopback(void)
{
    uint8_t f[128];
    uint16_t port;
    int lfd = listener(&port);
    struct net_slirp *ns = new_stack(true);

    check_arp(ns);
    guest_send(ns, f, tcp_syn(f, 0x0a000202, port));
    CHECK(accepted(lfd, 3000));
    int flags = reply_to_syn(port);
    CHECK(flags == 0x12);  /* SYN+ACK */
    on_loop(do_free, ns);
    close(lfd);
}

static void check_default_refuses(void)
{
    uint8_t f[128];
    uint16_t port;
    int lfd = listener(&port);
    struct net_slirp *ns = new_stack(false);

    check_arp(ns);
    guest_send(ns, f, tcp_syn(f, 0x0a000202, port));
    int flags = reply_to_syn(port);
    CHECK(flags == 0x100 || (flags >= 0 && (flags & 0x04)));  /* ICMP error or RST */
    CHECK(!accepted(lfd, 200));
    /* Dropped before slirp: nothing comes back at all. */
    guest_send(ns, f, tcp_syn(f, 0x7f000001, port));
    guest_send(ns, f, tcp_syn(f, 0xa9fea9fe, 80));
    CHECK(net_slirp_filtered(ns) == 2);
    CHECK(next_frame(f, 300) == 0);
    CHECK(!accepted(lfd, 100));
    on_loop(do_free, ns);
    close(lfd);
}

/* With a cap of one flow, a second connection's SYN is dropped; once the
 * guest resets the first, a third gets through. */
static void check_flow_cap(void)
{
    uint8_t f[128];
    uint16_t port;
    int lfd = listener(&port);
    struct net_slirp *ns = new_stack_capped(true, 1);

    check_arp(ns);
    guest_send(ns, f, tcp_syn_from(f, 0x0a000202, port, 40001));
    CHECK(accepted(lfd, 3000));
    CHECK(reply_to_syn(port) == 0x12);
    guest_send(ns, f, tcp_syn_from(f, 0x0a000202, port, 40002));
    CHECK(net_slirp_filtered(ns) == 1);
    CHECK(!accepted(lfd, 300));
    guest_send(ns, f, tcp_seg(f, 0x0a000202, port, 40001, 0x04, 1001));  /* RST */
    guest_send(ns, f, tcp_syn_from(f, 0x0a000202, port, 40003));
    CHECK(net_slirp_filtered(ns) == 1);
    CHECK(accepted(lfd, 3000));
    on_loop(do_free, ns);
    close(lfd);
}

static void check_filter(void)
{
    static const struct net_slirp_config deflt = { .enabled = true };
    static const struct net_slirp_config loop_on = { .enabled = true, .host_loopback = true };
    static const struct net_slirp_config lan_on = { .enabled = true, .lan = true };
    static const uint32_t lan[] = { 0x0a000001, 0x0a0003ff, 0xac100001, 0xac1fffff, 0xc0a80101,
                                    0x64400001, 0x647fffff, 0xe0000001, 0xefffffff };
    static const uint32_t not_lan[] = { 0x08080808, 0x0b000001, 0xac0fffff, 0xac200001,
                                        0xc0a90101, 0x643fffff, 0x64800001, 0x0a000202,
                                        0x0a000203, 0xdfffffff };
    uint8_t f[128];
    size_t len = tcp_syn(f, 0x08080808, 53);

    CHECK(net_slirp_frame_allowed(f, len, &deflt));
    tcp_syn(f, 0x7f000001, 80);
    CHECK(!net_slirp_frame_allowed(f, len, &deflt) && net_slirp_frame_allowed(f, len, &loop_on));
    tcp_syn(f, 0xa9fea9fe, 80);
    CHECK(!net_slirp_frame_allowed(f, len, &loop_on) && !net_slirp_frame_allowed(f, len, &lan_on));
    tcp_syn(f, 0x00000001, 80);
    CHECK(!net_slirp_frame_allowed(f, len, &loop_on));
    CHECK(!net_slirp_frame_allowed(f, 20, &loop_on));  /* IPv4 header cut short */
    CHECK(!net_slirp_frame_allowed(f, 10, &loop_on));
    for (size_t i = 0; i < sizeof(lan) / sizeof(lan[0]); i++) {
        tcp_syn(f, lan[i], 80);
        CHECK(!net_slirp_frame_allowed(f, len, &deflt) && !net_slirp_frame_allowed(f, len, &loop_on));
        CHECK(net_slirp_frame_allowed(f, len, &lan_on));
    }
    for (size_t i = 0; i < sizeof(not_lan) / sizeof(not_lan[0]); i++) {
        tcp_syn(f, not_lan[i], 80);
        CHECK(net_slirp_frame_allowed(f, len, &deflt));
    }
    len = arp_request(f, 0x0a000202);
    CHECK(net_slirp_frame_allowed(f, len, &deflt));
}

static void check_parse(void)
{
    struct net_slirp_config c;

    CHECK(net_slirp_parse("user", &c) == 0 && c.enabled && !c.host_loopback && !c.mac_set);
    CHECK(net_slirp_parse("user,host-loopback=on", &c) == 0 && c.enabled && c.host_loopback);
    CHECK(net_slirp_parse("user,host-loopback=off,mac=52:54:00:ab:cd:EF", &c) == 0);
    CHECK(!c.host_loopback && c.mac_set && c.mac[3] == 0xab && c.mac[5] == 0xef && !c.lan);
    CHECK(net_slirp_parse("user,lan=on", &c) == 0 && c.lan && !c.host_loopback);
    CHECK(net_slirp_parse("user,lan=on,lan=off", &c) == 0 && !c.lan);
    CHECK(net_slirp_parse("none", &c) == 0 && !c.enabled);
    static const char *const bad[] = {
        "", "users", "user,", "user,host-loopback", "user,host-loopback=yes", "tap",
        "user,mac=01:00:00:00:00:01", "user,mac=52:54:00:00:00", "user,mac=52:54:00:00:00:001",
        "user,mac=52:54:00:00:00:0g", "user,bogus=1", "user,lan", "user,lan=yes", "user,,host-loopback=on", NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(net_slirp_parse(bad[i], &c) == -EINVAL);
}

int main(void)
{
    pthread_t th;

    check_parse();
    check_filter();
    loop = evloop_new();
    CHECK(loop);
    CHECK(pthread_create(&th, NULL, td_loop_main, loop) == 0);
    check_host_loopback();
    check_default_refuses();
    check_flow_cap();
    evloop_stop(loop, 0);
    pthread_join(th, NULL);
    evloop_free(loop);
    printf("net_slirp: ok\n");
    return 0;
}
