/* Tunnels over a live agent to a real TCP server on loopback: a banner sent before the
 * client speaks, 4 MiB echoed both ways at once, half-close in each direction, ten tunnels
 * at once, and the errors (refused port, bad port) on a connection that stays usable. */
#include <fcntl.h>
#include <netinet/in.h>

#include "../agent_testutil.h"

#define BANNER "hello from guest\n"

/* Per connection: sends BANNER, then echoes; "quit\n" at the start of a read makes it
 * close first. Runs until killed. */
static void echo_server(int lfd)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char buf[65536];
		ssize_t n;

		if (fd < 0)
			continue;
		if (fork() == 0) {
			CHECK(write(fd, BANNER, strlen(BANNER)) == (ssize_t)strlen(BANNER));
			while ((n = read(fd, buf, sizeof(buf))) > 0) {
				if (n >= 5 && !memcmp(buf, "quit\n", 5))
					break;
				CHECK(write(fd, buf, (size_t)n) == n);
			}
			_exit(0);
		}
		close(fd);
	}
}

static pid_t start_server(unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 64) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGCHLD, SIG_IGN); /* per-connection children reap themselves */
		echo_server(fd);
	}
	close(fd);
	return pid;
}

/* Reads exactly n bytes from the tunnel (bytes that came with the OK first). */
static void tun_read_exact(struct agent_client *c, void *buf, size_t n)
{
	uint8_t *b = buf;
	size_t have = c->rlen - c->roff;

	if (have > n)
		have = n;
	memcpy(b, c->rbuf + c->roff, have);
	c->roff += have;
	while (have < n) {
		ssize_t r = read(c->fd, b + have, n - have);

		CHECK(r > 0);
		have += (size_t)r;
	}
}

static void open_tunnel(struct test_agent *a, struct agent_client *c, unsigned port)
{
	char banner[sizeof(BANNER) - 1];

	test_client(a, c);
	CHECK_RC(c, agent_client_tunnel(c, port));
	tun_read_exact(c, banner, sizeof(banner));
	CHECK(!memcmp(banner, BANNER, sizeof(banner)));
}

/* Sends size bytes and reads the echo concurrently (poll), then half-closes and expects
 * the server's EOF. */
static void echo_bulk(struct agent_client *c, size_t size, unsigned seed)
{
	static uint8_t out[65536], in[65536];
	size_t sent = 0, got = 0;
	int shut = 0;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 31 + seed);
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	while (got < size || !shut) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN | (sent < size ? POLLOUT : 0) };
		ssize_t n;

		if (sent == size && !shut) {
			CHECK(shutdown(c->fd, SHUT_WR) == 0);
			shut = 1;
		}
		CHECK(poll(&p, 1, 20000) == 1);
		if (p.revents & POLLOUT) {
			size_t want = size - sent < sizeof(out) ? size - sent : sizeof(out);
			size_t off = sent % sizeof(out);

			if (want > sizeof(out) - off)
				want = sizeof(out) - off;
			n = write(c->fd, out + off, want);
			CHECK(n > 0 || errno == EAGAIN);
			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			n = read(c->fd, in, sizeof(in));
			CHECK(n > 0 || (n < 0 && errno == EAGAIN));
			for (ssize_t i = 0; i < n; i++)
				CHECK(in[i] == out[(got + (size_t)i) % sizeof(out)]);
			if (n > 0)
				got += (size_t)n;
		}
	}
	fcntl(c->fd, F_SETFL, 0);
	CHECK(read(c->fd, in, 1) == 0); /* the server closed after our EOF */
}

static void test_server_closes_first(struct test_agent *a, unsigned port)
{
	struct agent_client c;
	char buf[8];

	open_tunnel(a, &c, port);
	CHECK(write(c.fd, "ping\n", 5) == 5);
	tun_read_exact(&c, buf, 5);
	CHECK(!memcmp(buf, "ping\n", 5));
	CHECK(write(c.fd, "quit\n", 5) == 5);
	CHECK(read(c.fd, buf, sizeof(buf)) == 0);
	agent_client_close(&c);
}

static void test_errors(struct test_agent *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct agent_client c;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned closed_port;

	/* a port nobody listens on: bind one, read its number, close it */
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	closed_port = ntohs(sa.sin_port);
	close(fd);
	test_client(a, &c);
	CHECK(agent_client_tunnel(&c, closed_port) == -ECONNREFUSED);
	CHECK(agent_client_tunnel(&c, 0) == -EINVAL);
	CHECK(agent_client_tunnel(&c, 70000) == -EINVAL);
	CHECK_RC(&c, agent_client_ping(&c));
	agent_client_close(&c);
}

int main(void)
{
	enum { N = 10 };
	static struct agent_client cs[N];
	struct test_agent a;
	unsigned port;
	pid_t server;

	server = start_server(&port);
	test_agent_start(&a, NULL);
	open_tunnel(&a, &cs[0], port);
	echo_bulk(&cs[0], 4 << 20, 1);
	agent_client_close(&cs[0]);
	for (int i = 0; i < N; i++)
		open_tunnel(&a, &cs[i], port);
	for (int i = 0; i < N; i++) {
		echo_bulk(&cs[i], 100000 + (size_t)i * 777, (unsigned)i);
		agent_client_close(&cs[i]);
	}
	test_server_closes_first(&a, port);
	test_errors(&a);
	test_agent_stop(&a);
	kill(server, SIGKILL);
	printf("ok\n");
	return 0;
}
