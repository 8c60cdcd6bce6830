/* Host side of the guest agent protocol (include/sbx/agent_proto.h, guest-init/PROTOCOL.md).
 *
 * Blocking calls on an already-connected stream socket: a Unix socket in tests, or the
 * VMM's vsock bridge after agent_client_connect_vsock_uds(). One struct agent_client per
 * connection, used by one thread; a connection carries one request at a time, so open
 * several for concurrent work. Every call returns 0 (or a count) on success and a negative
 * errno on failure; when the agent answered ERROR, its errno is returned and its message is
 * in c->error. */
#ifndef SBX_API_AGENT_CLIENT_H
#define SBX_API_AGENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/agent_proto.h>

struct agent_client {
	int fd;
	uint8_t *rbuf;          /* AGENT_MAX_FRAME bytes */
	size_t rlen, roff;      /* received bytes, start of the unconsumed ones */
	struct agent_msg *msg;  /* scratch for requests */
	char error[1024];       /* the agent's last ERROR message, or a local explanation */
};

/* Writes all n bytes to fd, retrying after EINTR: to a socket with MSG_NOSIGNAL (a gone
 * peer is -EPIPE, not SIGPIPE), to anything else with write(). Returns 0 or -errno. */
int agent_client_write_all(int fd, const void *p, size_t n);

/* Connects to a Unix stream socket. Returns the fd or -errno. */
int agent_client_connect_unix(const char *path);

/* Connects to the VMM's vsock bridge at path, writes "CONNECT <port>\n" and expects
 * "OK <n>\n"; afterwards bytes flow to the guest's port. Returns the fd or -errno
 * (-ECONNREFUSED when the bridge did not answer OK). */
int agent_client_connect_vsock_uds(const char *path, unsigned port);

/* Takes ownership of fd and exchanges HELLO. Returns 0, or -errno (the fd is closed and
 * c is cleared then). */
int agent_client_init(struct agent_client *c, int fd);

/* agent_client_connect_vsock_uds to the agent's port, then agent_client_init, every
 * read and write on the connection bounded by timeout_s (SO_RCVTIMEO/SO_SNDTIMEO;
 * an exchange that runs out fails with -EAGAIN). Returns 0, or -errno (c cleared). */
int agent_client_open_vsock(struct agent_client *c, const char *path, int timeout_s);

/* Closes the connection and frees c's buffers. Safe on a cleared client. */
void agent_client_close(struct agent_client *c);

/* ---- frames (for callers that drive the protocol themselves) ---- */

/* Sends one frame; blocks until written. */
int agent_client_send(struct agent_client *c, uint16_t type, uint32_t id, const void *p, size_t n);

/* Receives the next frame; f->payload stays valid until the next receive. Returns 0,
 * -ECONNRESET at end of stream, -EPROTO on a malformed frame. */
int agent_client_recv(struct agent_client *c, struct agent_frame *f);

/* Turns an ERROR frame into -errno (EIO when it names none) with its message in c->error. */
int agent_client_frame_error(struct agent_client *c, const struct agent_frame *f);

/* Waits for the reply to a request: 0 with OK in f, the ERROR's -errno (message in
 * c->error), or -EPROTO for any other frame. */
int agent_client_recv_reply(struct agent_client *c, struct agent_frame *f);

/* Sends the request built in c->msg and waits for its reply (agent_client_recv_reply). */
int agent_client_transact(struct agent_client *c, struct agent_frame *f);

/* The AGENT_T_SIZE of an OK reply into *size (left alone when absent; size may be NULL). */
void agent_client_reply_size(const struct agent_frame *f, uint64_t *size);

/* Whether a whole frame is already buffered (so agent_client_recv will not block). */
int agent_client_has_frame(const struct agent_client *c);

/* ---- exec ---- */

struct agent_exec_opts {
	const char *const *argv;   /* NULL-terminated, at least one entry */
	const char *const *envp;   /* "NAME=value", NULL-terminated; may be NULL */
	const char *cwd, *user;    /* may be NULL */
	uint64_t timeout_ms;       /* 0: none */
	uint64_t idle_timeout_ms;  /* 0: the agent's default */
	int pty;
	unsigned rows, cols;       /* PTY size; 0: 24x80 */
	int kill_on_disconnect;
	int no_stdin;
	int drop_unread;           /* detached: keep reading, drop the oldest output */
};

/* Starts a command; *cmd_id names it for stdin, signals and re-attach. */
int agent_client_exec(struct agent_client *c, const struct agent_exec_opts *o, uint32_t *cmd_id);

/* Re-attaches to command cmd_id, replaying its output from byte offset (stdout and
 * stderr counted together). *first is where the replay really starts (later than offset
 * when older output was dropped); *running tells whether it still runs. Either may be NULL. */
int agent_client_attach(struct agent_client *c, uint32_t cmd_id, uint64_t offset, uint64_t *first,
			int *running);

struct agent_exec_event {
	uint16_t type;           /* AGENT_STDOUT, AGENT_STDERR or AGENT_EXIT */
	const uint8_t *data;     /* output bytes (valid until the next receive) */
	size_t len;
	int exit_code;           /* AGENT_EXIT: -1 when killed by a signal */
	int signal;              /* AGENT_EXIT: the signal, or 0 */
	int timed_out;
};

/* Waits for the next output chunk or the exit of the attached command. */
int agent_client_exec_next(struct agent_client *c, struct agent_exec_event *ev);

/* Blocks while the command is not reading its stdin (backpressure). As with any pipe,
 * a caller that sends much input to a command that also writes much output must read
 * the output meanwhile (poll c->fd), or both sides wait on each other. */
int agent_client_exec_stdin(struct agent_client *c, uint32_t cmd_id, const void *p, size_t n);
int agent_client_exec_stdin_eof(struct agent_client *c, uint32_t cmd_id);
/* Sends sig to the command's process group (SIGKILL kills it). */
int agent_client_exec_signal(struct agent_client *c, uint32_t cmd_id, int sig);
int agent_client_exec_resize(struct agent_client *c, uint32_t cmd_id, unsigned rows, unsigned cols);

/* ---- files ---- */

/* Source for a write: fills buf (cap bytes); returns bytes, 0 at the end, or -errno. */
typedef ssize_t (*agent_source_fn)(void *opaque, void *buf, size_t cap);
/* Sink for a read: consumes n bytes; returns 0 or -errno. */
typedef int (*agent_sink_fn)(void *opaque, const void *buf, size_t n);

/* Streams src into the guest file path (created or truncated; mode < 0 keeps the default
 * 0644 or the existing mode). *written gets the size the agent stored; may be NULL. */
int agent_client_put(struct agent_client *c, const char *path, int mode, agent_source_fn src,
		     void *opaque, uint64_t *written);

/* Appends src to the guest file path (created 0644 if missing). */
int agent_client_append(struct agent_client *c, const char *path, agent_source_fn src, void *opaque,
			uint64_t *written);

/* Streams the guest file path into sink. *size gets the bytes read; may be NULL. If sink
 * fails, the rest is drained (the connection stays usable) and sink's error returned. */
int agent_client_get(struct agent_client *c, const char *path, agent_sink_fn sink, void *opaque,
		     uint64_t *size);

/* The same for length bytes from offset (length UINT64_MAX: to the end). */
int agent_client_get_range(struct agent_client *c, const char *path, uint64_t offset,
			   uint64_t length, agent_sink_fn sink, void *opaque, uint64_t *size);

struct agent_stat {
	char name[256]; /* set by agent_client_list only */
	uint32_t mode, uid, gid;
	uint64_t size, mtime_ns;
};

int agent_client_stat(struct agent_client *c, const char *path, struct agent_stat *st);
/* Calls fn for each entry of directory path (not . and ..); a non-zero return from fn is
 * returned after the listing is drained. Returns the entry count, or -errno. */
long agent_client_list(struct agent_client *c, const char *path,
		       int (*fn)(void *opaque, const struct agent_stat *st), void *opaque);
int agent_client_mkdir(struct agent_client *c, const char *path, unsigned mode, int parents);
int agent_client_remove(struct agent_client *c, const char *path, int recursive);
int agent_client_chmod(struct agent_client *c, const char *path, unsigned mode);
/* uid or gid < 0 leaves it unchanged. Does not follow a final symlink. */
int agent_client_chown(struct agent_client *c, const char *path, long uid, long gid);

/* ---- tunnel ---- */

/* Connects the agent to TCP port on the guest's loopback. On success c->fd is a raw byte
 * pipe to it; bytes that arrived with the OK are in c->rbuf[c->roff, c->rlen) and must be
 * used before reading c->fd. */
int agent_client_tunnel(struct agent_client *c, unsigned port);

/* ---- system ---- */

struct agent_info {
	uint32_t version, ncpu, commands;
	uint64_t uptime_ms, mem_total, mem_avail;
	char hostname[256], kernel[256];
};

int agent_client_ping(struct agent_client *c);
int agent_client_info(struct agent_client *c, struct agent_info *info);
int agent_client_clock_set(struct agent_client *c, uint64_t realtime_ns);
int agent_client_entropy(struct agent_client *c, const void *seed, size_t n);
int agent_client_sync(struct agent_client *c);
/* FIFREEZE / FITHAW on the filesystem mounted at path. */
int agent_client_freeze(struct agent_client *c, const char *path);
int agent_client_thaw(struct agent_client *c, const char *path);
/* Asks for an orderly power-off; returns once the agent acknowledged. */
int agent_client_shutdown(struct agent_client *c);

#endif
