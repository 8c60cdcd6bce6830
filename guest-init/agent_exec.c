/* Commands once started (agent_spawn.c starts them): the bounded output history that
 * feeds attached clients and re-attach, stdin, signals, timeouts, reaping and expiry. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_internal.h"
#include "agent_spawn.h"

#define EXEC_READ_SIZE  (32 * 1024)
#define EXEC_GRACE_MS   500 /* after exit, how long to wait for output pipes held by orphans */

struct out_chunk {
	struct out_chunk *next;
	uint64_t seq;  /* offset of data[0] in the command's combined output */
	uint32_t len;
	uint16_t type; /* AGENT_STDOUT or AGENT_STDERR */
	uint8_t data[];
};

struct agent_cmd {
	struct agent_cmd *next;
	struct agent_loop *loop;
	uint32_t id;
	pid_t pid;
	int running, dead, status, timed_out, pty, kill_on_disconnect;
	int drop_unread;	/* DROP_UNREAD: no pause without a client, oldest output dropped */
	int pty_eof; /* master saw EIO while the command runs: out of epoll, still open */
	uint64_t idle_timeout_ms, deadline_ms, since_ms, grace_until_ms;
	struct agent_watch out, err, in;
	uint8_t *stdin_buf;
	size_t stdin_len;
	int stdin_eof;
	struct out_chunk *head, *tail;
	uint64_t total, buffered, cursor;
	struct agent_conn *conn;
};

/* ---- the command table ---- */

static struct agent_cmd *cmd_find(struct agent_loop *loop, uint32_t id)
{
	for (struct agent_cmd *c = loop->cmds; c; c = c->next)
		if (c->id == id && !c->dead)
			return c;
	return NULL;
}

static int cmd_done(const struct agent_cmd *cmd)
{
	return !cmd->running && cmd->out.fd < 0 && cmd->err.fd < 0;
}

static void cmd_kill(struct agent_cmd *cmd)
{
	if (cmd->running)
		kill(-cmd->pid, SIGKILL);
}

/* Makes room under max_commands by expiring the oldest finished, unattached command. */
static int cmd_make_room(struct agent_loop *loop)
{
	struct agent_cmd *victim = NULL;

	if (loop->ncmds < loop->cfg.max_commands)
		return 0;
	for (struct agent_cmd *c = loop->cmds; c; c = c->next)
		if (!c->dead && cmd_done(c) && !c->conn && (!victim || c->since_ms < victim->since_ms))
			victim = c;
	if (!victim)
		return -EAGAIN;
	victim->dead = 1;
	loop->ncmds--;
	return 0;
}

static void watch_init(struct agent_watch *w, enum agent_watch_kind kind, struct agent_cmd *cmd)
{
	w->fd = -1;
	w->kind = kind;
	w->owner = cmd;
	w->events = 0;
}

static int watch_start(struct agent_loop *loop, struct agent_watch *w)
{
	struct epoll_event ev = { .events = 0, .data.ptr = w };

	if (w->fd < 0)
		return 0;
	fcntl(w->fd, F_SETFL, fcntl(w->fd, F_GETFL) | O_NONBLOCK);
	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

/* Whether the command's output is read on: unless max_output bytes wait for its client,
 * or, for a DROP_UNREAD command, always while no client is attached. */
static bool cmd_reading(const struct agent_cmd *cmd)
{
	return (cmd->drop_unread && !cmd->conn) ||
	       cmd->total - cmd->cursor < cmd->loop->cfg.max_output;
}

static void cmd_update(struct agent_cmd *cmd)
{
	struct agent_loop *loop = cmd->loop;
	uint32_t rd = cmd_reading(cmd) ? EPOLLIN : 0;
	uint32_t wr = cmd->stdin_len ? EPOLLOUT : 0;

	if (!cmd->pty_eof)
		agent_watch_set(loop, &cmd->out, rd | (cmd->pty ? wr : 0));
	agent_watch_set(loop, &cmd->err, rd);
	agent_watch_set(loop, &cmd->in, wr);
}

static void cmd_attach(struct agent_cmd *cmd, struct agent_conn *c)
{
	cmd->conn = c;
	c->cmd = cmd;
	c->state = AGENT_C_EXEC;
}

static void reply_started(struct agent_conn *c, struct agent_cmd *cmd)
{
	struct agent_msg *m = c->loop->msg;

	agent_msg_init(m, AGENT_OK, cmd->id);
	agent_msg_u32(m, AGENT_T_CMD_ID, cmd->id);
	agent_conn_send_msg(c);
}

static struct agent_cmd *cmd_new(struct agent_loop *loop, const struct agent_exec_req *q)
{
	struct agent_cmd *cmd = calloc(1, sizeof(*cmd));

	if (!cmd)
		return NULL;
	cmd->loop = loop;
	cmd->pty = q->pty;
	cmd->kill_on_disconnect = q->kill_on_disconnect;
	cmd->drop_unread = q->drop_unread;
	cmd->idle_timeout_ms = q->idle_timeout_ms ? q->idle_timeout_ms : loop->cfg.idle_timeout_ms;
	if (q->timeout_ms)
		cmd->deadline_ms = agent_now_ms() + q->timeout_ms;
	watch_init(&cmd->out, AGENT_W_CMD_OUT, cmd);
	watch_init(&cmd->err, AGENT_W_CMD_ERR, cmd);
	watch_init(&cmd->in, AGENT_W_CMD_IN, cmd);
	return cmd;
}

static void cmd_free(struct agent_cmd *cmd)
{
	struct out_chunk *ch = cmd->head;

	while (ch) {
		struct out_chunk *next = ch->next;

		free(ch);
		ch = next;
	}
	agent_watch_drop(cmd->loop, &cmd->out);
	agent_watch_drop(cmd->loop, &cmd->err);
	agent_watch_drop(cmd->loop, &cmd->in);
	free(cmd->stdin_buf);
	free(cmd);
}

/* Checks the request, then spawns. Returns 0, or -1 after an error reply. */
static int exec_launch(struct agent_conn *c, struct agent_exec_req *q, struct agent_cmd **out)
{
	struct agent_loop *loop = c->loop;
	struct agent_cmd *cmd;
	struct agent_spawned sp;
	struct agent_user u;
	char envstore[2 * AGENT_MAX_PATH + 1024];
	int rc;

	if (q->argc == 0) {
		agent_conn_error(c, EINVAL, "exec: no ARG given");
		return -1;
	}
	if (agent_user_resolve(q->user, &u) < 0) {
		agent_conn_error(c, ENOENT, "exec: unknown user '%s'", q->user);
		return -1;
	}
	if (cmd_make_room(loop) < 0) {
		agent_conn_error(c, EAGAIN, "exec: %u commands tracked already", loop->cfg.max_commands);
		return -1;
	}
	agent_env_defaults(q, &u, envstore, sizeof(envstore));
	cmd = cmd_new(loop, q);
	if (!cmd) {
		agent_conn_error(c, ENOMEM, "exec: out of memory");
		return -1;
	}
	rc = agent_spawn(q, &u, &sp);
	if (rc == 0) {
		cmd->pid = sp.pid;
		cmd->running = 1;
		cmd->out.fd = sp.out;
		cmd->err.fd = sp.err;
		cmd->in.fd = sp.in;
	}
	if (rc == 0)
		rc = watch_start(loop, &cmd->out) ?: watch_start(loop, &cmd->err) ?:
		     watch_start(loop, &cmd->in);
	if (rc < 0) {
		if (cmd->running) {
			cmd_kill(cmd);
			waitpid(cmd->pid, NULL, 0);
		}
		cmd_free(cmd);
		agent_conn_error(c, -rc, "exec %s: %s", q->argv[0], strerror(-rc));
		return -1;
	}
	*out = cmd;
	return 0;
}

void agent_exec_start(struct agent_conn *c, const struct agent_frame *f)
{
	struct agent_loop *loop = c->loop;
	struct agent_cmd *cmd;
	struct agent_exec_req q;

	if (agent_exec_req_parse(f, &q) < 0) {
		agent_exec_req_free(&q);
		agent_conn_fail(c, EPROTO, "exec: malformed attributes");
		return;
	}
	if (exec_launch(c, &q, &cmd) < 0)
		goto out;
	cmd->id = loop->next_cmd_id++;
	if (loop->next_cmd_id == 0)
		loop->next_cmd_id = 1;
	cmd->next = loop->cmds;
	loop->cmds = cmd;
	loop->ncmds++;
	reply_started(c, cmd);
	cmd_attach(cmd, c);
	cmd_update(cmd);
	agent_loop_arm_timer(loop, 1);
out:
	agent_exec_req_free(&q);
}

void agent_exec_attach(struct agent_conn *c, const struct agent_req *r)
{
	struct agent_cmd *cmd = r->has_cmd_id ? cmd_find(c->loop, r->cmd_id) : NULL;
	struct agent_msg *m = c->loop->msg;
	uint64_t first;

	if (!cmd) {
		agent_conn_error(c, ESRCH, "attach: no command %u", r->cmd_id);
		return;
	}
	if (cmd->conn) {
		agent_conn_error(c, EBUSY, "attach: command %u has a client attached", cmd->id);
		return;
	}
	first = cmd->head ? cmd->head->seq : cmd->total;
	cmd->cursor = r->offset < first ? first : r->offset > cmd->total ? cmd->total : r->offset;
	agent_msg_init(m, AGENT_OK, cmd->id);
	agent_msg_u32(m, AGENT_T_CMD_ID, cmd->id);
	agent_msg_u64(m, AGENT_T_OFFSET, cmd->cursor);
	if (cmd->running)
		agent_msg_flag(m, AGENT_T_RUNNING);
	agent_conn_send_msg(c);
	cmd_attach(cmd, c);
	cmd_update(cmd);
}

void agent_exec_detach(struct agent_conn *c)
{
	struct agent_cmd *cmd = c->cmd;

	if (!cmd)
		return;
	cmd->conn = NULL;
	c->cmd = NULL;
	if (c->state == AGENT_C_EXEC)
		c->state = AGENT_C_IDLE;
	cmd->since_ms = agent_now_ms();
	if (cmd->kill_on_disconnect)
		cmd_kill(cmd);
	else if (cmd->drop_unread)
		cmd_update(cmd);	/* reading resumes, paused or not */
}

/* ---- stdin ---- */

static void stdin_close(struct agent_cmd *cmd)
{
	free(cmd->stdin_buf);
	cmd->stdin_buf = NULL;
	cmd->stdin_len = 0;
	if (cmd->pty)
		return;
	agent_watch_drop(cmd->loop, &cmd->in);
}

/* Writes pending stdin; at EOF closes the pipe (or sends VEOF on a PTY). */
static void stdin_flush(struct agent_cmd *cmd)
{
	int fd = cmd->pty ? cmd->out.fd : cmd->in.fd;

	while (fd >= 0 && cmd->stdin_len) {
		ssize_t n = write(fd, cmd->stdin_buf, cmd->stdin_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			stdin_close(cmd); /* the command closed its stdin: drop the rest */
			return;
		}
		memmove(cmd->stdin_buf, cmd->stdin_buf + n, cmd->stdin_len - (size_t)n);
		cmd->stdin_len -= (size_t)n;
	}
	if (cmd->stdin_eof == 1 && !cmd->stdin_len) {
		cmd->stdin_eof = 2;
		if (cmd->pty && fd >= 0 && write(fd, "\x04", 1) < 0)
			return;
		stdin_close(cmd);
	}
}

static void stdin_queue(struct agent_cmd *cmd, const uint8_t *p, size_t n)
{
	int fd = cmd->pty ? cmd->out.fd : cmd->in.fd;
	uint8_t *buf;

	if (fd < 0 || cmd->stdin_eof || !n)
		return;
	buf = realloc(cmd->stdin_buf, cmd->stdin_len + n);
	if (!buf)
		return;
	memcpy(buf + cmd->stdin_len, p, n);
	cmd->stdin_buf = buf;
	cmd->stdin_len += n;
	stdin_flush(cmd);
}

int agent_exec_accepts_input(const struct agent_conn *c)
{
	return !c->cmd || c->cmd->stdin_len == 0;
}

static void exec_signal(struct agent_conn *c, const struct agent_frame *f)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t sig = 0, rows = 0, cols = 0;
	struct winsize ws;

	agent_tlv_begin(&it, f->payload, f->len);
	while (agent_tlv_next(&it, &tag, &v, &n) == 1) {
		if (tag == AGENT_T_SIGNAL)
			agent_tlv_u32(v, n, &sig);
		else if (tag == AGENT_T_ROWS)
			agent_tlv_u32(v, n, &rows);
		else if (tag == AGENT_T_COLS)
			agent_tlv_u32(v, n, &cols);
	}
	if (f->type == AGENT_SIGNAL) {
		if (sig >= 1 && sig < (uint32_t)NSIG && c->cmd->running)
			kill(-c->cmd->pid, (int)sig);
		return;
	}
	if (!c->cmd->pty || c->cmd->out.fd < 0 || !rows || !cols || rows > 0xffff || cols > 0xffff)
		return;
	memset(&ws, 0, sizeof(ws));
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	ioctl(c->cmd->out.fd, TIOCSWINSZ, &ws);
}

void agent_exec_input(struct agent_conn *c, const struct agent_frame *f)
{
	struct agent_cmd *cmd = c->cmd;

	if (!cmd) {
		agent_conn_fail(c, EPROTO, "exec: no command attached");
		return;
	}
	switch (f->type) {
	case AGENT_STDIN:
		stdin_queue(cmd, f->payload, f->len);
		break;
	case AGENT_STDIN_EOF:
		if (!cmd->stdin_eof)
			cmd->stdin_eof = 1;
		stdin_flush(cmd);
		break;
	case AGENT_SIGNAL:
	case AGENT_RESIZE:
		exec_signal(c, f);
		break;
	default:
		agent_conn_fail(c, EPROTO, "exec: unexpected frame type %u", f->type);
		return;
	}
	cmd_update(cmd);
}

/* ---- output ---- */

/* Drops the oldest output beyond max_output: what its client has had, or, for a
 * detached DROP_UNREAD command, unsent output too (the cursor moves past it; a
 * re-attach is told where the kept output starts). */
static void out_trim(struct agent_cmd *cmd)
{
	bool drop_unsent = cmd->drop_unread && !cmd->conn;

	while (cmd->head && cmd->buffered > cmd->loop->cfg.max_output &&
	       (drop_unsent || cmd->head->seq + cmd->head->len <= cmd->cursor)) {
		struct out_chunk *ch = cmd->head;

		cmd->head = ch->next;
		if (!cmd->head)
			cmd->tail = NULL;
		cmd->buffered -= ch->len;
		free(ch);
	}
	if (drop_unsent && cmd->cursor < (cmd->head ? cmd->head->seq : cmd->total))
		cmd->cursor = cmd->head ? cmd->head->seq : cmd->total;
}

static void out_append(struct agent_cmd *cmd, uint16_t type, const uint8_t *p, size_t n)
{
	struct out_chunk *ch = malloc(sizeof(*ch) + n);

	if (!ch)
		return;
	ch->next = NULL;
	ch->seq = cmd->total;
	ch->len = (uint32_t)n;
	ch->type = type;
	memcpy(ch->data, p, n);
	if (cmd->tail)
		cmd->tail->next = ch;
	else
		cmd->head = ch;
	cmd->tail = ch;
	cmd->total += n;
	cmd->buffered += n;
	out_trim(cmd);
}

static void out_read(struct agent_cmd *cmd, struct agent_watch *w)
{
	uint16_t type = w->kind == AGENT_W_CMD_ERR ? AGENT_STDERR : AGENT_STDOUT;
	ssize_t n = read(w->fd, cmd->loop->scratch, EXEC_READ_SIZE);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		out_append(cmd, type, cmd->loop->scratch, (size_t)n);
		return;
	}
	/* EOF, or EIO once a PTY's last slave closed */
	if (cmd->pty) {
		free(cmd->stdin_buf);
		cmd->stdin_buf = NULL;
		cmd->stdin_len = 0;
	}
	if (cmd->pty && cmd->running) {
		/* Closing the master now would hang up the terminal and SIGHUP the command
		 * while it exits; close it once reaped. */
		epoll_ctl(cmd->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		w->events = 0;
		cmd->pty_eof = 1;
		return;
	}
	agent_watch_drop(cmd->loop, w);
}


static void send_exit(struct agent_conn *c, struct agent_cmd *cmd)
{
	struct agent_msg *m = c->loop->msg;

	agent_msg_init(m, AGENT_EXIT, cmd->id);
	agent_msg_u32(m, AGENT_T_CMD_ID, cmd->id);
	if (WIFSIGNALED(cmd->status))
		agent_msg_u32(m, AGENT_T_SIGNAL, (uint32_t)WTERMSIG(cmd->status));
	else
		agent_msg_u32(m, AGENT_T_EXIT_CODE, (uint32_t)WEXITSTATUS(cmd->status));
	if (cmd->timed_out)
		agent_msg_flag(m, AGENT_T_TIMED_OUT);
	agent_conn_send_msg(c);
	cmd->conn = NULL;
	cmd->since_ms = agent_now_ms();
	c->cmd = NULL;
	c->state = AGENT_C_IDLE;
}

static struct out_chunk *out_at(struct agent_cmd *cmd, uint64_t seq)
{
	for (struct out_chunk *ch = cmd->head; ch; ch = ch->next)
		if (seq >= ch->seq && seq < ch->seq + ch->len)
			return ch;
	return NULL;
}

void agent_exec_pump(struct agent_conn *c)
{
	struct agent_cmd *cmd = c->cmd;
	int paused;

	if (!cmd)
		return;
	paused = cmd->total - cmd->cursor >= cmd->loop->cfg.max_output;
	while (cmd->cursor < cmd->total && agent_conn_room(c) > AGENT_HDR_SIZE + 1024) {
		struct out_chunk *ch = out_at(cmd, cmd->cursor);
		size_t off, n;

		if (!ch) {
			cmd->cursor = cmd->total; /* cannot happen: history always covers the cursor */
			break;
		}
		off = (size_t)(cmd->cursor - ch->seq);
		n = ch->len - off;
		if (n > agent_conn_room(c) - AGENT_HDR_SIZE)
			n = agent_conn_room(c) - AGENT_HDR_SIZE;
		agent_conn_send(c, ch->type, cmd->id, ch->data + off, n);
		cmd->cursor += n;
	}
	out_trim(cmd);
	if (cmd->cursor == cmd->total && cmd_done(cmd) && agent_conn_room(c) >= AGENT_REPLY_ROOM)
		send_exit(c, cmd);
	else if (paused)
		cmd_update(cmd);
}

int agent_exec_pending(const struct agent_conn *c)
{
	return c->cmd && (c->cmd->cursor < c->cmd->total || cmd_done(c->cmd));
}

void agent_exec_io(struct agent_loop *loop, struct agent_watch *w, uint32_t events)
{
	struct agent_cmd *cmd = w->owner;

	(void)loop;
	if (cmd->dead || w->fd < 0)
		return;
	if (w->kind == AGENT_W_CMD_IN || (cmd->pty && (events & EPOLLOUT)))
		stdin_flush(cmd);
	if (w->kind == AGENT_W_CMD_IN && (events & (EPOLLERR | EPOLLHUP)))
		stdin_close(cmd);
	if (w->kind != AGENT_W_CMD_IN && w->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		out_read(cmd, w);
	cmd_update(cmd);
	if (cmd->conn)
		agent_conn_kick(cmd->conn);
}

/* ---- reaping and time ---- */

static void cmd_exited(struct agent_cmd *cmd, int status)
{
	uint64_t now = agent_now_ms();

	cmd->running = 0;
	cmd->status = status;
	cmd->since_ms = now;
	cmd->grace_until_ms = now + EXEC_GRACE_MS;
	if (!cmd->pty)
		stdin_close(cmd);
	if (cmd->pty_eof)
		agent_watch_drop(cmd->loop, &cmd->out);
	if (cmd->conn)
		agent_conn_kick(cmd->conn);
}

void agent_exec_reap(struct agent_loop *loop)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (struct agent_cmd *cmd = loop->cmds; cmd; cmd = cmd->next) {
			if (cmd->pid == pid && cmd->running) {
				cmd_exited(cmd, status);
				break;
			}
		}
	}
}

static void cmd_tick(struct agent_cmd *cmd, uint64_t now)
{
	const struct agent_config *cfg = &cmd->loop->cfg;

	if (cmd->running && cmd->deadline_ms && now >= cmd->deadline_ms && !cmd->timed_out) {
		cmd->timed_out = 1;
		cmd_kill(cmd);
	}
	if (cmd->running && !cmd->conn && cmd->idle_timeout_ms &&
	    now - cmd->since_ms >= cmd->idle_timeout_ms)
		cmd_kill(cmd);
	if (!cmd->running && !cmd_done(cmd) && now >= cmd->grace_until_ms) {
		/* Orphans still hold the output open: stop waiting for them. */
		agent_watch_drop(cmd->loop, &cmd->out);
		agent_watch_drop(cmd->loop, &cmd->err);
		if (cmd->conn)
			agent_conn_kick(cmd->conn);
	}
	if (cmd_done(cmd) && !cmd->conn && now - cmd->since_ms >= cfg->exit_ttl_ms) {
		cmd->dead = 1;
		cmd->loop->ncmds--;
	}
}

int agent_exec_tick(struct agent_loop *loop)
{
	uint64_t now = agent_now_ms();
	int any = 0;

	for (struct agent_cmd *cmd = loop->cmds; cmd; cmd = cmd->next) {
		if (cmd->dead)
			continue;
		cmd_tick(cmd, now);
		any |= !cmd->dead;
	}
	return any;
}

void agent_exec_sweep(struct agent_loop *loop)
{
	struct agent_cmd **pp = &loop->cmds;

	while (*pp) {
		struct agent_cmd *cmd = *pp;

		if (!cmd->dead) {
			pp = &cmd->next;
			continue;
		}
		*pp = cmd->next;
		if (cmd->conn)
			cmd->conn->cmd = NULL;
		cmd_free(cmd);
	}
}

void agent_exec_kill_all(struct agent_loop *loop)
{
	for (struct agent_cmd *cmd = loop->cmds; cmd; cmd = cmd->next) {
		if (cmd->running) {
			cmd_kill(cmd);
			waitpid(cmd->pid, NULL, 0);
			cmd->running = 0;
		}
		if (cmd->conn) {
			cmd->conn->cmd = NULL;
			cmd->conn->state = AGENT_C_IDLE;
		}
		cmd->conn = NULL;
		cmd->dead = 1;
	}
	agent_exec_sweep(loop);
	loop->ncmds = 0;
}
