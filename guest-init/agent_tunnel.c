/* Tunnels: after TUNNEL is answered OK the connection is a raw byte pipe to a TCP port
 * on the guest's loopback. rbuf carries host->guest bytes, wbuf guest->host; half-closes
 * are passed on; the connection ends once both directions have. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_internal.h"

/* Registers w for ev, or takes it out of epoll when ev is 0 (EPOLLHUP is reported even
 * for an empty mask, which would spin the loop). */
static int tun_want(struct agent_loop *loop, struct agent_watch *w, int *registered, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = w };
	int op;

	if (w->fd < 0)
		return 0;
	if (!ev) {
		if (*registered)
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		*registered = 0;
		w->events = 0;
		return 0;
	}
	if (*registered && w->events == ev)
		return 0;
	op = *registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(loop->epfd, op, w->fd, &e) < 0)
		return -errno;
	*registered = 1;
	w->events = ev;
	return 0;
}

/* The connect finished well: answer OK; from now on the connection is raw. */
static void tunnel_established(struct agent_conn *c)
{
	agent_conn_ok(c);
	c->state = AGENT_C_TUNNEL;
	c->conn_reg = 1;
	c->peer_eof = c->peer_wr_shut = c->conn_wr_shut = 0;
}

static void tunnel_failed(struct agent_conn *c, int err)
{
	agent_conn_error(c, err, "tunnel: connect: %s", strerror(err));
	agent_tunnel_cleanup(c);
	c->state = AGENT_C_IDLE;
}

void agent_tunnel_open(struct agent_conn *c, const struct agent_req *r)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd;

	if (!r->has_port || r->port == 0 || r->port > 65535) {
		agent_conn_error(c, EINVAL, "tunnel: PORT missing or out of range");
		return;
	}
	sa.sin_port = htons((uint16_t)r->port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		agent_conn_error(c, errno, "tunnel: socket: %s", strerror(errno));
		return;
	}
	c->peer.fd = fd;
	c->peer.kind = AGENT_W_TUNNEL;
	c->peer.owner = c;
	c->peer.events = 0;
	c->peer_reg = 0;
	/* Non-blocking: a listener with a full backlog must not stall the agent. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		tunnel_established(c);
		return;
	}
	if (errno != EINPROGRESS) {
		tunnel_failed(c, errno);
		return;
	}
	c->state = AGENT_C_TUNNEL_CONNECTING;
	if (tun_want(c->loop, &c->peer, &c->peer_reg, EPOLLOUT) < 0)
		tunnel_failed(c, EIO);
}

/* The connect completed, one way or the other. */
static void tunnel_connected(struct agent_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->peer.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		tunnel_failed(c, err);
		agent_conn_kick(c);
		return;
	}
	tun_want(c->loop, &c->peer, &c->peer_reg, 0);
	tunnel_established(c);
	agent_tunnel_conn_io(c, 0);
}

void agent_tunnel_cleanup(struct agent_conn *c)
{
	if (c->peer.fd < 0)
		return;
	if (c->peer_reg)
		epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->peer.fd, NULL);
	close(c->peer.fd);
	c->peer.fd = -1;
	c->peer_reg = 0;
}

/* Moves bytes from fd into buf; sets *eof at end of stream. Returns -1 on error. */
static int tun_read(int fd, uint8_t *buf, size_t *len, size_t cap, int *eof)
{
	ssize_t n;

	if (*eof || *len >= cap)
		return 0;
	n = recv(fd, buf + *len, cap - *len, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		*eof = 1;
	*len += (size_t)n;
	return 0;
}

/* Sends buf[*off, *len) to fd. Returns -1 on error. */
static int tun_write(int fd, uint8_t *buf, size_t *off, size_t *len)
{
	while (*off < *len) {
		ssize_t n = send(fd, buf + *off, *len - *off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		*off += (size_t)n;
	}
	*off = *len = 0;
	return 0;
}

static void tun_run(struct agent_conn *c)
{
	size_t roff = 0;

	if (tun_read(c->w.fd, c->rbuf, &c->rlen, AGENT_RBUF_CAP, &c->read_eof) < 0 ||
	    tun_read(c->peer.fd, c->wbuf, &c->wlen, AGENT_WBUF_CAP, &c->peer_eof) < 0)
		goto fail;
	if (tun_write(c->peer.fd, c->rbuf, &roff, &c->rlen) < 0 ||
	    tun_write(c->w.fd, c->wbuf, &c->woff, &c->wlen) < 0)
		goto fail;
	if (roff) {
		memmove(c->rbuf, c->rbuf + roff, c->rlen - roff);
		c->rlen -= roff;
	}
	if (c->read_eof && !c->rlen && !c->peer_wr_shut) {
		shutdown(c->peer.fd, SHUT_WR);
		c->peer_wr_shut = 1;
	}
	if (c->peer_eof && c->wlen == c->woff && !c->conn_wr_shut) {
		shutdown(c->w.fd, SHUT_WR);
		c->conn_wr_shut = 1;
	}
	if (c->peer_wr_shut && c->conn_wr_shut)
		goto fail; /* both directions done */
	if (tun_want(c->loop, &c->w, &c->conn_reg,
		     (!c->read_eof && c->rlen < AGENT_RBUF_CAP ? EPOLLIN : 0) |
		     (c->wlen > c->woff ? EPOLLOUT : 0)) < 0 ||
	    tun_want(c->loop, &c->peer, &c->peer_reg,
		     (!c->peer_eof && c->wlen < AGENT_WBUF_CAP ? EPOLLIN : 0) |
		     (c->rlen ? EPOLLOUT : 0)) < 0)
		goto fail;
	return;
fail:
	agent_conn_close(c);
}

void agent_tunnel_conn_io(struct agent_conn *c, uint32_t events)
{
	(void)events;
	if (c->woff) { /* make room behind what was sent */
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	tun_run(c);
}

void agent_tunnel_peer_io(struct agent_conn *c, uint32_t events)
{
	if (c->state == AGENT_C_TUNNEL_CONNECTING) {
		tunnel_connected(c);
		return;
	}
	agent_tunnel_conn_io(c, events);
}
