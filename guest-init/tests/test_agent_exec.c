/* exec over a live agent: output and exit codes, env/cwd/user, stdin with EOF and
 * backpressure, signals, timeouts, bad requests, 100 concurrent commands, PTYs with resize,
 * re-attach after the client went away, kill-on-disconnect, idle timeout, exit TTL. */
#include <pwd.h>
#include <stdint.h>

#include "../agent_testutil.h"

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct test_run run; /* large: kept off the stack */

static void test_basic(struct test_agent *a)
{
	test_run_argv(a, ARGV("sh", "-c", "echo out; echo err >&2; exit 3"), &run);
	CHECK(!strcmp(run.out, "out\n") && !strcmp(run.err, "err\n"));
	CHECK(run.exit.exit_code == 3 && run.exit.signal == 0 && !run.exit.timed_out);

	test_run_argv(a, ARGV("sh", "-c", "kill -TERM $$"), &run);
	CHECK(run.exit.signal == SIGTERM && run.exit.exit_code == -1);

	/* big output passes through the bounded buffer (1 MiB default) with backpressure */
	test_run_argv(a, ARGV("sh", "-c", "head -c 5000000 /dev/zero"), &run);
	CHECK(run.total == 5000000 && run.exit.exit_code == 0);
}

static void test_options(struct test_agent *a)
{
	struct agent_exec_opts o = {
		.argv = ARGV("sh", "-c", "echo $FOO:$HOME:$(pwd):$(id -u)"),
		.envp = ARGV("FOO=bar", "HOME=/h"),
		.cwd = "/tmp",
		.no_stdin = 1,
	};
	struct agent_client c;
	struct passwd *pw = getpwnam("nobody");
	char want[128];
	uint32_t id;

	test_client(a, &c);
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	CHECK_RC(&c, test_collect(&c, &run));
	snprintf(want, sizeof(want), "bar:/h:/tmp:%u\n", (unsigned)getuid());
	CHECK(!strcmp(run.out, want));
	if (pw && getuid() == 0) {
		o.argv = ARGV("sh", "-c", "id -u; echo $HOME");
		o.envp = NULL;
		o.cwd = "/";
		o.user = "nobody";
		memset(&run, 0, sizeof(run));
		CHECK_RC(&c, agent_client_exec(&c, &o, &id));
		CHECK_RC(&c, test_collect(&c, &run));
		snprintf(want, sizeof(want), "%u\n%s\n", (unsigned)pw->pw_uid, pw->pw_dir);
		CHECK(!strcmp(run.out, want));
	}
	if (getuid() == 0 && !getpwuid(54321)) { /* a uid with no passwd entry */
		o.argv = ARGV("sh", "-c", "id -u; id -g; echo $HOME");
		o.envp = NULL;
		o.cwd = "/";
		o.user = "54321";
		memset(&run, 0, sizeof(run));
		CHECK_RC(&c, agent_client_exec(&c, &o, &id));
		CHECK_RC(&c, test_collect(&c, &run));
		CHECK(!strcmp(run.out, "54321\n54321\n/\n"));
	}
	/* errors are replies; the connection stays usable */
	o.user = NULL;
	o.argv = ARGV("/nonexistent/program");
	CHECK(agent_client_exec(&c, &o, &id) == -ENOENT && strstr(c.error, "nonexistent"));
	o.argv = ARGV("true");
	o.cwd = "/nonexistent/dir";
	CHECK(agent_client_exec(&c, &o, &id) == -ENOENT);
	o.cwd = NULL;
	o.user = "no-such-user-sbx";
	CHECK(agent_client_exec(&c, &o, &id) == -ENOENT);
	o.user = NULL;
	o.argv = ARGV(NULL);
	CHECK(agent_client_exec(&c, &o, &id) == -EINVAL);
	CHECK_RC(&c, agent_client_ping(&c));
	agent_client_close(&c);
}

/* 2 MiB through cat: stdin is written as the command reads it, output streams back. */
static void test_stdin(struct test_agent *a)
{
	static uint8_t chunk[65536];
	struct agent_exec_opts o = { .argv = ARGV("sh", "-c", "cat | wc -c") };
	struct agent_client c;
	uint32_t id;

	memset(chunk, 'x', sizeof(chunk));
	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	for (int i = 0; i < 32; i++)
		CHECK_RC(&c, agent_client_exec_stdin(&c, id, chunk, sizeof(chunk)));
	CHECK_RC(&c, agent_client_exec_stdin_eof(&c, id));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(atol(run.out) == 32 * 65536 && run.exit.exit_code == 0);
	agent_client_close(&c);
}

static void test_signal_timeout(struct test_agent *a)
{
	struct agent_exec_opts o = { .argv = ARGV("sleep", "30"), .no_stdin = 1 };
	struct agent_client c;
	uint64_t t0;
	uint32_t id;

	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	CHECK_RC(&c, agent_client_exec_signal(&c, id, SIGINT));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(run.exit.signal == SIGINT);

	o.timeout_ms = 200;
	t0 = test_now_ms();
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(run.exit.signal == SIGKILL && run.exit.timed_out);
	CHECK(test_now_ms() - t0 < 10000);
	agent_client_close(&c);
}

/* 100 commands at once, each on its own connection, all running together. */
static void test_concurrent(struct test_agent *a)
{
	enum { N = 100 };
	static struct agent_client cs[N];
	struct agent_exec_opts o = { .argv = ARGV("sh", "-c", "read x; echo $x$x") };
	char line[32];
	uint32_t ids[N];

	for (int i = 0; i < N; i++) {
		test_client(a, &cs[i]);
		CHECK_RC(&cs[i], agent_client_exec(&cs[i], &o, &ids[i]));
	}
	/* all are started (each waits for its line) before any finishes */
	for (int i = 0; i < N; i++) {
		int n = snprintf(line, sizeof(line), "c%d\n", i);

		CHECK_RC(&cs[i], agent_client_exec_stdin(&cs[i], ids[i], line, (size_t)n));
	}
	for (int i = N - 1; i >= 0; i--) {
		memset(&run, 0, sizeof(run));
		CHECK_RC(&cs[i], test_collect(&cs[i], &run));
		snprintf(line, sizeof(line), "c%dc%d\n", i, i);
		CHECK(!strcmp(run.out, line) && run.exit.exit_code == 0);
		for (int j = 0; j < i; j++)
			CHECK(ids[j] != ids[i]);
		agent_client_close(&cs[i]);
	}
}

/* Reads events until the accumulated stdout contains want. */
static void read_until(struct agent_client *c, const char *want)
{
	struct agent_exec_event ev;

	memset(&run, 0, sizeof(run));
	while (!strstr(run.out, want)) {
		CHECK_RC(c, agent_client_exec_next(c, &ev));
		CHECK(ev.type == AGENT_STDOUT || ev.type == AGENT_STDERR);
		if (run.out_len + ev.len < sizeof(run.out)) {
			memcpy(run.out + run.out_len, ev.data, ev.len);
			run.out_len += ev.len;
			run.out[run.out_len] = 0;
		}
		run.total += ev.len;
	}
}

static void test_pty(struct test_agent *a)
{
	struct agent_exec_opts o = {
		.argv = ARGV("sh", "-c", "tty; stty size; echo ready; read x; stty size; exit 7"),
		.pty = 1, .rows = 30, .cols = 100,
	};
	struct agent_client c;
	uint32_t id;

	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	read_until(&c, "ready");
	CHECK(strstr(run.out, "/dev/pts/") && strstr(run.out, "30 100"));
	CHECK_RC(&c, agent_client_exec_resize(&c, id, 50, 132));
	CHECK_RC(&c, agent_client_exec_stdin(&c, id, "go\n", 3));
	read_until(&c, "50 132");
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(run.exit.exit_code == 7);

	/* STDIN_EOF on a PTY ends cat */
	o.argv = ARGV("cat");
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	CHECK_RC(&c, agent_client_exec_stdin(&c, id, "hello\n", 6));
	read_until(&c, "hello");
	CHECK_RC(&c, agent_client_exec_stdin_eof(&c, id));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	if (run.exit.exit_code != 0)
		fprintf(stderr, "cat: code %d signal %d out '%s'\n", run.exit.exit_code, run.exit.signal, run.out);
	CHECK(run.exit.exit_code == 0);
	agent_client_close(&c);
}

/* Attach, retrying while the old connection's hang-up is still in flight. */
static int attach_retry(struct test_agent *a, struct agent_client *c, uint32_t id, uint64_t off,
			uint64_t *first, int *running)
{
	uint64_t deadline = test_now_ms() + 20000;
	int rc;

	test_client(a, c);
	while ((rc = agent_client_attach(c, id, off, first, running)) == -EBUSY &&
	       test_now_ms() < deadline)
		test_nap(5);
	return rc;
}

static void test_reattach(struct test_agent *a)
{
	struct agent_exec_opts o = { .argv = ARGV("sh", "-c", "echo first; read x; echo second $x") };
	struct agent_client c;
	uint64_t first, seen;
	int running;
	uint32_t id;

	/* a running command: the client goes away, a new one resumes where it stopped */
	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	read_until(&c, "first\n");
	seen = run.total;
	agent_client_close(&c);
	CHECK_RC(&c, attach_retry(a, &c, id, seen, &first, &running));
	CHECK(first == seen && running);
	CHECK_RC(&c, agent_client_exec_stdin(&c, id, "again\n", 6));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(!strcmp(run.out, "second again\n") && run.exit.exit_code == 0);
	agent_client_close(&c);

	/* from offset 0 the whole history replays, then the exit status (finished command) */
	CHECK_RC(&c, attach_retry(a, &c, id, 0, &first, &running));
	CHECK(first == 0 && !running);
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(!strcmp(run.out, "first\nsecond again\n") && run.exit.exit_code == 0);
	/* a second client cannot attach while one is */
	agent_client_close(&c);

	/* the client leaves before reading anything of a command that then finishes */
	o.argv = ARGV("sh", "-c", "echo done; exit 5");
	o.no_stdin = 1;
	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	agent_client_close(&c);
	CHECK_RC(&c, attach_retry(a, &c, id, 0, &first, &running));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(!strcmp(run.out, "done\n") && run.exit.exit_code == 5);
	CHECK(agent_client_attach(&c, 999999, 0, NULL, NULL) == -ESRCH);
	agent_client_close(&c);
}

/* Output keeps its order and completeness across detach: with nobody reading, the command
 * is paused once max_output bytes wait, and resumes when a client re-attaches. Reading
 * everything and re-attaching from 0 replays only the retained history. */
static void test_detached_output(struct test_agent *a)
{
	struct agent_exec_opts o = { .argv = ARGV("head", "-c", "20000000", "/dev/zero"),
				     .no_stdin = 1 };
	struct agent_client c;
	uint64_t first = 1;
	uint32_t id;

	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	agent_client_close(&c);
	CHECK_RC(&c, attach_retry(a, &c, id, 0, &first, NULL));
	CHECK(first == 0);
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(run.total == 20000000 && run.exit.exit_code == 0);
	agent_client_close(&c);

	CHECK_RC(&c, attach_retry(a, &c, id, 0, &first, NULL));
	CHECK(first > 0 && first < 20000000);
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(first + run.total == 20000000);
	printf("history kept after exit: %llu bytes\n", (unsigned long long)run.total);
	CHECK(run.total <= (1 << 20) + 65536);
	agent_client_close(&c);
}

/* DROP_UNREAD (a service nobody watches): with no client the command is never paused;
 * it runs to its end and only the newest output is kept for a re-attach. */
static void test_detached_drop(struct test_agent *a)
{
	struct agent_exec_opts o = { .argv = ARGV("head", "-c", "20000000", "/dev/zero"),
				     .no_stdin = 1, .drop_unread = 1 };
	struct agent_client c;
	uint64_t first = 0, deadline = test_now_ms() + 20000;
	int running = 1;
	uint32_t id;

	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	agent_client_close(&c);
	/* paused, it would still run (1 MiB out of 20 MB) however long we wait */
	while (running && test_now_ms() < deadline) {
		test_nap(200);
		CHECK_RC(&c, attach_retry(a, &c, id, UINT64_MAX, &first, &running));
		agent_client_close(&c);
	}
	CHECK(!running);
	CHECK_RC(&c, attach_retry(a, &c, id, 0, &first, NULL));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(first > 0 && first + run.total == 20000000 && run.exit.exit_code == 0);
	CHECK(run.total <= (1 << 20) + 65536);
	agent_client_close(&c);
}

static void test_busy_attach(struct test_agent *a)
{
	struct agent_exec_opts o = { .argv = ARGV("sleep", "30"), .no_stdin = 1 };
	struct agent_client c, d;
	uint32_t id;

	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	test_client(a, &d);
	CHECK(agent_client_attach(&d, id, 0, NULL, NULL) == -EBUSY);
	CHECK_RC(&c, agent_client_exec_signal(&c, id, SIGKILL));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(run.exit.signal == SIGKILL);
	agent_client_close(&c);
	agent_client_close(&d);
}

/* Starts sh printing its pid, then exec'ing sleep; returns the pid. */
static pid_t start_sleeper(struct test_agent *a, struct agent_client *c, struct agent_exec_opts *o,
			   uint32_t *id)
{
	o->argv = ARGV("sh", "-c", "echo pid $$; exec sleep 30");
	o->no_stdin = 1;
	test_client(a, c);
	CHECK_RC(c, agent_client_exec(c, o, id));
	read_until(c, "\n");
	return (pid_t)atoi(run.out + 4);
}

static void wait_gone(pid_t pid)
{
	uint64_t deadline = test_now_ms() + 20000;

	while (kill(pid, 0) == 0 && test_now_ms() < deadline)
		test_nap(10);
	CHECK(kill(pid, 0) < 0 && errno == ESRCH);
}

static void test_disconnect_policies(struct test_agent *a)
{
	struct agent_exec_opts o = { .kill_on_disconnect = 1 };
	struct agent_client c;
	int running = 1;
	uint32_t id;
	pid_t pid;

	pid = start_sleeper(a, &c, &o, &id);
	CHECK(pid > 1);
	agent_client_close(&c);
	wait_gone(pid); /* killed and reaped by the agent */
	CHECK_RC(&c, attach_retry(a, &c, id, 0, NULL, &running));
	CHECK(!running);
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	CHECK(run.exit.signal == SIGKILL);
	agent_client_close(&c);

	o = (struct agent_exec_opts){ .idle_timeout_ms = 200 };
	pid = start_sleeper(a, &c, &o, &id);
	agent_client_close(&c);
	wait_gone(pid);
}

/* With a short TTL, a finished command that nobody attaches to is forgotten. */
static void test_ttl(void)
{
	struct agent_config cfg = { .exit_ttl_ms = 100, .max_output = 4096 };
	struct agent_exec_opts o = { .argv = ARGV("true"), .no_stdin = 1 };
	struct test_agent a;
	struct agent_client c;
	uint64_t deadline;
	uint32_t id;
	int rc;

	test_agent_start(&a, &cfg);
	test_run_argv(&a, ARGV("sh", "-c", "head -c 300000 /dev/urandom | od | tail -n 1"), &run);
	CHECK(run.exit.exit_code == 0 && run.out_len > 0); /* 4 KiB history, still all output */
	test_client(&a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	memset(&run, 0, sizeof(run));
	CHECK_RC(&c, test_collect(&c, &run));
	deadline = test_now_ms() + 20000;
	while ((rc = agent_client_attach(&c, id, 0, NULL, NULL)) == 0 && test_now_ms() < deadline) {
		CHECK_RC(&c, test_collect(&c, &run)); /* the exit again; the TTL restarts */
		test_nap(300);
	}
	CHECK(rc == -ESRCH);
	agent_client_close(&c);
	test_agent_stop(&a);
}

int main(void)
{
	struct test_agent a;

	test_agent_start(&a, NULL);
	test_basic(&a);
	test_options(&a);
	test_stdin(&a);
	test_signal_timeout(&a);
	test_concurrent(&a);
	test_pty(&a);
	test_reattach(&a);
	test_busy_attach(&a);
	test_detached_output(&a);
	test_detached_drop(&a);
	test_disconnect_policies(&a);
	test_agent_stop(&a);
	printf("agent peak RSS (with its children, ASan): %ld KiB\n", a.ru.ru_maxrss);
	test_ttl();
	printf("ok\n");
	return 0;
}
