/* Shared between the agent's files (agent.c: loop and connections; agent_exec.c;
 * agent_files.c; agent_tunnel.c; agent_sys.c). Not part of sbx-init's public surface. */
#ifndef SBX_GUEST_AGENT_INTERNAL_H
#define SBX_GUEST_AGENT_INTERNAL_H

#include <dirent.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/agent_proto.h>

#include "agent.h"

#define AGENT_WBUF_CAP   (128 * 1024)
#define AGENT_RBUF_CAP   AGENT_MAX_FRAME
/* Input is processed only while the write buffer has room for any reply. */
#define AGENT_REPLY_ROOM (8 * 1024)
#define AGENT_TICK_MS    100

enum agent_watch_kind {
	AGENT_W_LISTEN,
	AGENT_W_SIGNAL,
	AGENT_W_TIMER,
	AGENT_W_CONN,
	AGENT_W_CMD_OUT,   /* stdout pipe, or the PTY master (both directions) */
	AGENT_W_CMD_ERR,
	AGENT_W_CMD_IN,
	AGENT_W_TUNNEL,
};

/* What epoll's data.ptr points at. */
struct agent_watch {
	int fd;
	enum agent_watch_kind kind;
	uint32_t events; /* currently registered, to skip redundant epoll_ctl calls */
	void *owner;
};

enum agent_conn_state {
	AGENT_C_HELLO,
	AGENT_C_IDLE,
	AGENT_C_EXEC,
	AGENT_C_FREAD,
	AGENT_C_FWRITE,
	AGENT_C_FWRITE_FAILED, /* swallowing DATA until DATA_END after an error reply */
	AGENT_C_LIST,
	AGENT_C_TUNNEL_CONNECTING, /* TUNNEL's connect() in progress: no frames read */
	AGENT_C_TUNNEL,
};

struct agent_loop;
struct agent_cmd;

struct agent_conn {
	struct agent_watch w;
	struct agent_loop *loop;
	struct agent_conn *next;
	enum agent_conn_state state;
	int closing;    /* close once wbuf is flushed */
	int dead;       /* closed; freed at the end of the loop iteration */
	int read_eof;
	uint8_t *rbuf;
	size_t rlen;
	uint8_t *wbuf;
	size_t wlen, woff;
	/* exec */
	struct agent_cmd *cmd;
	/* files */
	int file_fd;
	uint64_t file_left;
	uint64_t file_done;
	DIR *dir;
	uint64_t dir_count;
	/* tunnel */
	struct agent_watch peer;
	int peer_eof;
	int peer_wr_shut, conn_wr_shut;
	int peer_reg, conn_reg; /* whether each fd is in epoll now */
};

struct agent_loop {
	int epfd;
	struct agent_watch listen, sig, timer;
	struct agent_config cfg;
	struct agent_conn *conns;
	struct agent_cmd *cmds;
	uint32_t ncmds;
	uint32_t next_cmd_id;
	int timer_armed;
	int listen_paused; /* accept failed (EMFILE...): retried on the next tick */
	int stop;       /* 0 or agent_serve's return value */
	struct agent_msg *msg; /* scratch frame for replies */
	uint8_t *scratch;      /* AGENT_MAX_PAYLOAD bytes for reads */
};

/* agent.c: connections */
uint64_t agent_now_ms(void);
int agent_watch_set(struct agent_loop *loop, struct agent_watch *w, uint32_t events);
void agent_watch_drop(struct agent_loop *loop, struct agent_watch *w);
size_t agent_conn_room(const struct agent_conn *c);
/* Queues a frame (the caller made sure it fits). */
void agent_conn_send(struct agent_conn *c, uint16_t type, uint32_t id, const void *p, size_t n);
/* Queues loop->msg (after agent_msg_finish). */
void agent_conn_send_msg(struct agent_conn *c);
void agent_conn_ok(struct agent_conn *c);
void agent_conn_error(struct agent_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Protocol violation: error reply, then the connection closes. */
void agent_conn_fail(struct agent_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void agent_conn_update(struct agent_conn *c);
void agent_conn_close(struct agent_conn *c);
/* A producer has new data for c: parse, pump and flush now. */
void agent_conn_kick(struct agent_conn *c);
/* Runs the periodic tick (timeouts, TTLs) while on is set. */
void agent_loop_arm_timer(struct agent_loop *loop, int on);

/* Request attributes, decoded once by agent.c for every request handler. */
struct agent_req {
	const struct agent_frame *f;
	char path[AGENT_MAX_PATH];
	int has_path;
	uint32_t mode, uid, gid, port, cmd_id;
	int has_mode, has_uid, has_gid, has_port, has_cmd_id;
	uint64_t offset, length, time_ns;
	int has_length;
	int parents, recursive, append;
};

/* agent_exec.c */
void agent_exec_start(struct agent_conn *c, const struct agent_frame *f);
void agent_exec_attach(struct agent_conn *c, const struct agent_req *r);
/* A frame from an exec connection (STDIN, STDIN_EOF, SIGNAL, RESIZE). */
void agent_exec_input(struct agent_conn *c, const struct agent_frame *f);
/* Fills c's write buffer from its command's output. */
void agent_exec_pump(struct agent_conn *c);
/* Whether c may read more frames now (stdin backpressure). */
int agent_exec_accepts_input(const struct agent_conn *c);
void agent_exec_detach(struct agent_conn *c);
void agent_exec_io(struct agent_loop *loop, struct agent_watch *w, uint32_t events);
void agent_exec_reap(struct agent_loop *loop);
/* Timeouts, idle kills, TTL expiry; returns whether any command still needs the tick. */
int agent_exec_tick(struct agent_loop *loop);
void agent_exec_kill_all(struct agent_loop *loop);
/* Whether c's command has output or its exit status waiting to be sent. */
int agent_exec_pending(const struct agent_conn *c);
/* Frees commands marked dead during this loop iteration. */
void agent_exec_sweep(struct agent_loop *loop);

/* agent_files.c */
void agent_file_read(struct agent_conn *c, const struct agent_req *r);
void agent_file_write(struct agent_conn *c, const struct agent_req *r);
void agent_file_data(struct agent_conn *c, const struct agent_frame *f);
void agent_file_pump(struct agent_conn *c);
void agent_file_stat(struct agent_conn *c, const struct agent_req *r);
void agent_file_list(struct agent_conn *c, const struct agent_req *r);
void agent_file_mkdir(struct agent_conn *c, const struct agent_req *r);
void agent_file_remove(struct agent_conn *c, const struct agent_req *r);
void agent_file_chmod(struct agent_conn *c, const struct agent_req *r);
void agent_file_chown(struct agent_conn *c, const struct agent_req *r);
void agent_file_cleanup(struct agent_conn *c);

/* agent_tunnel.c */
void agent_tunnel_open(struct agent_conn *c, const struct agent_req *r);
void agent_tunnel_conn_io(struct agent_conn *c, uint32_t events);
void agent_tunnel_peer_io(struct agent_conn *c, uint32_t events);
void agent_tunnel_cleanup(struct agent_conn *c);

/* agent_sys.c */
void agent_sys_info(struct agent_conn *c);
void agent_sys_clock(struct agent_conn *c, const struct agent_req *r);
void agent_sys_entropy(struct agent_conn *c, const struct agent_frame *f);
void agent_sys_freeze(struct agent_conn *c, const struct agent_req *r, int thaw);

#endif
