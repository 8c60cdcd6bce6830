/* sbx-agentctl: talks to a guest agent from the command line (tests, debugging).
 *
 *   sbx-agentctl (--unix PATH | --vsock-uds PATH [--port N]) COMMAND [ARGS]
 *
 * COMMAND: exec [--pty] [--env K=V]... [--cwd DIR] [--user U] [--timeout MS]
 *               [--kill-on-disconnect] [--no-stdin] -- CMD [ARGS]
 *          attach ID [OFFSET] | put LOCAL REMOTE [MODE] | get REMOTE LOCAL
 *          stat PATH | ls PATH | mkdir [-p] PATH | rm [-r] PATH | chmod MODE PATH
 *          chown UID GID PATH | tunnel PORT | ping | info | sync | freeze PATH
 *          thaw PATH | clock [NS] | entropy [BYTES] | shutdown
 * LOCAL may be - for stdin/stdout. exec and attach exit with the command's status
 * (128 + signal when killed). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"

#define MAX_ENV 256

static int usage(void)
{
	fprintf(stderr,
		"usage: sbx-agentctl (--unix PATH | --vsock-uds PATH [--port N]) COMMAND [ARGS]\n"
		"  exec [--pty] [--env K=V] [--cwd DIR] [--user U] [--timeout MS]\n"
		"       [--kill-on-disconnect] [--no-stdin] -- CMD [ARGS]\n"
		"  attach ID [OFFSET] | put LOCAL REMOTE [MODE] | get REMOTE LOCAL\n"
		"  stat PATH | ls PATH | mkdir [-p] PATH | rm [-r] PATH | chmod MODE PATH\n"
		"  chown UID GID PATH | tunnel PORT | ping | info | sync | freeze PATH\n"
		"  thaw PATH | clock [NS] | entropy [BYTES] | shutdown\n");
	return 2;
}

static int fail(struct agent_client *c, const char *what, int rc)
{
	fprintf(stderr, "sbx-agentctl: %s: %s%s%s\n", what, strerror(-rc), c->error[0] ? ": " : "",
		c->error);
	return 1;
}

/* ---- exec and attach ---- */

static struct termios saved_tty;
static int tty_raw;

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(0, TCSAFLUSH, &saved_tty);
	tty_raw = 0;
}

static void tty_make_raw(void)
{
	struct termios t;

	if (!isatty(0) || tcgetattr(0, &saved_tty) < 0)
		return;
	t = saved_tty;
	cfmakeraw(&t);
	if (tcsetattr(0, TCSAFLUSH, &t) == 0)
		tty_raw = 1;
	atexit(tty_restore);
}

static int exit_status(const struct agent_exec_event *ev)
{
	if (ev->timed_out)
		fprintf(stderr, "sbx-agentctl: command timed out\n");
	return ev->signal ? 128 + ev->signal : ev->exit_code;
}

/* Forwards stdin (unless stdin_open is 0) and prints output until the command exits. */
static int exec_stream(struct agent_client *c, uint32_t id, int stdin_open, int winch_fd)
{
	struct agent_exec_event ev;
	uint8_t buf[16384];
	int rc;

	for (;;) {
		struct pollfd p[3] = { { .fd = c->fd, .events = POLLIN },
				       { .fd = stdin_open ? 0 : -1, .events = POLLIN },
				       { .fd = winch_fd, .events = POLLIN } };

		if (!agent_client_has_frame(c) && poll(p, 3, -1) < 0 && errno != EINTR)
			return fail(c, "poll", -errno);
		if (agent_client_has_frame(c) || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			rc = agent_client_exec_next(c, &ev);
			if (rc < 0)
				return fail(c, "exec", rc);
			if (ev.type == AGENT_EXIT)
				return exit_status(&ev);
			agent_client_write_all(ev.type == AGENT_STDERR ? 2 : 1, ev.data, ev.len);
			continue;
		}
		if (p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));

			if (n > 0)
				rc = agent_client_exec_stdin(c, id, buf, (size_t)n);
			else {
				stdin_open = 0;
				rc = agent_client_exec_stdin_eof(c, id);
			}
			if (rc < 0)
				return fail(c, "stdin", rc);
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;
			struct winsize ws;

			if (read(winch_fd, &si, sizeof(si)) > 0 && ioctl(0, TIOCGWINSZ, &ws) == 0)
				agent_client_exec_resize(c, id, ws.ws_row, ws.ws_col);
		}
	}
}

static int winch_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static int cmd_exec(struct agent_client *c, int argc, char **argv)
{
	const char *env[MAX_ENV + 1] = { 0 };
	struct agent_exec_opts o = { .envp = env };
	struct winsize ws;
	int nenv = 0, i, rc, winch = -1;
	uint32_t id;

	for (i = 0; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--pty"))
			o.pty = 1;
		else if (!strcmp(argv[i], "--kill-on-disconnect"))
			o.kill_on_disconnect = 1;
		else if (!strcmp(argv[i], "--no-stdin"))
			o.no_stdin = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--env") && nenv < MAX_ENV)
			env[nenv++] = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--cwd"))
			o.cwd = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--user"))
			o.user = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--timeout"))
			o.timeout_ms = strtoull(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (i + 1 >= argc)
		return usage();
	o.argv = (const char *const *)argv + i + 1;
	if (o.pty && ioctl(0, TIOCGWINSZ, &ws) == 0) {
		o.rows = ws.ws_row;
		o.cols = ws.ws_col;
		winch = winch_open();
	}
	rc = agent_client_exec(c, &o, &id);
	if (rc < 0)
		return fail(c, "exec", rc);
	fprintf(stderr, "sbx-agentctl: command id %" PRIu32 "\n", id);
	if (o.pty)
		tty_make_raw();
	if (o.no_stdin)
		agent_client_exec_stdin_eof(c, id);
	return exec_stream(c, id, !o.no_stdin, winch);
}

static int cmd_attach(struct agent_client *c, int argc, char **argv)
{
	uint64_t first = 0;
	uint32_t id;
	int running, rc;

	if (argc < 1)
		return usage();
	id = (uint32_t)strtoul(argv[0], NULL, 10);
	rc = agent_client_attach(c, id, argc > 1 ? strtoull(argv[1], NULL, 10) : 0, &first, &running);
	if (rc < 0)
		return fail(c, "attach", rc);
	fprintf(stderr, "sbx-agentctl: attached to %" PRIu32 " at offset %" PRIu64 "%s\n", id, first,
		running ? "" : " (finished)");
	return exec_stream(c, id, 0, -1);
}

/* ---- files ---- */

static ssize_t fd_source(void *opaque, void *buf, size_t cap)
{
	ssize_t n;

	do
		n = read(*(int *)opaque, buf, cap);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int fd_sink(void *opaque, const void *buf, size_t n)
{
	return agent_client_write_all(*(int *)opaque, buf, n);
}

static int cmd_put(struct agent_client *c, int argc, char **argv)
{
	int fd, rc, mode = -1;
	uint64_t written = 0;
	struct stat st;

	if (argc < 2)
		return usage();
	fd = strcmp(argv[0], "-") ? open(argv[0], O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0)
		return perror(argv[0]), 1;
	if (argc > 2)
		mode = (int)strtol(argv[2], NULL, 8);
	else if (fd > 0 && fstat(fd, &st) == 0)
		mode = (int)(st.st_mode & 07777);
	rc = agent_client_put(c, argv[1], mode, fd_source, &fd, &written);
	if (rc < 0)
		return fail(c, "put", rc);
	fprintf(stderr, "sbx-agentctl: wrote %" PRIu64 " bytes\n", written);
	return 0;
}

static int cmd_get(struct agent_client *c, int argc, char **argv)
{
	int fd, rc;
	uint64_t size = 0;

	if (argc < 2)
		return usage();
	fd = strcmp(argv[1], "-") ? open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 1;
	if (fd < 0)
		return perror(argv[1]), 1;
	rc = agent_client_get(c, argv[0], fd_sink, &fd, &size);
	if (rc < 0)
		return fail(c, "get", rc);
	fprintf(stderr, "sbx-agentctl: read %" PRIu64 " bytes\n", size);
	return 0;
}

static void print_stat(const struct agent_stat *st)
{
	printf("%06o %u %u %" PRIu64 " %" PRIu64 " %s\n", st->mode, st->uid, st->gid, st->size,
	       (uint64_t)(st->mtime_ns / 1000000000ULL), st->name);
}

static int list_entry(void *opaque, const struct agent_stat *st)
{
	(void)opaque;
	print_stat(st);
	return 0;
}

static int cmd_meta(struct agent_client *c, const char *cmd, int argc, char **argv)
{
	int flag = argc > 1 && (!strcmp(argv[0], "-p") || !strcmp(argv[0], "-r"));
	const char *path = argc ? argv[argc - 1] : NULL;
	struct agent_stat st;
	long rc;

	if (!path)
		return usage();
	if (!strcmp(cmd, "stat")) {
		rc = agent_client_stat(c, path, &st);
		if (rc == 0)
			print_stat(&st);
	} else if (!strcmp(cmd, "ls"))
		rc = agent_client_list(c, path, list_entry, NULL);
	else if (!strcmp(cmd, "mkdir"))
		rc = agent_client_mkdir(c, path, 0755, flag);
	else if (!strcmp(cmd, "rm"))
		rc = agent_client_remove(c, path, flag);
	else if (!strcmp(cmd, "chmod") && argc == 2)
		rc = agent_client_chmod(c, path, (unsigned)strtoul(argv[0], NULL, 8));
	else if (!strcmp(cmd, "chown") && argc == 3)
		rc = agent_client_chown(c, path, strtol(argv[0], NULL, 10), strtol(argv[1], NULL, 10));
	else
		return usage();
	return rc < 0 ? fail(c, cmd, (int)rc) : 0;
}

/* ---- tunnel ---- */

static int cmd_tunnel(struct agent_client *c, int argc, char **argv)
{
	uint8_t buf[65536];
	int rc, in_open = 1;

	if (argc < 1)
		return usage();
	rc = agent_client_tunnel(c, (unsigned)strtoul(argv[0], NULL, 10));
	if (rc < 0)
		return fail(c, "tunnel", rc);
	if (agent_client_write_all(1, c->rbuf + c->roff, c->rlen - c->roff) < 0)
		return 1;
	for (;;) {
		struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN },
				       { .fd = in_open ? 0 : -1, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents) {
			n = read(c->fd, buf, sizeof(buf));
			if (n <= 0)
				return n < 0;
			if (agent_client_write_all(1, buf, (size_t)n) < 0)
				return 1;
		}
		if (p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				in_open = 0;
				shutdown(c->fd, SHUT_WR);
			} else if (agent_client_write_all(c->fd, buf, (size_t)n) < 0)
				return 1;
		}
	}
}

/* ---- system ---- */

static int cmd_info(struct agent_client *c)
{
	struct agent_info i;
	int rc = agent_client_info(c, &i);

	if (rc < 0)
		return fail(c, "info", rc);
	printf("version %u\nhostname %s\nkernel %s\nuptime_ms %" PRIu64 "\nncpu %u\n"
	       "mem_total %" PRIu64 "\nmem_avail %" PRIu64 "\ncommands %u\n",
	       i.version, i.hostname, i.kernel, i.uptime_ms, i.ncpu, i.mem_total, i.mem_avail,
	       i.commands);
	return 0;
}

static int cmd_entropy(struct agent_client *c, int argc, char **argv)
{
	uint8_t seed[4096];
	size_t n = argc ? strtoul(argv[0], NULL, 10) : 64;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), rc;

	if (n > sizeof(seed))
		n = sizeof(seed);
	if (fd < 0 || read(fd, seed, n) != (ssize_t)n)
		return perror("/dev/urandom"), 1;
	close(fd);
	rc = agent_client_entropy(c, seed, n);
	return rc < 0 ? fail(c, "entropy", rc) : 0;
}

static int cmd_system(struct agent_client *c, const char *cmd, int argc, char **argv)
{
	struct timespec ts;
	int rc;

	if (!strcmp(cmd, "ping"))
		rc = agent_client_ping(c);
	else if (!strcmp(cmd, "sync"))
		rc = agent_client_sync(c);
	else if (!strcmp(cmd, "shutdown"))
		rc = agent_client_shutdown(c);
	else if (!strcmp(cmd, "freeze") && argc)
		rc = agent_client_freeze(c, argv[0]);
	else if (!strcmp(cmd, "thaw") && argc)
		rc = agent_client_thaw(c, argv[0]);
	else if (!strcmp(cmd, "clock")) {
		clock_gettime(CLOCK_REALTIME, &ts);
		rc = agent_client_clock_set(c, argc ? strtoull(argv[0], NULL, 10) :
					    (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
	} else
		return usage();
	return rc < 0 ? fail(c, cmd, rc) : 0;
}

static int run(struct agent_client *c, const char *cmd, int argc, char **argv)
{
	if (!strcmp(cmd, "exec"))
		return cmd_exec(c, argc, argv);
	if (!strcmp(cmd, "attach"))
		return cmd_attach(c, argc, argv);
	if (!strcmp(cmd, "put"))
		return cmd_put(c, argc, argv);
	if (!strcmp(cmd, "get"))
		return cmd_get(c, argc, argv);
	if (!strcmp(cmd, "tunnel"))
		return cmd_tunnel(c, argc, argv);
	if (!strcmp(cmd, "info"))
		return cmd_info(c);
	if (!strcmp(cmd, "entropy"))
		return cmd_entropy(c, argc, argv);
	if (!strcmp(cmd, "stat") || !strcmp(cmd, "ls") || !strcmp(cmd, "mkdir") ||
	    !strcmp(cmd, "rm") || !strcmp(cmd, "chmod") || !strcmp(cmd, "chown"))
		return cmd_meta(c, cmd, argc, argv);
	return cmd_system(c, cmd, argc, argv);
}

int main(int argc, char **argv)
{
	const char *unix_path = NULL, *vsock_path = NULL;
	unsigned port = AGENT_VSOCK_PORT;
	struct agent_client c;
	int i, fd, rc;

	for (i = 1; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (!strcmp(argv[i], "--unix"))
			unix_path = argv[i + 1];
		else if (!strcmp(argv[i], "--vsock-uds"))
			vsock_path = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else
			return usage();
	}
	if (i >= argc || !!unix_path == !!vsock_path)
		return usage();
	fd = unix_path ? agent_client_connect_unix(unix_path)
		       : agent_client_connect_vsock_uds(vsock_path, port);
	if (fd < 0) {
		fprintf(stderr, "sbx-agentctl: connect %s: %s\n", unix_path ? unix_path : vsock_path,
			strerror(-fd));
		return 1;
	}
	rc = agent_client_init(&c, fd);
	if (rc < 0) {
		fprintf(stderr, "sbx-agentctl: handshake: %s: %s\n", strerror(-rc), c.error);
		return 1;
	}
	rc = run(&c, argv[i], argc - i - 1, argv + i + 1);
	agent_client_close(&c);
	return rc;
}
