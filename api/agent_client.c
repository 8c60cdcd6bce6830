/* Host side of the guest agent protocol: blocking request/reply over one connection. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_client.h"

/* ---- connecting ---- */

int agent_client_connect_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int agent_client_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the bridge's answer one byte at a time so no guest byte is consumed. */
static int read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		if (line[n] == '\n') {
			line[n] = 0;
			return 0;
		}
		n++;
	}
	return -EPROTO;
}

int agent_client_connect_vsock_uds(const char *path, unsigned port)
{
	char line[64];
	int fd = agent_client_connect_unix(path), rc;

	if (fd < 0)
		return fd;
	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	rc = agent_client_write_all(fd, line, strlen(line));
	if (rc == 0)
		rc = read_line(fd, line, sizeof(line));
	if (rc == 0 && strncmp(line, "OK ", 3) != 0)
		rc = -ECONNREFUSED;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int agent_client_open_vsock(struct agent_client *c, const char *path, int timeout_s)
{
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = agent_client_connect_vsock_uds(path, AGENT_VSOCK_PORT);

	if (fd < 0) {
		memset(c, 0, sizeof(*c));
		c->fd = -1;
		return fd;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return agent_client_init(c, fd);
}

/* ---- frames ---- */

int agent_client_send(struct agent_client *c, uint16_t type, uint32_t id, const void *p, size_t n)
{
	uint8_t hdr[AGENT_HDR_SIZE];
	int rc;

	if (n > AGENT_MAX_PAYLOAD)
		return -EMSGSIZE;
	agent_frame_header(hdr, type, id, (uint32_t)n);
	rc = agent_client_write_all(c->fd, hdr, sizeof(hdr));
	if (rc == 0 && n)
		rc = agent_client_write_all(c->fd, p, n);
	return rc;
}

static int send_msg(struct agent_client *c)
{
	struct agent_msg *m = c->msg;

	if (agent_msg_finish(m) < 0) {
		snprintf(c->error, sizeof(c->error), "request larger than %d bytes", AGENT_MAX_FRAME);
		return -EMSGSIZE;
	}
	return agent_client_write_all(c->fd, m->buf, m->len);
}

int agent_client_has_frame(const struct agent_client *c)
{
	struct agent_frame f;

	return agent_frame_parse(c->rbuf + c->roff, c->rlen - c->roff, &f) != -2;
}

int agent_client_recv(struct agent_client *c, struct agent_frame *f)
{
	for (;;) {
		int n = agent_frame_parse(c->rbuf + c->roff, c->rlen - c->roff, f);
		ssize_t r;

		if (n > 0) {
			c->roff += (size_t)n;
			return 0;
		}
		if (n == -1) {
			snprintf(c->error, sizeof(c->error), "malformed frame from the agent");
			return -EPROTO;
		}
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
		r = recv(c->fd, c->rbuf + c->rlen, AGENT_MAX_FRAME - c->rlen, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			snprintf(c->error, sizeof(c->error), "agent closed the connection");
			return -ECONNRESET;
		}
		c->rlen += (size_t)r;
	}
}

int agent_client_frame_error(struct agent_client *c, const struct agent_frame *f)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t err = EIO;

	c->error[0] = 0;
	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1) {
		if (tag == AGENT_T_ERRNO)
			agent_tlv_u32(v, n, &err);
		else if (tag == AGENT_T_MESSAGE && agent_tlv_str(v, n, c->error, sizeof(c->error)) < 0)
			snprintf(c->error, sizeof(c->error), "(unreadable message)");
	}
	if (err == 0 || err > 4095)
		err = EIO;
	return -(int)err;
}

int agent_client_recv_reply(struct agent_client *c, struct agent_frame *f)
{
	int rc = agent_client_recv(c, f);

	if (rc < 0)
		return rc;
	if (f->type == AGENT_ERROR)
		return agent_client_frame_error(c, f);
	if (f->type != AGENT_OK) {
		snprintf(c->error, sizeof(c->error), "unexpected frame type %u", f->type);
		return -EPROTO;
	}
	return 0;
}

int agent_client_transact(struct agent_client *c, struct agent_frame *f)
{
	int rc = send_msg(c);

	return rc < 0 ? rc : agent_client_recv_reply(c, f);
}

static int simple(struct agent_client *c, uint16_t type, const char *path)
{
	struct agent_frame f;

	agent_msg_init(c->msg, type, 0);
	if (path)
		agent_msg_str(c->msg, AGENT_T_PATH, path);
	return agent_client_transact(c, &f);
}

/* ---- set-up ---- */

int agent_client_init(struct agent_client *c, int fd)
{
	struct agent_frame f;
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->rbuf = malloc(AGENT_MAX_FRAME);
	c->msg = malloc(sizeof(*c->msg));
	if (!c->rbuf || !c->msg) {
		rc = -ENOMEM;
		goto fail;
	}
	agent_msg_init(c->msg, AGENT_HELLO, 0);
	agent_msg_u32(c->msg, AGENT_T_VERSION, AGENT_PROTO_VERSION);
	rc = send_msg(c);
	if (rc == 0)
		rc = agent_client_recv(c, &f);
	if (rc == 0 && f.type == AGENT_ERROR)
		rc = agent_client_frame_error(c, &f);
	else if (rc == 0 && f.type != AGENT_HELLO)
		rc = -EPROTO;
	if (rc == 0)
		return 0;
fail:
	agent_client_close(c);
	return rc;
}

void agent_client_close(struct agent_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->msg);
	c->fd = -1;
	c->rbuf = NULL;
	c->msg = NULL;
}

/* ---- exec ---- */

static void put_strv(struct agent_msg *m, uint16_t tag, const char *const *v)
{
	for (; v && *v; v++)
		agent_msg_str(m, tag, *v);
}

static uint32_t reply_cmd_id(const struct agent_frame *f)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t id = f->id;

	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1)
		if (tag == AGENT_T_CMD_ID)
			agent_tlv_u32(v, n, &id);
	return id;
}

int agent_client_exec(struct agent_client *c, const struct agent_exec_opts *o, uint32_t *cmd_id)
{
	struct agent_msg *m = c->msg;
	struct agent_frame f;
	int rc;

	agent_msg_init(m, AGENT_EXEC, 0);
	put_strv(m, AGENT_T_ARG, o->argv);
	put_strv(m, AGENT_T_ENV, o->envp);
	if (o->cwd)
		agent_msg_str(m, AGENT_T_CWD, o->cwd);
	if (o->user)
		agent_msg_str(m, AGENT_T_USER, o->user);
	if (o->timeout_ms)
		agent_msg_u64(m, AGENT_T_TIMEOUT_MS, o->timeout_ms);
	if (o->idle_timeout_ms)
		agent_msg_u64(m, AGENT_T_IDLE_TIMEOUT_MS, o->idle_timeout_ms);
	if (o->pty)
		agent_msg_flag(m, AGENT_T_PTY);
	if (o->rows)
		agent_msg_u32(m, AGENT_T_ROWS, o->rows);
	if (o->cols)
		agent_msg_u32(m, AGENT_T_COLS, o->cols);
	if (o->kill_on_disconnect)
		agent_msg_flag(m, AGENT_T_KILL_ON_DISCONNECT);
	if (o->no_stdin)
		agent_msg_flag(m, AGENT_T_NO_STDIN);
	if (o->drop_unread)
		agent_msg_flag(m, AGENT_T_DROP_UNREAD);
	rc = agent_client_transact(c, &f);
	if (rc == 0 && cmd_id)
		*cmd_id = reply_cmd_id(&f);
	return rc;
}

int agent_client_attach(struct agent_client *c, uint32_t cmd_id, uint64_t offset, uint64_t *first,
			int *running)
{
	struct agent_tlv_iter it;
	struct agent_frame f;
	const uint8_t *v;
	uint16_t tag, n;
	int rc;

	agent_msg_init(c->msg, AGENT_ATTACH, 0);
	agent_msg_u32(c->msg, AGENT_T_CMD_ID, cmd_id);
	agent_msg_u64(c->msg, AGENT_T_OFFSET, offset);
	rc = agent_client_transact(c, &f);
	if (rc < 0)
		return rc;
	if (running)
		*running = 0;
	agent_tlv_begin(&it, f.payload, f.len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1) {
		if (tag == AGENT_T_OFFSET && first)
			agent_tlv_u64(v, n, first);
		else if (tag == AGENT_T_RUNNING && running)
			*running = 1;
	}
	return 0;
}

static void parse_exit(const struct agent_frame *f, struct agent_exec_event *ev)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t u;

	ev->exit_code = -1;
	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1) {
		if (tag == AGENT_T_EXIT_CODE && agent_tlv_u32(v, n, &u) == 0)
			ev->exit_code = (int)u;
		else if (tag == AGENT_T_SIGNAL && agent_tlv_u32(v, n, &u) == 0)
			ev->signal = (int)u;
		else if (tag == AGENT_T_TIMED_OUT)
			ev->timed_out = 1;
	}
}

int agent_client_exec_next(struct agent_client *c, struct agent_exec_event *ev)
{
	struct agent_frame f;
	int rc = agent_client_recv(c, &f);

	if (rc < 0)
		return rc;
	memset(ev, 0, sizeof(*ev));
	ev->type = f.type;
	switch (f.type) {
	case AGENT_STDOUT:
	case AGENT_STDERR:
		ev->data = f.payload;
		ev->len = f.len;
		return 0;
	case AGENT_EXIT:
		parse_exit(&f, ev);
		return 0;
	case AGENT_ERROR:
		return agent_client_frame_error(c, &f);
	default:
		snprintf(c->error, sizeof(c->error), "unexpected frame type %u during exec", f.type);
		return -EPROTO;
	}
}

int agent_client_exec_stdin(struct agent_client *c, uint32_t cmd_id, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		size_t chunk = n > AGENT_MAX_PAYLOAD ? AGENT_MAX_PAYLOAD : n;
		int rc = agent_client_send(c, AGENT_STDIN, cmd_id, b, chunk);

		if (rc < 0)
			return rc;
		b += chunk;
		n -= chunk;
	}
	return 0;
}

int agent_client_exec_stdin_eof(struct agent_client *c, uint32_t cmd_id)
{
	return agent_client_send(c, AGENT_STDIN_EOF, cmd_id, NULL, 0);
}

int agent_client_exec_signal(struct agent_client *c, uint32_t cmd_id, int sig)
{
	agent_msg_init(c->msg, AGENT_SIGNAL, cmd_id);
	agent_msg_u32(c->msg, AGENT_T_SIGNAL, (uint32_t)sig);
	return send_msg(c);
}

int agent_client_exec_resize(struct agent_client *c, uint32_t cmd_id, unsigned rows, unsigned cols)
{
	agent_msg_init(c->msg, AGENT_RESIZE, cmd_id);
	agent_msg_u32(c->msg, AGENT_T_ROWS, rows);
	agent_msg_u32(c->msg, AGENT_T_COLS, cols);
	return send_msg(c);
}

/* ---- files ---- */

/* An early ERROR while uploading (disk full...): consume it without blocking. */
static int put_early_error(struct agent_client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	struct agent_frame f;

	if (!agent_client_has_frame(c) && poll(&p, 1, 0) <= 0)
		return 0;
	if (agent_client_recv(c, &f) < 0)
		return -ECONNRESET;
	return f.type == AGENT_ERROR ? agent_client_frame_error(c, &f) : -EPROTO;
}

/* Sends src as DATA frames. *agent_failed is set when the agent's ERROR was consumed. */
static int put_stream(struct agent_client *c, agent_source_fn src, void *opaque, int *agent_failed)
{
	uint8_t *buf = c->msg->buf; /* the scratch frame is free while streaming */
	unsigned frames = 0;

	for (;;) {
		ssize_t n = src(opaque, buf + AGENT_HDR_SIZE, AGENT_MAX_PAYLOAD);
		int rc;

		if (n <= 0)
			return (int)n;
		agent_frame_header(buf, AGENT_DATA, 0, (uint32_t)n);
		rc = agent_client_write_all(c->fd, buf, AGENT_HDR_SIZE + (size_t)n);
		if (rc < 0)
			return rc;
		if (++frames % 16 == 0 && (rc = put_early_error(c)) < 0) {
			*agent_failed = rc != -ECONNRESET && rc != -EPROTO;
			return rc;
		}
	}
}

void agent_client_reply_size(const struct agent_frame *f, uint64_t *size)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;

	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1)
		if (tag == AGENT_T_SIZE && size)
			agent_tlv_u64(v, n, size);
}

static int put_common(struct agent_client *c, const char *path, int mode, int append,
		      agent_source_fn src, void *opaque, uint64_t *written)
{
	struct agent_frame f;
	int rc, stream_rc, agent_failed = 0;

	agent_msg_init(c->msg, AGENT_FILE_WRITE, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	if (mode >= 0)
		agent_msg_u32(c->msg, AGENT_T_MODE, (uint32_t)mode);
	if (append)
		agent_msg_flag(c->msg, AGENT_T_APPEND);
	rc = agent_client_transact(c, &f);
	if (rc < 0)
		return rc;
	stream_rc = put_stream(c, src, opaque, &agent_failed);
	/* DATA_END even after a failure: it takes the agent out of the write state. */
	rc = agent_client_send(c, AGENT_DATA_END, 0, NULL, 0);
	if (agent_failed)
		return stream_rc; /* the agent sends nothing more for this request */
	if (rc == 0)
		rc = agent_client_recv_reply(c, &f);
	if (stream_rc < 0)
		return stream_rc;
	if (rc == 0)
		agent_client_reply_size(&f, written);
	return rc;
}

int agent_client_put(struct agent_client *c, const char *path, int mode, agent_source_fn src,
		     void *opaque, uint64_t *written)
{
	return put_common(c, path, mode, 0, src, opaque, written);
}

int agent_client_append(struct agent_client *c, const char *path, agent_source_fn src, void *opaque,
			uint64_t *written)
{
	return put_common(c, path, -1, 1, src, opaque, written);
}

int agent_client_get(struct agent_client *c, const char *path, agent_sink_fn sink, void *opaque,
		     uint64_t *size)
{
	return agent_client_get_range(c, path, 0, UINT64_MAX, sink, opaque, size);
}

int agent_client_get_range(struct agent_client *c, const char *path, uint64_t offset,
			   uint64_t length, agent_sink_fn sink, void *opaque, uint64_t *size)
{
	struct agent_frame f;
	uint64_t total = 0;
	int rc, sink_rc = 0;

	agent_msg_init(c->msg, AGENT_FILE_READ, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	if (offset)
		agent_msg_u64(c->msg, AGENT_T_OFFSET, offset);
	if (length != UINT64_MAX)
		agent_msg_u64(c->msg, AGENT_T_LENGTH, length);
	rc = agent_client_transact(c, &f);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = agent_client_recv(c, &f);
		if (rc < 0)
			return rc;
		if (f.type == AGENT_ERROR)
			return agent_client_frame_error(c, &f);
		if (f.type == AGENT_DATA_END)
			break;
		if (f.type != AGENT_DATA)
			return -EPROTO;
		/* After a sink failure keep draining so the connection stays usable. */
		if (!sink_rc)
			sink_rc = sink(opaque, f.payload, f.len);
		total += f.len;
	}
	if (size)
		*size = total;
	return sink_rc;
}

static void parse_stat(const struct agent_frame *f, struct agent_stat *st)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;

	memset(st, 0, sizeof(*st));
	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1) {
		switch (tag) {
		case AGENT_T_NAME:
			if (agent_tlv_str(v, n, st->name, sizeof(st->name)) < 0)
				st->name[0] = 0;
			break;
		case AGENT_T_MODE: agent_tlv_u32(v, n, &st->mode); break;
		case AGENT_T_UID: agent_tlv_u32(v, n, &st->uid); break;
		case AGENT_T_GID: agent_tlv_u32(v, n, &st->gid); break;
		case AGENT_T_SIZE: agent_tlv_u64(v, n, &st->size); break;
		case AGENT_T_MTIME_NS: agent_tlv_u64(v, n, &st->mtime_ns); break;
		}
	}
}

int agent_client_stat(struct agent_client *c, const char *path, struct agent_stat *st)
{
	struct agent_frame f;
	int rc;

	agent_msg_init(c->msg, AGENT_STAT, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	rc = agent_client_transact(c, &f);
	if (rc == 0)
		parse_stat(&f, st);
	return rc;
}

long agent_client_list(struct agent_client *c, const char *path,
		       int (*fn)(void *opaque, const struct agent_stat *st), void *opaque)
{
	struct agent_stat st;
	struct agent_frame f = { 0 };
	long count = 0;
	int rc, fn_rc = 0;

	agent_msg_init(c->msg, AGENT_LIST, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	rc = send_msg(c);
	while (rc == 0) {
		rc = agent_client_recv(c, &f);
		if (rc < 0)
			return rc;
		if (f.type != AGENT_DIRENT)
			break;
		parse_stat(&f, &st);
		if (!fn_rc && fn)
			fn_rc = fn(opaque, &st);
		count++;
	}
	if (rc < 0)
		return rc;
	if (f.type == AGENT_ERROR)
		return agent_client_frame_error(c, &f);
	if (f.type != AGENT_OK)
		return -EPROTO;
	return fn_rc ? fn_rc : count;
}

int agent_client_mkdir(struct agent_client *c, const char *path, unsigned mode, int parents)
{
	struct agent_frame f;

	agent_msg_init(c->msg, AGENT_MKDIR, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	agent_msg_u32(c->msg, AGENT_T_MODE, mode);
	if (parents)
		agent_msg_flag(c->msg, AGENT_T_PARENTS);
	return agent_client_transact(c, &f);
}

int agent_client_remove(struct agent_client *c, const char *path, int recursive)
{
	struct agent_frame f;

	agent_msg_init(c->msg, AGENT_REMOVE, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	if (recursive)
		agent_msg_flag(c->msg, AGENT_T_RECURSIVE);
	return agent_client_transact(c, &f);
}

int agent_client_chmod(struct agent_client *c, const char *path, unsigned mode)
{
	struct agent_frame f;

	agent_msg_init(c->msg, AGENT_CHMOD, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	agent_msg_u32(c->msg, AGENT_T_MODE, mode);
	return agent_client_transact(c, &f);
}

int agent_client_chown(struct agent_client *c, const char *path, long uid, long gid)
{
	struct agent_frame f;

	agent_msg_init(c->msg, AGENT_CHOWN, 0);
	agent_msg_str(c->msg, AGENT_T_PATH, path);
	if (uid >= 0)
		agent_msg_u32(c->msg, AGENT_T_UID, (uint32_t)uid);
	if (gid >= 0)
		agent_msg_u32(c->msg, AGENT_T_GID, (uint32_t)gid);
	return agent_client_transact(c, &f);
}

/* ---- tunnel ---- */

int agent_client_tunnel(struct agent_client *c, unsigned port)
{
	struct agent_frame f;

	agent_msg_init(c->msg, AGENT_TUNNEL, 0);
	agent_msg_u32(c->msg, AGENT_T_PORT, port);
	return agent_client_transact(c, &f);
}

/* ---- system ---- */

int agent_client_ping(struct agent_client *c)
{
	return simple(c, AGENT_PING, NULL);
}

static void parse_info(const struct agent_frame *f, struct agent_info *info)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;

	memset(info, 0, sizeof(*info));
	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1) {
		switch (tag) {
		case AGENT_T_VERSION: agent_tlv_u32(v, n, &info->version); break;
		case AGENT_T_NCPU: agent_tlv_u32(v, n, &info->ncpu); break;
		case AGENT_T_COMMANDS: agent_tlv_u32(v, n, &info->commands); break;
		case AGENT_T_UPTIME_MS: agent_tlv_u64(v, n, &info->uptime_ms); break;
		case AGENT_T_MEM_TOTAL: agent_tlv_u64(v, n, &info->mem_total); break;
		case AGENT_T_MEM_AVAIL: agent_tlv_u64(v, n, &info->mem_avail); break;
		case AGENT_T_HOSTNAME:
			if (agent_tlv_str(v, n, info->hostname, sizeof(info->hostname)) < 0)
				info->hostname[0] = 0;
			break;
		case AGENT_T_KERNEL:
			if (agent_tlv_str(v, n, info->kernel, sizeof(info->kernel)) < 0)
				info->kernel[0] = 0;
			break;
		}
	}
}

int agent_client_info(struct agent_client *c, struct agent_info *info)
{
	struct agent_frame f;
	int rc;

	agent_msg_init(c->msg, AGENT_INFO, 0);
	rc = agent_client_transact(c, &f);
	if (rc == 0)
		parse_info(&f, info);
	return rc;
}

int agent_client_clock_set(struct agent_client *c, uint64_t realtime_ns)
{
	struct agent_frame f;

	agent_msg_init(c->msg, AGENT_CLOCK_SET, 0);
	agent_msg_u64(c->msg, AGENT_T_TIME_NS, realtime_ns);
	return agent_client_transact(c, &f);
}

int agent_client_entropy(struct agent_client *c, const void *seed, size_t n)
{
	struct agent_frame f;
	int rc = agent_client_send(c, AGENT_ENTROPY, 0, seed, n);

	return rc < 0 ? rc : agent_client_recv_reply(c, &f);
}

int agent_client_sync(struct agent_client *c)
{
	return simple(c, AGENT_SYNC, NULL);
}

int agent_client_freeze(struct agent_client *c, const char *path)
{
	return simple(c, AGENT_FREEZE, path);
}

int agent_client_thaw(struct agent_client *c, const char *path)
{
	return simple(c, AGENT_THAW, path);
}

int agent_client_shutdown(struct agent_client *c)
{
	return simple(c, AGENT_SHUTDOWN, NULL);
}
