/* The agent protocol's codec, the handshake, bad input on live connections (bad, oversized
 * and truncated frames: clear error, that connection closed, the others still served), the
 * system requests, agent_main_unix and SHUTDOWN's return code. */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "../agent_testutil.h"

#define MAGIC_TIME_NS 1234567890123456789ULL

static int fake_clock(const struct timespec *ts)
{
	uint64_t ns = (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;

	return ns == MAGIC_TIME_NS ? 0 : -EDOM;
}

static void test_codec(void)
{
	static struct agent_msg m;
	struct agent_frame f;
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t u32;
	uint64_t u64;
	char s[16];
	int len;

	agent_msg_init(&m, AGENT_EXEC, 7);
	agent_msg_u32(&m, AGENT_T_CMD_ID, 0xdeadbeef);
	agent_msg_u64(&m, AGENT_T_OFFSET, 1ULL << 40);
	agent_msg_str(&m, AGENT_T_PATH, "/tmp");
	agent_msg_flag(&m, AGENT_T_PTY);
	len = agent_msg_finish(&m);
	CHECK(len == AGENT_HDR_SIZE + 8 + 12 + 8 + 4);
	for (int i = 0; i < len; i++) /* every prefix is incomplete, never an error */
		CHECK(agent_frame_parse(m.buf, (size_t)i, &f) == -2);
	CHECK(agent_frame_parse(m.buf, (size_t)len, &f) == len);
	CHECK(f.type == AGENT_EXEC && f.id == 7 && f.len == (uint32_t)len - AGENT_HDR_SIZE);
	agent_tlv_begin(&it, f.payload, f.len);
	CHECK(agent_tlv_next(&it, &tag, &v, &n) == 1 && tag == AGENT_T_CMD_ID);
	CHECK(agent_tlv_u32(v, n, &u32) == 0 && u32 == 0xdeadbeef);
	CHECK(agent_tlv_u64(v, n, &u64) == -1);
	CHECK(agent_tlv_next(&it, &tag, &v, &n) == 1 && agent_tlv_u64(v, n, &u64) == 0);
	CHECK(u64 == 1ULL << 40);
	CHECK(agent_tlv_next(&it, &tag, &v, &n) == 1 && agent_tlv_str(v, n, s, sizeof(s)) == 0);
	CHECK(!strcmp(s, "/tmp") && agent_tlv_str(v, n, s, 4) == -1);
	CHECK(agent_tlv_next(&it, &tag, &v, &n) == 1 && tag == AGENT_T_PTY && n == 0);
	CHECK(agent_tlv_next(&it, &tag, &v, &n) == 0);
	/* a truncated attribute */
	agent_tlv_begin(&it, f.payload, f.len - 1);
	for (int i = 0; i < 3; i++)
		CHECK(agent_tlv_next(&it, &tag, &v, &n) == 1);
	CHECK(agent_tlv_next(&it, &tag, &v, &n) == -1);
	/* an embedded NUL */
	CHECK(agent_tlv_str((const uint8_t *)"a\0b", 3, s, sizeof(s)) == -1);
	/* oversized and flagged headers */
	agent_frame_header(m.buf, AGENT_DATA, 0, AGENT_MAX_PAYLOAD + 1);
	CHECK(agent_frame_parse(m.buf, AGENT_HDR_SIZE, &f) == -1);
	agent_frame_header(m.buf, AGENT_DATA, 0, 0);
	m.buf[2] = 1;
	CHECK(agent_frame_parse(m.buf, AGENT_HDR_SIZE, &f) == -1);
	/* overflow is sticky and reported */
	static uint8_t big[4000];

	agent_msg_init(&m, AGENT_EXEC, 0);
	for (int i = 0; i < 20; i++)
		agent_msg_put(&m, AGENT_T_ARG, big, sizeof(big));
	CHECK(agent_msg_finish(&m) == -1);
}

static void send_raw(int fd, const void *p, size_t n)
{
	CHECK(write(fd, p, n) == (ssize_t)n);
}

static int hello_frame(uint8_t *buf, uint32_t version)
{
	static struct agent_msg m;

	agent_msg_init(&m, AGENT_HELLO, 0);
	agent_msg_u32(&m, AGENT_T_VERSION, version);
	memcpy(buf, m.buf, (size_t)agent_msg_finish(&m));
	return (int)m.len;
}

/* Each bad connection gets an ERROR with the right errno and is closed. */
static void test_bad_frames(struct test_agent *a)
{
	uint8_t buf[256];
	int fd, n;

	fd = test_raw_connect(a); /* a request before HELLO */
	agent_frame_header(buf, AGENT_PING, 0, 0);
	send_raw(fd, buf, AGENT_HDR_SIZE);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* a version the agent does not speak */
	send_raw(fd, buf, (size_t)hello_frame(buf, 99));
	CHECK(test_expect_error_close(fd) == EPROTONOSUPPORT);

	fd = test_raw_connect(a); /* an oversized frame */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, AGENT_DATA, 0, 0x7fffffff);
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE);
	CHECK(test_expect_error_close(fd) == EMSGSIZE);

	fd = test_raw_connect(a); /* a truncated frame: header promises 100 bytes, 10 come */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, AGENT_STAT, 0, 100);
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE + 10);
	shutdown(fd, SHUT_WR);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* a truncated header */
	send_raw(fd, buf, (size_t)hello_frame(buf, AGENT_PROTO_VERSION) + 5);
	shutdown(fd, SHUT_WR);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* an unknown request type */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, 0x7777, 0, 0);
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* malformed attributes: a TLV longer than the frame */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, AGENT_STAT, 0, 6);
	agent_put16(buf + n + AGENT_HDR_SIZE, AGENT_T_PATH);
	agent_put16(buf + n + AGENT_HDR_SIZE + 2, 500);
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE + 6);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* reserved flags set */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, AGENT_PING, 0, 0);
	buf[n + 2] = 0x80;
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* a path with a NUL in it */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, AGENT_STAT, 0, 7);
	agent_put16(buf + n + AGENT_HDR_SIZE, AGENT_T_PATH);
	agent_put16(buf + n + AGENT_HDR_SIZE + 2, 3);
	memcpy(buf + n + AGENT_HDR_SIZE + 4, "a\0b", 3);
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE + 7);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* DATA outside a file write */
	n = hello_frame(buf, AGENT_PROTO_VERSION);
	agent_frame_header(buf + n, AGENT_DATA, 0, 1);
	send_raw(fd, buf, (size_t)n + AGENT_HDR_SIZE + 1);
	CHECK(test_expect_error_close(fd) == EPROTO);

	fd = test_raw_connect(a); /* a client that hangs up mid-frame without reading */
	send_raw(fd, buf, 7);
	close(fd);
}

/* FIFREEZE/FITHAW on a private tmpfs when this box lets us mount one. Freezing the real
 * filesystems of the test machine is never done. */
static void test_freeze(struct agent_client *c)
{
	char dir[] = "/tmp/sbx-agent-freeze.XXXXXX", file[64];
	int rc, fd;

	CHECK(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/f", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK(agent_client_freeze(c, file) == -ENOTDIR);
	unlink(file);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") == 0) {
		rc = agent_client_freeze(c, dir);
		printf("freeze on a tmpfs: %s\n", rc ? strerror(-rc) : "frozen");
		CHECK(rc == 0 || rc == -EOPNOTSUPP);
		if (rc == 0) {
			CHECK(agent_client_freeze(c, dir) == -EBUSY); /* already frozen */
			CHECK_RC(c, agent_client_thaw(c, dir));
		}
		rc = agent_client_thaw(c, dir); /* not frozen (now) */
		CHECK(rc == -EINVAL || rc == -EOPNOTSUPP);
		CHECK(umount(dir) == 0);
	}
	CHECK(rmdir(dir) == 0);
}

static void test_system(struct agent_client *c)
{
	struct agent_info info;
	uint8_t seed[512];

	CHECK_RC(c, agent_client_ping(c));
	CHECK_RC(c, agent_client_info(c, &info));
	CHECK(info.version == AGENT_PROTO_VERSION && info.ncpu >= 1 && info.mem_total > 0);
	CHECK(info.hostname[0] && info.kernel[0] && info.uptime_ms > 0);
	CHECK_RC(c, agent_client_clock_set(c, MAGIC_TIME_NS));
	CHECK(agent_client_clock_set(c, 5) == -EDOM && strstr(c->error, "clock"));
	CHECK(agent_client_clock_set(c, 0) == -EINVAL);
	memset(seed, 0x5a, sizeof(seed));
	CHECK_RC(c, agent_client_entropy(c, seed, sizeof(seed)));
	CHECK_RC(c, agent_client_sync(c));
	CHECK(agent_client_freeze(c, "/nonexistent/sbx") == -ENOENT);
	CHECK(agent_client_thaw(c, "/nonexistent/sbx") == -ENOENT);
	CHECK(agent_client_freeze(c, "") == -EINVAL);
	test_freeze(c);
	/* errors leave the connection usable */
	CHECK_RC(c, agent_client_ping(c));
}

/* agent_main_unix binds its own socket: poll connect until it is there. */
static void test_main_unix(void)
{
	char dir[] = "/tmp/sbx-agent-main.XXXXXX", path[128];
	struct agent_client c;
	uint64_t deadline;
	int status, rc = -1;
	pid_t pid;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(agent_main_unix(path) == AGENT_SERVE_POWEROFF ? 42 : 1);
	deadline = test_now_ms() + 20000;
	while (test_now_ms() < deadline && (rc = agent_client_connect_unix(path)) < 0)
		test_nap(10);
	CHECK(rc >= 0);
	CHECK_RC(&c, agent_client_init(&c, rc));
	CHECK_RC(&c, agent_client_ping(&c));
	CHECK_RC(&c, agent_client_shutdown(&c));
	agent_client_close(&c);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 42);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	struct agent_config cfg = { .set_clock = fake_clock };
	struct test_agent a;
	struct agent_client keep, c;

	test_codec();
	test_agent_start(&a, &cfg);
	test_client(&a, &keep); /* stays open across the bad connections */
	CHECK_RC(&keep, agent_client_ping(&keep));
	test_bad_frames(&a);
	CHECK_RC(&keep, agent_client_ping(&keep));
	test_client(&a, &c);
	test_system(&c);
	agent_client_close(&c);
	agent_client_close(&keep);
	test_agent_stop(&a);
	test_main_unix();
	printf("ok\n");
	return 0;
}
