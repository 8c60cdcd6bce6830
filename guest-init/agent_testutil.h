/* Helpers for the agent's host unit tests (guest-init/tests/test_agent*.c): run the agent
 * as an ordinary child process on a Unix socket and talk to it with api/agent_client.c
 * (linked in by api/agent_client.mk). Header-only, static: each test is one binary. */
#ifndef SBX_GUEST_AGENT_TESTUTIL_H
#define SBX_GUEST_AGENT_TESTUTIL_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../api/agent_client.h"
#include "agent.h"

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                         \
		}                                                                        \
	} while (0)

/* rc is 0 or negative errno; prints the agent's message on failure. */
#define CHECK_RC(c, expr)                                                                \
	do {                                                                             \
		int rc_ = (int)(expr);                                                   \
		if (rc_ < 0) {                                                           \
			fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #expr,   \
				strerror(-rc_), (c)->error);                             \
			exit(1);                                                         \
		}                                                                        \
	} while (0)

struct test_agent {
	pid_t pid;
	char dir[64];
	char sock[100];
	struct rusage ru; /* filled by test_agent_stop */
};

static inline uint64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds: only between polls of a condition, never as a synchronisation. */
static inline void test_nap(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Forks an agent serving a fresh socket in a temp dir. The socket listens before the
 * fork, so clients can connect at once. A watchdog ends the test if it hangs. */
static inline void test_agent_start(struct test_agent *a, const struct agent_config *cfg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	alarm(55);
	signal(SIGPIPE, SIG_IGN);
	snprintf(a->dir, sizeof(a->dir), "/tmp/sbx-agent-test.XXXXXX");
	CHECK(mkdtemp(a->dir));
	snprintf(a->sock, sizeof(a->sock), "%s/agent.sock", a->dir);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", a->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CHECK(listen(fd, 256) == 0);
	fflush(NULL);
	a->pid = fork();
	CHECK(a->pid >= 0);
	if (a->pid == 0) {
		int rc;

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		rc = agent_serve(fd, cfg);

		exit(rc == AGENT_SERVE_POWEROFF ? 42 : 1); /* exit: LeakSanitizer checks the agent */
	}
	close(fd);
}

static inline int test_connect(struct test_agent *a, struct agent_client *c)
{
	int fd = agent_client_connect_unix(a->sock);

	if (fd < 0)
		return fd;
	return agent_client_init(c, fd);
}

static inline void test_client(struct test_agent *a, struct agent_client *c)
{
	int rc = test_connect(a, c);

	if (rc < 0) {
		fprintf(stderr, "connect to agent: %s\n", strerror(-rc));
		exit(1);
	}
}

/* Asks for SHUTDOWN, checks the agent returned AGENT_SERVE_POWEROFF, cleans up. */
static inline void test_agent_stop(struct test_agent *a)
{
	struct agent_client c;
	int status = 0;

	test_client(a, &c);
	CHECK_RC(&c, agent_client_shutdown(&c));
	agent_client_close(&c);
	CHECK(wait4(a->pid, &status, 0, &a->ru) == a->pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 42) {
		fprintf(stderr, "agent ended with status %#x\n", status);
		exit(1);
	}
	unlink(a->sock);
	rmdir(a->dir);
}

/* Output and exit of one command, collected. */
struct test_run {
	char out[65536], err[65536];
	size_t out_len, err_len;
	uint64_t total;
	struct agent_exec_event exit;
};

/* Reads a command's events until it exits. Returns 0 or -errno. */
static inline int test_collect(struct agent_client *c, struct test_run *r)
{
	struct agent_exec_event ev;

	for (;;) {
		int rc = agent_client_exec_next(c, &ev);

		if (rc < 0)
			return rc;
		if (ev.type == AGENT_EXIT) {
			r->exit = ev;
			return 0;
		}
		char *dst = ev.type == AGENT_STDERR ? r->err : r->out;
		size_t *len = ev.type == AGENT_STDERR ? &r->err_len : &r->out_len;
		size_t room = sizeof(r->out) - 1 - *len;
		size_t n = ev.len < room ? ev.len : room;

		memcpy(dst + *len, ev.data, n);
		*len += n;
		dst[*len] = 0;
		r->total += ev.len;
	}
}

/* Runs argv to completion on a fresh connection. */
static inline void test_run_argv(struct test_agent *a, const char *const *argv, struct test_run *r)
{
	struct agent_exec_opts o = { .argv = argv, .no_stdin = 1 };
	struct agent_client c;
	uint32_t id;

	memset(r, 0, sizeof(*r));
	test_client(a, &c);
	CHECK_RC(&c, agent_client_exec(&c, &o, &id));
	CHECK_RC(&c, test_collect(&c, r));
	agent_client_close(&c);
}

/* A raw connection (no HELLO), for feeding the agent bad bytes. */
static inline int test_raw_connect(struct test_agent *a)
{
	int fd = agent_client_connect_unix(a->sock);

	CHECK(fd >= 0);
	return fd;
}

/* Reads frames from a raw fd until EOF: returns the errno of the first ERROR frame (0 if
 * none) and checks the agent closed the connection. */
static inline int test_expect_error_close(int fd)
{
	struct agent_client c = { .fd = fd };
	struct agent_frame f;
	int err = 0;
	uint32_t e;

	c.rbuf = malloc(AGENT_MAX_FRAME);
	c.msg = malloc(sizeof(*c.msg));
	CHECK(c.rbuf && c.msg);
	for (;;) {
		int rc = agent_client_recv(&c, &f);

		if (rc == -ECONNRESET)
			break;
		CHECK(rc == 0);
		if (f.type == AGENT_ERROR && !err) {
			struct agent_tlv_iter it;
			const uint8_t *v;
			uint16_t tag, n;

			agent_tlv_begin(&it, f.payload, f.len);
			while (agent_tlv_next(&it, &tag, &v, &n) == 1)
				if (tag == AGENT_T_ERRNO && agent_tlv_u32(v, n, &e) == 0)
					err = (int)e;
			CHECK(err);
		}
	}
	agent_client_close(&c);
	return err;
}

#endif
