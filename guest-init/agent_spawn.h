/* Starting commands for the agent's EXEC: decoding the request, users from /etc/passwd and
 * /etc/group (no NSS: sbx-init is static), the environment, and fork/exec on pipes or a
 * PTY. agent_exec.c owns what happens after. */
#ifndef SBX_GUEST_AGENT_SPAWN_H
#define SBX_GUEST_AGENT_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/agent_proto.h>

#define AGENT_MAX_GROUPS 64

/* A decoded EXEC request; strings point into one NUL-separated copy. */
struct agent_exec_req {
	char *strs;
	char **argv, **envp;
	size_t argc, envc;
	const char *cwd, *user;
	uint64_t timeout_ms, idle_timeout_ms;
	uint32_t rows, cols;
	int pty, kill_on_disconnect, no_stdin, drop_unread;
};

struct agent_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[AGENT_MAX_GROUPS];
	int ngroups;
	char name[256];
	char home[AGENT_MAX_PATH];
};

struct agent_spawned {
	pid_t pid;
	int out, err, in; /* parent's ends; with a PTY out is the master, err and in are -1 */
};

/* Decodes an EXEC frame into q (which owns copies of the strings). Returns 0, or -1 if the
 * attributes are malformed. Call agent_exec_req_free either way. */
int agent_exec_req_parse(const struct agent_frame *f, struct agent_exec_req *q);
void agent_exec_req_free(struct agent_exec_req *q);

/* Looks up spec (a user name or numeric uid; NULL for the agent's own user) with its
 * groups. Returns 0 or -ENOENT. */
int agent_user_resolve(const char *spec, struct agent_user *u);

/* Adds PATH, HOME, USER, LOGNAME (and TERM with a PTY) where q's ENV did not set them;
 * the strings live in store (cap bytes). */
void agent_env_defaults(struct agent_exec_req *q, const struct agent_user *u, char *store,
			size_t cap);

/* Forks and execs q as u in a new session (on a new PTY if q->pty). Returns 0 once the
 * program runs, or -errno if it could not be started (the child is reaped then). */
int agent_spawn(struct agent_exec_req *q, const struct agent_user *u, struct agent_spawned *sp);

#endif
