/* Starting commands: EXEC request decoding, users, environment, fork/exec. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include "agent_spawn.h"

/* ---- request decoding ---- */

void agent_exec_req_free(struct agent_exec_req *q)
{
	free(q->strs);
	free(q->argv);
	free(q->envp);
}

static int exec_req_u(const uint8_t *v, uint16_t n, uint64_t *out)
{
	uint32_t u32;

	if (n == 4 && agent_tlv_u32(v, n, &u32) == 0) {
		*out = u32;
		return 0;
	}
	return agent_tlv_u64(v, n, out);
}

static int exec_req_attr(struct agent_exec_req *q, uint16_t tag, const uint8_t *v, uint16_t n, char **sp)
{
	uint64_t u = 0;
	char *s = *sp;

	switch (tag) {
	case AGENT_T_ARG: case AGENT_T_ENV: case AGENT_T_CWD: case AGENT_T_USER:
		if (memchr(v, 0, n))
			return -1;
		memcpy(s, v, n);
		s[n] = 0;
		*sp = s + n + 1;
		if (tag == AGENT_T_ARG)
			q->argv[q->argc++] = s;
		else if (tag == AGENT_T_ENV)
			q->envp[q->envc++] = s;
		else if (tag == AGENT_T_CWD)
			q->cwd = s;
		else
			q->user = s;
		return 0;
	case AGENT_T_TIMEOUT_MS: return exec_req_u(v, n, &q->timeout_ms);
	case AGENT_T_IDLE_TIMEOUT_MS: return exec_req_u(v, n, &q->idle_timeout_ms);
	case AGENT_T_ROWS:
		if (exec_req_u(v, n, &u) < 0 || u > 0xffff)
			return -1;
		q->rows = (uint32_t)u;
		return 0;
	case AGENT_T_COLS:
		if (exec_req_u(v, n, &u) < 0 || u > 0xffff)
			return -1;
		q->cols = (uint32_t)u;
		return 0;
	case AGENT_T_PTY: q->pty = 1; return 0;
	case AGENT_T_KILL_ON_DISCONNECT: q->kill_on_disconnect = 1; return 0;
	case AGENT_T_NO_STDIN: q->no_stdin = 1; return 0;
	case AGENT_T_DROP_UNREAD: q->drop_unread = 1; return 0;
	default: return 0;
	}
}

int agent_exec_req_parse(const struct agent_frame *f, struct agent_exec_req *q)
{
	struct agent_tlv_iter it;
	size_t slots = f->len / AGENT_TLV_HDR_SIZE + 8;
	const uint8_t *v;
	uint16_t tag, n;
	char *s;
	int rc;

	memset(q, 0, sizeof(*q));
	q->strs = malloc(f->len + slots);
	q->argv = calloc(slots, sizeof(char *));
	q->envp = calloc(slots, sizeof(char *));
	if (!q->strs || !q->argv || !q->envp)
		return -1;
	s = q->strs;
	agent_tlv_begin(&it, f->payload, f->len);
	while ((rc = agent_tlv_next(&it, &tag, &v, &n)) == 1)
		if (exec_req_attr(q, tag, v, n, &s) < 0)
			return -1;
	return rc;
}

/* ---- users, from /etc/passwd and /etc/group (no NSS in a static PID 1) ---- */

static int user_find(const char *spec, struct agent_user *u)
{
	char *end;
	unsigned long num = strtoul(spec, &end, 10);
	int numeric = *spec && !*end;
	FILE *fp = fopen("/etc/passwd", "re");
	struct passwd *pw;
	int found = 0;

	while (fp && (pw = fgetpwent(fp))) {
		if (numeric ? pw->pw_uid == num : strcmp(pw->pw_name, spec) == 0) {
			u->uid = pw->pw_uid;
			u->gid = pw->pw_gid;
			snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
			snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
			found = 1;
			break;
		}
	}
	if (fp)
		fclose(fp);
	if (!found && numeric && num <= 0xfffffffeUL) {
		u->uid = u->gid = (uid_t)num;
		snprintf(u->name, sizeof(u->name), "%lu", num);
		snprintf(u->home, sizeof(u->home), "/");
		found = 1;
	}
	return found ? 0 : -ENOENT;
}

static void user_groups(struct agent_user *u)
{
	FILE *fp = fopen("/etc/group", "re");
	struct group *gr;

	u->groups[0] = u->gid;
	u->ngroups = 1;
	while (fp && (gr = fgetgrent(fp)) && u->ngroups < AGENT_MAX_GROUPS) {
		for (char **m = gr->gr_mem; m && *m; m++) {
			if (strcmp(*m, u->name) == 0 && gr->gr_gid != u->gid) {
				u->groups[u->ngroups++] = gr->gr_gid;
				break;
			}
		}
	}
	if (fp)
		fclose(fp);
}

/* ---- environment ---- */

static int env_has(char **envp, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
			return 1;
	return 0;
}

void agent_env_defaults(struct agent_exec_req *q, const struct agent_user *u, char *store, size_t cap)
{
	const char *defs[][2] = {
		{ "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
		{ "HOME", u->home },
		{ "USER", u->name },
		{ "LOGNAME", u->name },
		{ "TERM", q->pty ? "xterm-256color" : NULL },
	};
	size_t used = 0;

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		int n;

		if (!defs[i][1] || env_has(q->envp, q->envc, defs[i][0]))
			continue;
		n = snprintf(store + used, cap - used, "%s=%s", defs[i][0], defs[i][1]);
		if (n < 0 || (size_t)n >= cap - used)
			break;
		q->envp[q->envc++] = store + used;
		used += (size_t)n + 1;
	}
	q->envp[q->envc] = NULL;
}

/* ---- spawning ---- */

struct exec_fds {
	int out[2], err[2], in[2], status[2];
	int master, slave;
};

static void fds_close(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static int fds_open(struct exec_fds *x, const struct agent_exec_req *q)
{
	struct winsize ws = { .ws_row = q->rows ? q->rows : 24, .ws_col = q->cols ? q->cols : 80 };

	memset(x, -1, sizeof(*x));
	if (pipe2(x->status, O_CLOEXEC) < 0)
		return -errno;
	if (q->pty) {
		if (openpty(&x->master, &x->slave, NULL, NULL, &ws) < 0)
			return -errno;
		fcntl(x->master, F_SETFD, FD_CLOEXEC);
		fcntl(x->slave, F_SETFD, FD_CLOEXEC);
		return 0;
	}
	if (pipe2(x->out, O_CLOEXEC) < 0 || pipe2(x->err, O_CLOEXEC) < 0)
		return -errno;
	if (!q->no_stdin && pipe2(x->in, O_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static void fds_free(struct exec_fds *x)
{
	fds_close(x->out, 2);
	fds_close(x->err, 2);
	fds_close(x->in, 2);
	fds_close(x->status, 2);
	fds_close(&x->master, 1);
	fds_close(&x->slave, 1);
}

static void __attribute__((noreturn)) child_fail(int status_fd, int err)
{
	ssize_t rc = write(status_fd, &err, sizeof(err));

	(void)rc;
	_exit(127);
}

static void child_stdio(struct exec_fds *x)
{
	int null;

	if (x->master >= 0) {
		if (login_tty(x->slave) < 0)
			child_fail(x->status[1], errno);
		return;
	}
	if (setsid() < 0)
		child_fail(x->status[1], errno);
	null = x->in[0] >= 0 ? x->in[0] : open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(x->out[1], 1) < 0 || dup2(x->err[1], 2) < 0)
		child_fail(x->status[1], errno);
}

/* In the child: never returns. */
static void child_exec(struct exec_fds *x, struct agent_exec_req *q, const struct agent_user *u)
{
	extern char **environ;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	child_stdio(x);
	if (q->cwd && chdir(q->cwd) < 0)
		child_fail(x->status[1], errno);
	if (q->user && (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 ||
			setuid(u->uid) < 0))
		child_fail(x->status[1], errno);
	environ = q->envp;
	execvp(q->argv[0], q->argv);
	child_fail(x->status[1], errno);
}

int agent_spawn(struct agent_exec_req *q, const struct agent_user *u, struct agent_spawned *sp)
{
	struct exec_fds x;
	int rc = fds_open(&x, q), err = 0;
	ssize_t n;
	pid_t pid;

	if (rc < 0)
		goto out;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		child_exec(&x, q, u);
	close(x.status[1]);
	x.status[1] = -1;
	do
		n = read(x.status[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(err)) {
		waitpid(pid, NULL, 0);
		rc = -(err ? err : EIO);
		goto out;
	}
	sp->pid = pid;
	sp->out = sp->err = sp->in = -1;
	if (q->pty) {
		sp->out = x.master;
		x.master = -1;
	} else {
		sp->out = x.out[0];
		sp->err = x.err[0];
		sp->in = x.in[1];
		x.out[0] = x.err[0] = x.in[1] = -1;
	}
out:
	fds_free(&x);
	return rc;
}

int agent_user_resolve(const char *spec, struct agent_user *u)
{
	memset(u, 0, sizeof(*u));
	if (!spec) {
		u->uid = getuid();
		u->gid = getgid();
		snprintf(u->name, sizeof(u->name), "%s", u->uid == 0 ? "root" : "user");
		snprintf(u->home, sizeof(u->home), "%s", u->uid == 0 ? "/root" : "/");
		return 0;
	}
	if (user_find(spec, u) < 0)
		return -ENOENT;
	user_groups(u);
	return 0;
}

