/* sbx-agentctl against a live agent, directly (--unix) and through a stand-in for the
 * VMM's vsock bridge (--vsock-uds: "CONNECT <port>\n" -> "OK <n>\n", then bytes flow):
 * exec (exit status, stdin), put/get, metadata commands, tunnel over stdio, shutdown. */
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "../agent_testutil.h"

static char ctl[1024], agent_sock[100], bridge_sock[100], dir[64];

/* build/tests/guest-init/test_agent_ctl -> build/bin/sbx-agentctl */
static int find_ctl(void)
{
	ssize_t n = readlink("/proc/self/exe", ctl, sizeof(ctl) - 64);

	if (n <= 0)
		return -1;
	ctl[n] = 0;
	for (int i = 0; i < 3; i++)
		*strrchr(ctl, '/') = 0;
	strcat(ctl, "/bin/sbx-agentctl");
	return access(ctl, X_OK);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CHECK(listen(fd, 16) == 0);
	return fd;
}

/* Copies both ways until both directions ended. */
static void splice_both(int a, int b)
{
	int open_ab = 1, open_ba = 1;
	char buf[65536];

	while (open_ab || open_ba) {
		struct pollfd p[2] = { { .fd = open_ab ? a : -1, .events = POLLIN },
				       { .fd = open_ba ? b : -1, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0)
			return;
		for (int i = 0; i < 2; i++) {
			int from = i ? b : a, to = i ? a : b, *open = i ? &open_ba : &open_ab;

			if (!p[i].revents)
				continue;
			n = read(from, buf, sizeof(buf));
			if (n <= 0 || write(to, buf, (size_t)n) != n) {
				shutdown(to, SHUT_WR);
				*open = 0;
			}
		}
	}
}

/* The bridge: port 52 goes to the agent, anything else is refused (connection closed). */
static void bridge_conn(int fd)
{
	char line[64];
	size_t n = 0;
	int up;

	while (n + 1 < sizeof(line) && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = 0;
	if (strcmp(line, "CONNECT 52"))
		_exit(0);
	up = agent_client_connect_unix(agent_sock);
	if (up < 0 || write(fd, "OK 1024\n", 8) != 8)
		_exit(1);
	splice_both(fd, up);
	_exit(0);
}

static pid_t start_bridge(void)
{
	int lfd = listen_unix(bridge_sock);
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGCHLD, SIG_IGN);
		for (;;) {
			int fd = accept(lfd, NULL, NULL);

			if (fd >= 0 && fork() == 0)
				bridge_conn(fd);
			if (fd >= 0)
				close(fd);
		}
	}
	close(lfd);
	return pid;
}

/* One-shot TCP echo server on loopback; returns its port. */
static pid_t start_echo(unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0);
	CHECK(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);
		char buf[4096];
		ssize_t n;

		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			if (write(fd, buf, (size_t)n) != n)
				break;
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* Runs a shell command line; returns its exit status, output in out. */
static int sh(char *out, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	FILE *p;
	size_t n;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(NULL);
	p = popen(cmd, "r");
	CHECK(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

int main(void)
{
	struct test_agent a;
	char out[65536];
	static char via_unix[1200], via_bridge[1200];
	unsigned port;
	pid_t bridge, echo;
	int status;

	if (find_ctl() < 0) {
		printf("sbx-agentctl not built: skipped\n");
		return 77;
	}
	test_agent_start(&a, NULL);
	snprintf(dir, sizeof(dir), "%s", a.dir);
	snprintf(agent_sock, sizeof(agent_sock), "%s", a.sock);
	snprintf(bridge_sock, sizeof(bridge_sock), "%s/vm.sock", dir);
	bridge = start_bridge();
	snprintf(via_unix, sizeof(via_unix), "%s --unix %s", ctl, agent_sock);
	snprintf(via_bridge, sizeof(via_bridge), "%s --vsock-uds %s --port 52", ctl, bridge_sock);

	CHECK(sh(out, sizeof(out), "%s exec --no-stdin -- sh -c 'echo hi; exit 3' 2>/dev/null",
		 via_unix) == 3 && !strcmp(out, "hi\n"));
	CHECK(sh(out, sizeof(out), "echo data | %s exec -- cat 2>/dev/null", via_bridge) == 0 &&
	      !strcmp(out, "data\n"));
	CHECK(sh(out, sizeof(out), "%s exec --no-stdin -- sh -c 'kill -9 $$' 2>/dev/null",
		 via_bridge) == 128 + 9);
	CHECK(sh(out, sizeof(out), "%s exec -- /nonexistent 2>&1", via_unix) == 1 &&
	      strstr(out, "No such file"));
	/* attach replays a finished command's output and status */
	CHECK(sh(out, sizeof(out), "%s exec --no-stdin -- sh -c 'echo one; exit 4' 2>&1 >/dev/null",
		 via_unix) == 4);
	{
		char *p = strstr(out, "command id ");
		unsigned id;

		CHECK(p && sscanf(p, "command id %u", &id) == 1);
		CHECK(sh(out, sizeof(out), "%s attach %u 2>/dev/null", via_bridge, id) == 4 &&
		      !strcmp(out, "one\n"));
		CHECK(sh(out, sizeof(out), "%s attach %u 2 2>/dev/null", via_bridge, id) == 4 &&
		      !strcmp(out, "e\n"));
	}
	/* a port the bridge refuses */
	CHECK(sh(out, sizeof(out), "%s --vsock-uds %s --port 53 ping 2>&1", ctl, bridge_sock) == 1);

	/* files: up through the bridge, back directly, compared */
	CHECK(sh(out, sizeof(out), "head -c 300000 /dev/urandom > %s/src && %s put %s/src %s/dst 0600 "
		 "2>/dev/null && %s get %s/dst %s/back 2>/dev/null && cmp %s/src %s/back && echo same",
		 dir, via_bridge, dir, dir, via_unix, dir, dir, dir, dir) == 0 && !strcmp(out, "same\n"));
	CHECK(sh(out, sizeof(out), "%s stat %s/dst", via_unix, dir) == 0 &&
	      !strncmp(out, "100600 ", 7) && strstr(out, " 300000 "));
	CHECK(sh(out, sizeof(out), "%s mkdir -p %s/x/y && %s ls %s/x", via_unix, dir, via_unix, dir) ==
	      0 && strstr(out, " y\n"));
	CHECK(sh(out, sizeof(out), "%s rm -r %s/x && %s stat %s/x 2>&1", via_unix, dir, via_unix,
		 dir) == 1 && strstr(out, "No such file"));
	CHECK(sh(out, sizeof(out), "%s info", via_bridge) == 0 && strstr(out, "version 1\n"));
	CHECK(sh(out, sizeof(out), "%s ping && %s sync && %s entropy 32", via_unix, via_unix,
		 via_unix) == 0);

	/* tunnel over stdio: stdin to the guest port, its answer to stdout */
	echo = start_echo(&port);
	CHECK(sh(out, sizeof(out), "printf 'through the tunnel' | %s tunnel %u", via_bridge, port) ==
	      0 && !strcmp(out, "through the tunnel"));
	CHECK(waitpid(echo, &status, 0) == echo);

	CHECK(sh(out, sizeof(out), "%s shutdown", via_unix) == 0);
	CHECK(waitpid(a.pid, &status, 0) == a.pid && WIFEXITED(status) && WEXITSTATUS(status) == 42);
	kill(bridge, SIGKILL);
	waitpid(bridge, NULL, 0);
	sh(out, sizeof(out), "rm -rf %s", dir);
	printf("ok\n");
	return 0;
}
