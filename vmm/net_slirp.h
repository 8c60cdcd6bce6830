/* User-mode networking for a guest's virtio-net (--net user): libslirp, the
 * TCP/IP stack QEMU uses, run inside sbx-vmm. Guest TCP/UDP/ICMP-echo flows
 * become ordinary sockets of the VMM process, so no root, tap device or host
 * network set-up is needed, and each VMM has its own stack: sandboxes cannot
 * reach each other through it.
 *
 * The guest network (static: the guest configures itself from the kernel
 * command line, sbx.net=NET_SLIRP_GUEST_CMDLINE; slirp's DHCP answers too):
 *   10.0.2.15/24  the guest
 *   10.0.2.2      gateway; also the host's loopback, only with host-loopback=on
 *   10.0.2.3      DNS, forwarded to the first nameserver of the host's
 *                 /etc/resolv.conf
 * IPv4 only.
 *
 * What the guest can reach, untrusted code in mind: anything the VMM's user
 * could connect to, except
 *   - the host's loopback (127.0.0.0/8, and 10.0.2.2 and every 10.0.2.x but the
 *     DNS address, which slirp maps to it and then refuses: the guest gets a
 *     prompt error), unless host-loopback=on: services that bind 127.0.0.1
 *     (sbx-api, databases, dev servers) trust local callers;
 *   - link-local 169.254.0.0/16: cloud metadata services (169.254.169.254) hand
 *     out the host's credentials;
 *   - 0.0.0.0/8;
 *   - unless lan=on, the private networks the host may sit in, and multicast:
 *     10.0.0.0/8 (but slirp's own 10.0.2.0/24), 172.16.0.0/12, 192.168.0.0/16,
 *     100.64.0.0/10 (carrier-grade NAT, Tailscale), 224.0.0.0/4: other
 *     machines of the host's LAN, and the host itself at such an address.
 * (All but slirp's own 10.0.2.x are dropped here before slirp sees the frame.)
 * Still reachable: the host's services bound to a public address of its own,
 * and the internet. Run sbx-vmm in a network namespace or behind a firewall
 * rule for the VMM's user where that matters. A guest has at most
 * NET_SLIRP_MAX_FLOWS flows at a time.
 *
 * Threads: everything runs on the event loop thread. */
#ifndef SBX_VMM_NET_SLIRP_H
#define SBX_VMM_NET_SLIRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evloop.h"

#define NET_SLIRP_GUEST_CMDLINE "10.0.2.15/24,10.0.2.2,10.0.2.3"

struct net_slirp_config {
    bool enabled;        /* --net user given */
    bool host_loopback;  /* host-loopback=on */
    bool lan;            /* lan=on: private and multicast destinations allowed */
    bool mac_set;        /* mac=... given; otherwise derived from the pid */
    uint8_t mac[6];
    unsigned max_flows;  /* 0: NET_SLIRP_MAX_FLOWS (tests set it lower) */
};

/* Most host sockets (TCP connections, UDP and ping flows) one guest may have
 * at a time, and at most half the VMM's file descriptor limit: past that, new
 * TCP connections (SYNs) and UDP datagrams are dropped, so that a guest cannot
 * take the descriptors its VMM needs (the agent's vsock connections). */
#define NET_SLIRP_MAX_FLOWS 512u

/* Parses --net's SPEC: "user" followed by any of ",host-loopback=on|off",
 * ",lan=on|off" and ",mac=XX:XX:XX:XX:XX:XX" (unicast), or "none". 0 or -EINVAL. */
int net_slirp_parse(const char *spec, struct net_slirp_config *cfg);

/* Called with each Ethernet frame for the guest. */
typedef void (*net_slirp_to_guest_fn)(void *opaque, const uint8_t *frame, size_t len);

struct net_slirp;

/* A stack driven by loop (its sockets and a timerfd are watched there).
 * Set-up time. Returns it, or NULL with errno set. */
struct net_slirp *net_slirp_new(struct evloop *loop, const struct net_slirp_config *cfg,
                                net_slirp_to_guest_fn to_guest, void *opaque);
/* Closes every flow. Loop thread, or once the loop is stopped. */
void net_slirp_free(struct net_slirp *ns);

/* One Ethernet frame from the guest. Loop thread only. */
void net_slirp_input(struct net_slirp *ns, const uint8_t *frame, size_t len);

/* The filter above: false if the frame must not reach slirp. */
bool net_slirp_frame_allowed(const uint8_t *frame, size_t len,
                             const struct net_slirp_config *cfg);

/* Frames dropped by the filter or the flow cap so far. */
uint64_t net_slirp_filtered(const struct net_slirp *ns);

#endif
