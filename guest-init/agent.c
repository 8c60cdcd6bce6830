/* The agent's event loop and its connections: framing, the HELLO handshake and request
 * dispatch. Each connection carries one request at a time (PROTOCOL.md). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent_internal.h"

#define AGENT_MAX_CONNS 1024

uint64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int agent_watch_set(struct agent_loop *loop, struct agent_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->fd < 0 || w->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

static int watch_add(struct agent_loop *loop, struct agent_watch *w, int fd,
		     enum agent_watch_kind kind, void *owner, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	w->fd = fd;
	w->kind = kind;
	w->owner = owner;
	w->events = events;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* Registers an fd the caller has set up in w (fd, kind, owner). */
static int watch_register(struct agent_loop *loop, struct agent_watch *w, uint32_t events)
{
	return watch_add(loop, w, w->fd, w->kind, w->owner, events);
}

void agent_watch_drop(struct agent_loop *loop, struct agent_watch *w)
{
	if (w->fd < 0)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
	w->events = 0;
}

/* ---- sending ---- */

/* Space for new frames once what was sent is compacted away (agent_conn_send does). */
size_t agent_conn_room(const struct agent_conn *c)
{
	return AGENT_WBUF_CAP - (c->wlen - c->woff);
}

static void conn_compact(struct agent_conn *c)
{
	if (c->woff == 0)
		return;
	memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
	c->wlen -= c->woff;
	c->woff = 0;
}

void agent_conn_send(struct agent_conn *c, uint16_t type, uint32_t id, const void *p, size_t n)
{
	conn_compact(c);
	if (c->dead || AGENT_HDR_SIZE + n > agent_conn_room(c))
		return; /* callers check the room first; never overrun */
	agent_frame_header(c->wbuf + c->wlen, type, id, (uint32_t)n);
	if (n)
		memcpy(c->wbuf + c->wlen + AGENT_HDR_SIZE, p, n);
	c->wlen += AGENT_HDR_SIZE + n;
}

void agent_conn_send_msg(struct agent_conn *c)
{
	struct agent_msg *m = c->loop->msg;
	struct agent_frame f;

	if (agent_msg_finish(m) < 0 || agent_frame_parse(m->buf, m->len, &f) < 0) {
		agent_conn_fail(c, EOVERFLOW, "reply too large");
		return;
	}
	agent_conn_send(c, f.type, f.id, f.payload, f.len);
}

void agent_conn_ok(struct agent_conn *c)
{
	agent_conn_send(c, AGENT_OK, 0, NULL, 0);
}

static void conn_verror(struct agent_conn *c, int err, const char *fmt, va_list ap)
{
	struct agent_msg *m = c->loop->msg;
	char text[1024];

	vsnprintf(text, sizeof(text), fmt, ap);
	agent_msg_init(m, AGENT_ERROR, 0);
	agent_msg_u32(m, AGENT_T_ERRNO, (uint32_t)err);
	agent_msg_str(m, AGENT_T_MESSAGE, text);
	agent_conn_send_msg(c);
}

void agent_conn_error(struct agent_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_verror(c, err, fmt, ap);
	va_end(ap);
}

void agent_conn_fail(struct agent_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_verror(c, err, fmt, ap);
	va_end(ap);
	c->closing = 1;
}

/* Writes what the socket takes. Returns bytes written, or -1 after closing c. */
static ssize_t conn_flush(struct agent_conn *c)
{
	ssize_t done = 0;

	while (c->woff < c->wlen) {
		ssize_t n = send(c->w.fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			agent_conn_close(c);
			return -1;
		}
		c->woff += (size_t)n;
		done += n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	return done;
}

/* ---- requests ---- */

static int req_attr(struct agent_req *r, uint16_t tag, const uint8_t *v, uint16_t n)
{
	switch (tag) {
	case AGENT_T_PATH:
		r->has_path = 1;
		return agent_tlv_str(v, n, r->path, sizeof(r->path));
	case AGENT_T_MODE:
		r->has_mode = 1;
		return agent_tlv_u32(v, n, &r->mode);
	case AGENT_T_UID:
		r->has_uid = 1;
		return agent_tlv_u32(v, n, &r->uid);
	case AGENT_T_GID:
		r->has_gid = 1;
		return agent_tlv_u32(v, n, &r->gid);
	case AGENT_T_PORT:
		r->has_port = 1;
		return agent_tlv_u32(v, n, &r->port);
	case AGENT_T_CMD_ID:
		r->has_cmd_id = 1;
		return agent_tlv_u32(v, n, &r->cmd_id);
	case AGENT_T_OFFSET:
		return agent_tlv_u64(v, n, &r->offset);
	case AGENT_T_LENGTH:
		r->has_length = 1;
		return agent_tlv_u64(v, n, &r->length);
	case AGENT_T_TIME_NS:
		return agent_tlv_u64(v, n, &r->time_ns);
	case AGENT_T_PARENTS:
		r->parents = 1;
		return 0;
	case AGENT_T_RECURSIVE:
		r->recursive = 1;
		return 0;
	case AGENT_T_APPEND:
		r->append = 1;
		return 0;
	default:
		return 0; /* unknown attributes are skipped: newer hosts may send more */
	}
}

/* Decodes f's attributes into r. Returns 0, or -1 after failing the connection. */
static int req_parse(struct agent_conn *c, const struct agent_frame *f, struct agent_req *r)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	int rc;

	memset(r, 0, sizeof(*r));
	r->f = f;
	agent_tlv_begin(&it, f->payload, f->len);
	while ((rc = agent_tlv_next(&it, &tag, &v, &n)) == 1) {
		if (req_attr(r, tag, v, n) < 0) {
			agent_conn_fail(c, EPROTO, "bad value for attribute %u", tag);
			return -1;
		}
	}
	if (rc < 0) {
		agent_conn_fail(c, EPROTO, "malformed attributes");
		return -1;
	}
	return 0;
}

static void on_hello(struct agent_conn *c, const struct agent_frame *f)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t version = 0;
	struct agent_msg *m = c->loop->msg;

	if (f->type != AGENT_HELLO) {
		agent_conn_fail(c, EPROTO, "expected HELLO, got frame type %u", f->type);
		return;
	}
	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1)
		if (tag == AGENT_T_VERSION)
			agent_tlv_u32(v, n, &version);
	if (version != AGENT_PROTO_VERSION) {
		agent_conn_fail(c, EPROTONOSUPPORT, "protocol version %u not supported (agent speaks %u)",
				version, AGENT_PROTO_VERSION);
		return;
	}
	agent_msg_init(m, AGENT_HELLO, 0);
	agent_msg_u32(m, AGENT_T_VERSION, AGENT_PROTO_VERSION);
	agent_conn_send_msg(c);
	c->state = AGENT_C_IDLE;
}

static void on_request(struct agent_conn *c, const struct agent_frame *f)
{
	struct agent_req r;

	if (f->type == AGENT_EXEC) {
		agent_exec_start(c, f);
		return;
	}
	if (f->type == AGENT_STDIN || f->type == AGENT_STDIN_EOF || f->type == AGENT_SIGNAL ||
	    f->type == AGENT_RESIZE)
		return; /* stale input for a command that just sent its EXIT */
	if (f->type == AGENT_ENTROPY) {
		agent_sys_entropy(c, f);
		return;
	}
	if (req_parse(c, f, &r) < 0)
		return;
	switch (f->type) {
	case AGENT_ATTACH: agent_exec_attach(c, &r); break;
	case AGENT_FILE_READ: agent_file_read(c, &r); break;
	case AGENT_FILE_WRITE: agent_file_write(c, &r); break;
	case AGENT_STAT: agent_file_stat(c, &r); break;
	case AGENT_LIST: agent_file_list(c, &r); break;
	case AGENT_MKDIR: agent_file_mkdir(c, &r); break;
	case AGENT_REMOVE: agent_file_remove(c, &r); break;
	case AGENT_CHMOD: agent_file_chmod(c, &r); break;
	case AGENT_CHOWN: agent_file_chown(c, &r); break;
	case AGENT_TUNNEL: agent_tunnel_open(c, &r); break;
	case AGENT_PING: agent_conn_ok(c); break;
	case AGENT_INFO: agent_sys_info(c); break;
	case AGENT_CLOCK_SET: agent_sys_clock(c, &r); break;
	case AGENT_SYNC: sync(); agent_conn_ok(c); break;
	case AGENT_FREEZE: agent_sys_freeze(c, &r, 0); break;
	case AGENT_THAW: agent_sys_freeze(c, &r, 1); break;
	case AGENT_SHUTDOWN:
		agent_conn_ok(c);
		c->loop->stop = AGENT_SERVE_POWEROFF;
		break;
	default:
		agent_conn_fail(c, EPROTO, "unknown request type %u", f->type);
	}
}

static void on_frame(struct agent_conn *c, const struct agent_frame *f)
{
	switch (c->state) {
	case AGENT_C_HELLO:
		on_hello(c, f);
		break;
	case AGENT_C_IDLE:
		on_request(c, f);
		break;
	case AGENT_C_EXEC:
		agent_exec_input(c, f);
		break;
	case AGENT_C_FWRITE:
	case AGENT_C_FWRITE_FAILED:
		agent_file_data(c, f);
		break;
	default:
		agent_conn_fail(c, EPROTO, "unexpected frame type %u", f->type);
	}
}

static int conn_takes_frames(const struct agent_conn *c)
{
	if (c->dead || c->closing || agent_conn_room(c) < AGENT_REPLY_ROOM)
		return 0;
	if (c->state == AGENT_C_FREAD || c->state == AGENT_C_LIST || c->state == AGENT_C_TUNNEL ||
	    c->state == AGENT_C_TUNNEL_CONNECTING)
		return 0;
	if (c->state == AGENT_C_EXEC && !agent_exec_accepts_input(c))
		return 0;
	return 1;
}

/* Dispatches the complete frames in rbuf. Returns how many. */
static int conn_parse(struct agent_conn *c)
{
	struct agent_frame f;
	size_t off = 0;
	int count = 0, n;

	while (conn_takes_frames(c)) {
		n = agent_frame_parse(c->rbuf + off, c->rlen - off, &f);
		if (n == -2)
			break;
		if (n < 0) {
			agent_conn_fail(c, f.len > AGENT_MAX_PAYLOAD ? EMSGSIZE : EPROTO,
					"bad frame header (type %u, flags %#x, length %u; max %u)",
					f.type, f.flags, f.len, AGENT_MAX_PAYLOAD);
			c->rlen = 0;
			return count;
		}
		off += (size_t)n;
		count++;
		on_frame(c, &f);
	}
	if (c->dead)
		return count;
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	if (c->read_eof && c->rlen && !c->closing && c->state != AGENT_C_TUNNEL &&
	    c->state != AGENT_C_TUNNEL_CONNECTING && agent_frame_parse(c->rbuf, c->rlen, &f) == -2)
		agent_conn_fail(c, EPROTO, "connection closed inside a frame (%zu bytes left)", c->rlen);
	return count;
}

static int conn_has_work(const struct agent_conn *c)
{
	if (c->closing)
		return 0;
	if (c->state == AGENT_C_FREAD || c->state == AGENT_C_LIST)
		return 1;
	return c->state == AGENT_C_EXEC && agent_exec_pending(c);
}

/* Producers (file read, list, command output) fill the write buffer. */
static void conn_pump(struct agent_conn *c)
{
	if (c->closing)
		return;
	if (c->state == AGENT_C_EXEC)
		agent_exec_pump(c);
	else if (c->state == AGENT_C_FREAD || c->state == AGENT_C_LIST)
		agent_file_pump(c);
}

void agent_conn_update(struct agent_conn *c)
{
	uint32_t ev = 0;

	if (c->dead)
		return;
	if (c->state == AGENT_C_TUNNEL)
		return; /* agent_tunnel.c manages both ends */
	if (c->closing && c->wlen == c->woff) {
		agent_conn_close(c);
		return;
	}
	if (!c->read_eof && conn_takes_frames(c) && c->rlen < AGENT_RBUF_CAP)
		ev |= EPOLLIN;
	if (c->wlen > c->woff || conn_has_work(c))
		ev |= EPOLLOUT;
	if (agent_watch_set(c->loop, &c->w, ev) < 0)
		agent_conn_close(c);
}

/* Parses, pumps and flushes until nothing moves (bounded so one busy connection cannot
 * starve the others; EPOLLOUT brings it back). */
static void conn_progress(struct agent_conn *c)
{
	for (int i = 0; i < 8 && !c->dead && c->state != AGENT_C_TUNNEL; i++) {
		size_t queued = c->wlen - c->woff;
		int frames = conn_parse(c);
		ssize_t sent;

		if (c->dead || c->state == AGENT_C_TUNNEL)
			break;
		conn_pump(c);
		sent = conn_flush(c);
		if (sent < 0)
			return;
		if (!frames && !sent && queued == c->wlen - c->woff)
			break;
	}
	if (c->state == AGENT_C_TUNNEL && !c->dead) {
		agent_tunnel_conn_io(c, 0);
		return;
	}
	agent_conn_update(c);
}

/* Called by producers when they have new data for a connection. */
void agent_conn_kick(struct agent_conn *c)
{
	if (c && !c->dead)
		conn_progress(c);
}

static void conn_read(struct agent_conn *c)
{
	ssize_t n;

	if (c->rlen >= AGENT_RBUF_CAP)
		return;
	n = recv(c->w.fd, c->rbuf + c->rlen, AGENT_RBUF_CAP - c->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->read_eof = 1;
		if (c->state == AGENT_C_EXEC)
			agent_exec_detach(c);
		if (!c->rlen)
			c->closing = 1;
		return;
	}
	c->rlen += (size_t)n;
}

static void conn_io(struct agent_conn *c, uint32_t events)
{
	if (c->state == AGENT_C_TUNNEL) {
		agent_tunnel_conn_io(c, events);
		return;
	}
	if (events & EPOLLERR) {
		agent_conn_close(c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && (c->w.events & EPOLLIN))
		conn_read(c);
	else if (events & EPOLLHUP) {
		agent_conn_close(c); /* peer gone while we are not reading */
		return;
	}
	if (c->read_eof && c->state == AGENT_C_EXEC)
		agent_exec_detach(c);
	conn_progress(c);
	if (!c->dead && c->read_eof && c->state != AGENT_C_TUNNEL && !c->rlen) {
		c->closing = 1;
		agent_conn_update(c);
	}
}

void agent_conn_close(struct agent_conn *c)
{
	if (c->dead)
		return;
	if (c->state == AGENT_C_EXEC)
		agent_exec_detach(c);
	agent_file_cleanup(c);
	agent_tunnel_cleanup(c);
	agent_watch_drop(c->loop, &c->w);
	c->dead = 1;
}

static void conn_new(struct agent_loop *loop, int fd)
{
	struct agent_conn *c = calloc(1, sizeof(*c));
	unsigned count = 0;

	for (struct agent_conn *o = loop->conns; o; o = o->next)
		count++;
	if (!c || count >= AGENT_MAX_CONNS)
		goto fail;
	c->loop = loop;
	c->file_fd = -1;
	c->peer.fd = -1;
	c->rbuf = malloc(AGENT_RBUF_CAP);
	c->wbuf = malloc(AGENT_WBUF_CAP);
	if (!c->rbuf || !c->wbuf)
		goto fail;
	if (watch_add(loop, &c->w, fd, AGENT_W_CONN, c, EPOLLIN) < 0)
		goto fail;
	c->next = loop->conns;
	loop->conns = c;
	return;
fail:
	if (c) {
		free(c->rbuf);
		free(c->wbuf);
	}
	free(c);
	close(fd);
}

static void on_accept(struct agent_loop *loop)
{
	for (;;) {
		int fd = accept4(loop->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(loop, fd);
			continue;
		}
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		/* Out of fds or memory: the pending connection would wake us at once again.
		 * Stop listening until the next tick. */
		agent_watch_set(loop, &loop->listen, 0);
		loop->listen_paused = 1;
		agent_loop_arm_timer(loop, 1);
		return;
	}
}

static void sweep_conns(struct agent_loop *loop)
{
	struct agent_conn **pp = &loop->conns;

	while (*pp) {
		struct agent_conn *c = *pp;

		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		free(c->rbuf);
		free(c->wbuf);
		free(c);
	}
}

/* ---- the loop ---- */

void agent_loop_arm_timer(struct agent_loop *loop, int on)
{
	struct itimerspec its = { 0 };

	if (loop->timer_armed == on)
		return;
	if (on) {
		its.it_interval.tv_nsec = AGENT_TICK_MS * 1000000L;
		its.it_value = its.it_interval;
	}
	timerfd_settime(loop->timer.fd, 0, &its, NULL);
	loop->timer_armed = on;
}

static void on_timer(struct agent_loop *loop)
{
	uint64_t ticks;

	if (read(loop->timer.fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	if (loop->listen_paused) {
		loop->listen_paused = 0;
		agent_watch_set(loop, &loop->listen, EPOLLIN);
	}
	agent_loop_arm_timer(loop, agent_exec_tick(loop) || loop->listen_paused);
}

static void on_signal(struct agent_loop *loop)
{
	struct signalfd_siginfo si;

	while (read(loop->sig.fd, &si, sizeof(si)) == sizeof(si))
		;
	agent_exec_reap(loop);
}

static void dispatch(struct agent_loop *loop, struct agent_watch *w, uint32_t events)
{
	switch (w->kind) {
	case AGENT_W_LISTEN: on_accept(loop); break;
	case AGENT_W_SIGNAL: on_signal(loop); break;
	case AGENT_W_TIMER: on_timer(loop); break;
	case AGENT_W_CONN:
		if (!((struct agent_conn *)w->owner)->dead)
			conn_io(w->owner, events);
		break;
	case AGENT_W_TUNNEL:
		if (!((struct agent_conn *)w->owner)->dead)
			agent_tunnel_peer_io(w->owner, events);
		break;
	default:
		agent_exec_io(loop, w, events);
	}
}

static int loop_setup(struct agent_loop *loop, int listen_fd, const struct agent_config *cfg)
{
	sigset_t mask;
	int fd;

	if (cfg)
		loop->cfg = *cfg;
	if (!loop->cfg.max_output)
		loop->cfg.max_output = 1 << 20;
	if (!loop->cfg.exit_ttl_ms)
		loop->cfg.exit_ttl_ms = 60 * 1000;
	if (!loop->cfg.idle_timeout_ms)
		loop->cfg.idle_timeout_ms = 10 * 60 * 1000;
	if (!loop->cfg.max_commands)
		loop->cfg.max_commands = 256;
	loop->next_cmd_id = 1;
	loop->listen.fd = loop->sig.fd = loop->timer.fd = -1;
	loop->msg = malloc(sizeof(*loop->msg));
	loop->scratch = malloc(AGENT_MAX_PAYLOAD);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!loop->msg || !loop->scratch || loop->epfd < 0)
		return -ENOMEM;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0 || watch_add(loop, &loop->sig, fd, AGENT_W_SIGNAL, loop, EPOLLIN) < 0)
		return fd < 0 ? -errno : -EIO;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || watch_add(loop, &loop->timer, fd, AGENT_W_TIMER, loop, EPOLLIN) < 0)
		return fd < 0 ? -errno : -EIO;
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	loop->listen.fd = listen_fd;
	loop->listen.kind = AGENT_W_LISTEN;
	loop->listen.owner = loop;
	if (watch_register(loop, &loop->listen, EPOLLIN) < 0)
		return -errno;
	/* Not PID 1 (host tests): adopt orphaned grandchildren so they get reaped here too. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	agent_exec_reap(loop); /* children that exited before the signalfd existed */
	return 0;
}

/* Best effort: hands queued replies (the SHUTDOWN OK) to the sockets before returning. */
static void flush_all(struct agent_loop *loop)
{
	uint64_t deadline = agent_now_ms() + 1000;

	for (struct agent_conn *c = loop->conns; c; c = c->next) {
		while (!c->dead && c->wlen > c->woff && agent_now_ms() < deadline) {
			struct pollfd p = { .fd = c->w.fd, .events = POLLOUT };

			poll(&p, 1, 100);
			if (conn_flush(c) < 0)
				break;
		}
	}
}

static void loop_teardown(struct agent_loop *loop)
{
	flush_all(loop);
	agent_exec_kill_all(loop);
	for (struct agent_conn *c = loop->conns; c; c = c->next)
		agent_conn_close(c);
	sweep_conns(loop);
	if (loop->listen.fd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->listen.fd, NULL);
	if (loop->sig.fd >= 0)
		close(loop->sig.fd);
	if (loop->timer.fd >= 0)
		close(loop->timer.fd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop->msg);
	free(loop->scratch);
}

int agent_serve(int listen_fd, const struct agent_config *cfg)
{
	struct agent_loop loop = { .epfd = -1 };
	struct epoll_event evs[64];
	int rc = loop_setup(&loop, listen_fd, cfg);

	while (rc == 0 && !loop.stop) {
		int n = epoll_wait(loop.epfd, evs, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		for (int i = 0; i < n; i++)
			dispatch(&loop, evs[i].data.ptr, evs[i].events);
		sweep_conns(&loop);
		agent_exec_sweep(&loop);
	}
	if (rc == 0)
		rc = loop.stop;
	loop_teardown(&loop);
	return rc;
}

int agent_main_unix(const char *socket_path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(socket_path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(socket_path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = agent_serve(fd, NULL);
	close(fd);
	return rc;
}
