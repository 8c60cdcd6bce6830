/* File requests over a live agent: put/get, stat, list, mkdir, remove, chmod, chown,
 * their errors (the connection stays usable), a mid-stream write error, and a 1 GiB round
 * trip of a generated stream with the agent's peak memory checked (getrusage). */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "../agent_testutil.h"

#define BIG_SIZE (1ULL << 30)
#define MAX_AGENT_RSS_KB (64 * 1024) /* ASan's shadow and allocator included */

/* A deterministic byte stream: byte o is a byte of a mixed 64-bit word o / 8. */
static uint64_t pattern_word(uint64_t w)
{
	uint64_t v = (w + 1) * 0x9E3779B97F4A7C15ULL;

	return v ^ (v >> 29);
}

static uint8_t pattern_byte(uint64_t o)
{
	return (uint8_t)(pattern_word(o / 8) >> (8 * (o % 8)));
}

struct stream {
	uint64_t off, size;
	int bad;
};

static ssize_t gen_source(void *opaque, void *buf, size_t cap)
{
	struct stream *s = opaque;
	size_t n = s->size - s->off < cap ? (size_t)(s->size - s->off) : cap;
	uint8_t *b = buf;
	size_t i = 0;

	for (; i < n && (s->off + i) % 8; i++)
		b[i] = pattern_byte(s->off + i);
	for (; i + 8 <= n; i += 8) {
		uint64_t v = pattern_word((s->off + i) / 8);

		memcpy(b + i, &v, 8);
	}
	for (; i < n; i++)
		b[i] = pattern_byte(s->off + i);
	s->off += n;
	return (ssize_t)n;
}

static int check_sink(void *opaque, const void *buf, size_t n)
{
	struct stream *s = opaque;
	const uint8_t *b = buf;
	size_t i = 0;

	for (; i < n && (s->off + i) % 8; i++)
		s->bad |= b[i] != pattern_byte(s->off + i);
	for (; i + 8 <= n; i += 8) {
		uint64_t v = pattern_word((s->off + i) / 8);

		s->bad |= memcmp(b + i, &v, 8) != 0;
	}
	for (; i < n; i++)
		s->bad |= b[i] != pattern_byte(s->off + i);
	s->off += n;
	return s->bad ? -EILSEQ : 0;
}

struct membuf {
	char data[4096];
	size_t len, pos;
};

static ssize_t mem_source(void *opaque, void *buf, size_t cap)
{
	struct membuf *m = opaque;
	size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;

	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static int mem_sink(void *opaque, const void *buf, size_t n)
{
	struct membuf *m = opaque;

	if (n > sizeof(m->data) - 1 - m->len)
		return -EFBIG;
	memcpy(m->data + m->len, buf, n);
	m->len += n;
	m->data[m->len] = 0;
	return 0;
}

struct listing {
	int count, saw_file, saw_dir, saw_link;
};

static int on_entry(void *opaque, const struct agent_stat *st)
{
	struct listing *l = opaque;

	l->count++;
	l->saw_file |= !strcmp(st->name, "f") && S_ISREG(st->mode) && st->size == 5;
	l->saw_dir |= !strcmp(st->name, "d") && S_ISDIR(st->mode);
	l->saw_link |= !strcmp(st->name, "l") && S_ISLNK(st->mode);
	return 0;
}

static void test_small(struct agent_client *c, const char *dir)
{
	struct membuf in = { .data = "hello", .len = 5 }, out = { 0 };
	struct agent_stat st;
	struct listing l = { 0 };
	char p[256], q[256];
	uint64_t n = 0;

	snprintf(p, sizeof(p), "%s/a/b/c", dir);
	CHECK_RC(c, agent_client_mkdir(c, p, 0700, 1));
	CHECK(agent_client_mkdir(c, p, 0700, 0) == -EEXIST);
	CHECK_RC(c, agent_client_mkdir(c, p, 0700, 1)); /* -p accepts an existing dir */
	CHECK_RC(c, agent_client_stat(c, p, &st));
	CHECK(S_ISDIR(st.mode) && (st.mode & 07777) == 0700);

	snprintf(p, sizeof(p), "%s/a/f", dir);
	CHECK_RC(c, agent_client_put(c, p, 0640, mem_source, &in, &n));
	CHECK(n == 5);
	CHECK_RC(c, agent_client_get(c, p, mem_sink, &out, &n));
	CHECK(n == 5 && !strcmp(out.data, "hello"));
	CHECK_RC(c, agent_client_stat(c, p, &st));
	CHECK(S_ISREG(st.mode) && (st.mode & 07777) == 0640 && st.size == 5 && st.mtime_ns > 0);
	in.pos = 0;
	CHECK_RC(c, agent_client_append(c, p, mem_source, &in, &n));
	out.len = 0;
	CHECK_RC(c, agent_client_get(c, p, mem_sink, &out, &n));
	CHECK(n == 10 && !strcmp(out.data, "hellohello"));
	out.len = 0;
	CHECK_RC(c, agent_client_get_range(c, p, 3, 4, mem_sink, &out, &n));
	CHECK(n == 4 && !strcmp(out.data, "lohe"));
	out.len = 0;
	CHECK_RC(c, agent_client_get_range(c, p, 8, UINT64_MAX, mem_sink, &out, &n));
	CHECK(n == 2 && !strcmp(out.data, "lo"));
	CHECK_RC(c, agent_client_get_range(c, p, 100, 5, mem_sink, &out, &n));
	CHECK(n == 0);
	in.pos = 0;
	CHECK_RC(c, agent_client_put(c, p, -1, mem_source, &in, &n)); /* truncates again */
	CHECK_RC(c, agent_client_chmod(c, p, 0604));
	CHECK_RC(c, agent_client_stat(c, p, &st));
	CHECK((st.mode & 07777) == 0604);
	if (getuid() == 0) {
		CHECK_RC(c, agent_client_chown(c, p, 1234, 5678));
		CHECK_RC(c, agent_client_stat(c, p, &st));
		CHECK(st.uid == 1234 && st.gid == 5678);
		CHECK_RC(c, agent_client_chown(c, p, -1, 0));
		CHECK_RC(c, agent_client_stat(c, p, &st));
		CHECK(st.uid == 1234 && st.gid == 0);
	}

	snprintf(q, sizeof(q), "%s/a/d", dir);
	CHECK_RC(c, agent_client_mkdir(c, q, 0755, 0));
	snprintf(q, sizeof(q), "%s/a/l", dir);
	CHECK(symlink("f", q) == 0);
	snprintf(q, sizeof(q), "%s/a", dir);
	CHECK(agent_client_list(c, q, on_entry, &l) == 4); /* b, f, d, l */
	CHECK(l.count == 4 && l.saw_file && l.saw_dir && l.saw_link);

	/* errors are replies, the connection stays usable */
	snprintf(q, sizeof(q), "%s/missing", dir);
	CHECK(agent_client_get(c, q, mem_sink, &out, NULL) == -ENOENT && strstr(c->error, "missing"));
	CHECK(agent_client_get(c, dir, mem_sink, &out, NULL) == -EISDIR);
	CHECK(agent_client_stat(c, q, &st) == -ENOENT);
	CHECK(agent_client_list(c, q, on_entry, &l) == -ENOENT);
	CHECK(agent_client_list(c, p, on_entry, &l) == -ENOTDIR);
	CHECK(agent_client_remove(c, q, 0) == -ENOENT);
	CHECK(agent_client_chmod(c, q, 0600) == -ENOENT);
	snprintf(q, sizeof(q), "%s/missing/x", dir);
	in.pos = 0;
	CHECK(agent_client_put(c, q, -1, mem_source, &in, NULL) == -ENOENT);
	snprintf(q, sizeof(q), "%s/a/f/x", dir);
	CHECK(agent_client_mkdir(c, q, 0755, 1) == -ENOTDIR);
	snprintf(q, sizeof(q), "%s/a", dir);
	CHECK(agent_client_remove(c, q, 0) == -ENOTEMPTY);
	snprintf(q, sizeof(q), "%s/fifo", dir);
	CHECK(mkfifo(q, 0600) == 0);
	CHECK(agent_client_get(c, q, mem_sink, &out, NULL) == -EINVAL); /* never blocks the agent */
	CHECK(agent_client_get(c, "/dev/zero", mem_sink, &out, NULL) == -EINVAL);
	in.pos = 0;
	CHECK(agent_client_put(c, q, -1, mem_source, &in, NULL) == -ENXIO); /* no reader */
	CHECK_RC(c, agent_client_remove(c, q, 0));
	snprintf(q, sizeof(q), "%s/a", dir);
	CHECK_RC(c, agent_client_ping(c));

	/* a write that fails mid-stream: ENOSPC from /dev/full, short and long */
	struct stream s = { .size = 1000 };
	CHECK(agent_client_put(c, "/dev/full", -1, gen_source, &s, NULL) == -ENOSPC);
	CHECK_RC(c, agent_client_ping(c));
	s = (struct stream){ .size = 8 << 20 };
	CHECK(agent_client_put(c, "/dev/full", -1, gen_source, &s, NULL) == -ENOSPC);
	CHECK(s.off < s.size); /* the client stopped early */
	CHECK_RC(c, agent_client_ping(c));

	CHECK_RC(c, agent_client_remove(c, q, 1));
	CHECK(agent_client_stat(c, q, &st) == -ENOENT);
}

/* 1 GiB up and back down, streamed and checked on the fly (256 MiB when the disk is
 * nearly full). */
static void test_big(struct agent_client *c, const char *dir)
{
	struct statvfs vfs;
	uint64_t size = BIG_SIZE;
	struct stream up, down = { 0 };
	struct agent_stat st;
	char p[256];
	uint64_t n = 0;
	uint64_t t0 = test_now_ms();

	if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < 3 * BIG_SIZE)
		size = BIG_SIZE / 4;
	up = (struct stream){ .size = size };
	snprintf(p, sizeof(p), "%s/big", dir);
	CHECK_RC(c, agent_client_put(c, p, 0600, gen_source, &up, &n));
	CHECK(n == size && up.off == size);
	CHECK_RC(c, agent_client_stat(c, p, &st));
	CHECK(st.size == size);
	CHECK_RC(c, agent_client_get(c, p, check_sink, &down, &n));
	CHECK(n == size && down.off == size && !down.bad);
	CHECK_RC(c, agent_client_remove(c, p, 0));
	printf("%llu MiB put+get: %llu ms\n", (unsigned long long)(size >> 20),
	       (unsigned long long)(test_now_ms() - t0));
}

int main(void)
{
	struct test_agent a;
	struct agent_client c;
	char dir[] = "/tmp/sbx-agent-files.XXXXXX";

	CHECK(mkdtemp(dir));
	test_agent_start(&a, NULL);
	test_client(&a, &c);
	test_small(&c, dir);
	test_big(&c, dir);
	agent_client_close(&c);
	test_agent_stop(&a);
	printf("agent peak RSS: %ld KiB\n", a.ru.ru_maxrss);
	CHECK(a.ru.ru_maxrss < MAX_AGENT_RSS_KB);
	CHECK(rmdir(dir) == 0);
	printf("ok\n");
	return 0;
}
