/* The guest's network basics: loopback, eth0 from sbx.net= (virtio-net with
 * the VMM's user-mode network), and the agent's vsock listener. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "init.h"

int init_loopback_up(void)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = -1;

    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    return rc;
}

int init_vsock_listen(unsigned port)
{
    struct sockaddr_vm addr = {
        .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port,
    };
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* ---- eth0 from sbx.net= ---- */

static int parse_ip(const char *s, size_t len, uint32_t *out)
{
    char buf[INET_ADDRSTRLEN];

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, out) == 1 ? 0 : -1;
}

int init_parse_net(const char *spec, struct init_net *net)
{
    struct init_net n = { 0 };
    const char *slash = strchr(spec, '/'), *comma, *end;
    char *pend;

    if (!slash || parse_ip(spec, (size_t)(slash - spec), &n.addr) < 0)
        return -1;
    long prefix = strtol(slash + 1, &pend, 10);
    if (pend == slash + 1 || *pend != ',' || prefix < 1 || prefix > 30)
        return -1;
    n.netmask = htonl(~0u << (32 - prefix));
    comma = pend + 1;
    end = strchr(comma, ',');
    if (parse_ip(comma, end ? (size_t)(end - comma) : strlen(comma), &n.gateway) < 0)
        return -1;
    if (end && parse_ip(end + 1, strlen(end + 1), &n.dns) < 0)
        return -1;
    if ((n.addr & n.netmask) != (n.gateway & n.netmask) || n.addr == n.gateway)
        return -1;
    *net = n;
    return 0;
}

static void set_sin(struct sockaddr *sa, uint32_t addr)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = addr };

    memcpy(sa, &sin, sizeof(sin));
}

/* virtio-net probes after its module loads, maybe later than init gets here. */
static int wait_for_eth0(int fd, int timeout_ms)
{
    struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
    struct ifreq ifr;

    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        memset(&ifr, 0, sizeof(ifr));
        strcpy(ifr.ifr_name, "eth0");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
            return 0;
        nanosleep(&tick, NULL);
    }
    return -1;
}

static int configure_eth0(int fd, const struct init_net *net, char *err, size_t errlen)
{
    struct ifreq ifr;
    struct rtentry rt;

    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "eth0");
    set_sin(&ifr.ifr_addr, net->addr);
    if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
        goto fail_addr;
    set_sin(&ifr.ifr_netmask, net->netmask);
    if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
        goto fail_addr;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        goto fail_addr;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        goto fail_addr;
    memset(&rt, 0, sizeof(rt));
    set_sin(&rt.rt_dst, 0);
    set_sin(&rt.rt_genmask, 0);
    set_sin(&rt.rt_gateway, net->gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = ifr.ifr_name;
    if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "eth0: default route: %s", strerror(errno));
        return -1;
    }
    return 0;
fail_addr:
    snprintf(err, errlen, "eth0: address: %s", strerror(errno));
    return -1;
}

static int write_resolv_conf(uint32_t dns, char *err, size_t errlen)
{
    char line[64], ip[INET_ADDRSTRLEN];
    int fd, len;

    inet_ntop(AF_INET, &dns, ip, sizeof(ip));
    len = snprintf(line, sizeof(line), "nameserver %s\n", ip);
    mkdir("/etc", 0755);
    fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP) {  /* a symlink (systemd-resolved's): ours instead */
        unlink("/etc/resolv.conf");
        fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0 || write(fd, line, (size_t)len) != len) {
        snprintf(err, errlen, "/etc/resolv.conf: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int init_net_up(const struct init_net *net, int timeout_ms, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = -1;

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (wait_for_eth0(fd, timeout_ms) < 0)
        snprintf(err, errlen, "no eth0 (is the VMM started with --net?)");
    else
        rc = configure_eth0(fd, net, err, errlen);
    close(fd);
    if (rc == 0 && net->dns)
        rc = write_resolv_conf(net->dns, err, errlen);
    return rc;
}
