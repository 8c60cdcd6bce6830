/* System requests: guest info, clock and entropy seeding, filesystem freeze/thaw. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent_internal.h"

void agent_sys_info(struct agent_conn *c)
{
	struct agent_msg *m = c->loop->msg;
	struct utsname un;
	struct sysinfo si;
	struct timespec up;

	agent_msg_init(m, AGENT_OK, 0);
	agent_msg_u32(m, AGENT_T_VERSION, AGENT_PROTO_VERSION);
	if (uname(&un) == 0) {
		agent_msg_str(m, AGENT_T_HOSTNAME, un.nodename);
		agent_msg_str(m, AGENT_T_KERNEL, un.release);
	}
	clock_gettime(CLOCK_BOOTTIME, &up);
	agent_msg_u64(m, AGENT_T_UPTIME_MS, (uint64_t)up.tv_sec * 1000 + (uint64_t)up.tv_nsec / 1000000);
	if (sysinfo(&si) == 0) {
		agent_msg_u64(m, AGENT_T_MEM_TOTAL, (uint64_t)si.totalram * si.mem_unit);
		agent_msg_u64(m, AGENT_T_MEM_AVAIL, (uint64_t)(si.freeram + si.bufferram) * si.mem_unit);
	}
	agent_msg_u32(m, AGENT_T_NCPU, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
	agent_msg_u32(m, AGENT_T_COMMANDS, c->loop->ncmds);
	agent_conn_send_msg(c);
}

void agent_sys_clock(struct agent_conn *c, const struct agent_req *r)
{
	struct timespec ts = {
		.tv_sec = (time_t)(r->time_ns / 1000000000ULL),
		.tv_nsec = (long)(r->time_ns % 1000000000ULL),
	};
	int rc;

	if (!r->time_ns) {
		agent_conn_error(c, EINVAL, "clock: TIME_NS missing");
		return;
	}
	if (c->loop->cfg.set_clock)
		rc = c->loop->cfg.set_clock(&ts);
	else
		rc = clock_settime(CLOCK_REALTIME, &ts) < 0 ? -errno : 0;
	if (rc < 0)
		agent_conn_error(c, -rc, "clock: %s", strerror(-rc));
	else
		agent_conn_ok(c);
}

/* Credits the seed to the kernel pool when allowed (root), else just mixes it in. */
void agent_sys_entropy(struct agent_conn *c, const struct agent_frame *f)
{
	struct rand_pool_info *info = malloc(sizeof(*info) + f->len);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	int rc = 0;

	if (!info || fd < 0) {
		rc = info ? errno : ENOMEM;
		goto out;
	}
	info->entropy_count = (int)f->len * 8;
	info->buf_size = (int)f->len;
	memcpy(info->buf, f->payload, f->len);
	if (f->len && ioctl(fd, RNDADDENTROPY, info) < 0 && write(fd, f->payload, f->len) < 0)
		rc = errno;
out:
	if (fd >= 0)
		close(fd);
	free(info);
	if (rc)
		agent_conn_error(c, rc, "entropy: %s", strerror(rc));
	else
		agent_conn_ok(c);
}

void agent_sys_freeze(struct agent_conn *c, const struct agent_req *r, int thaw)
{
	const char *what = thaw ? "thaw" : "freeze";
	int fd, rc;

	if (!r->has_path || !r->path[0]) {
		agent_conn_error(c, EINVAL, "%s: PATH missing", what);
		return;
	}
	fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		agent_conn_error(c, errno, "%s %s: %s", what, r->path, strerror(errno));
		return;
	}
	rc = ioctl(fd, thaw ? FITHAW : FIFREEZE, 0);
	if (rc < 0)
		agent_conn_error(c, errno, "%s %s: %s", what, r->path, strerror(errno));
	else
		agent_conn_ok(c);
	close(fd);
}
