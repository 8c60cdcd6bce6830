/* File requests: streamed read and write (never holding a file whole), stat, list,
 * mkdir, remove, chmod, chown. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"

static int need_path(struct agent_conn *c, const struct agent_req *r, const char *what)
{
	if (r->has_path && r->path[0])
		return 0;
	agent_conn_error(c, EINVAL, "%s: PATH missing", what);
	return -1;
}

static void put_stat(struct agent_msg *m, const struct stat *st)
{
	agent_msg_u32(m, AGENT_T_MODE, st->st_mode);
	agent_msg_u32(m, AGENT_T_UID, st->st_uid);
	agent_msg_u32(m, AGENT_T_GID, st->st_gid);
	agent_msg_u64(m, AGENT_T_SIZE, (uint64_t)st->st_size);
	agent_msg_u64(m, AGENT_T_MTIME_NS,
		      (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + (uint64_t)st->st_mtim.tv_nsec);
}

void agent_file_cleanup(struct agent_conn *c)
{
	if (c->file_fd >= 0)
		close(c->file_fd);
	c->file_fd = -1;
	if (c->dir)
		closedir(c->dir);
	c->dir = NULL;
}

/* ---- read ---- */

void agent_file_read(struct agent_conn *c, const struct agent_req *r)
{
	struct agent_msg *m = c->loop->msg;
	struct stat st;
	int fd, err = 0;

	if (need_path(c, r, "read") < 0)
		return;
	fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		agent_conn_error(c, errno, "read %s: %s", r->path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (S_ISDIR(st.st_mode))
		err = EISDIR;
	else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		err = EINVAL; /* FIFOs, sockets, ttys could block the loop */
	if (err) {
		close(fd);
		agent_conn_error(c, err, "read %s: %s", r->path, strerror(err));
		return;
	}
	fcntl(fd, F_SETFL, 0); /* O_NONBLOCK only kept open() from waiting on odd files */
	c->file_fd = fd;
	c->file_done = r->offset;
	c->file_left = r->has_length ? r->length : UINT64_MAX;
	agent_msg_init(m, AGENT_OK, 0);
	put_stat(m, &st);
	agent_conn_send_msg(c);
	c->state = AGENT_C_FREAD;
}

static void read_finish(struct agent_conn *c, int err)
{
	if (err)
		agent_conn_error(c, err, "read: %s", strerror(err));
	else
		agent_conn_send(c, AGENT_DATA_END, 0, NULL, 0);
	agent_file_cleanup(c);
	c->state = AGENT_C_IDLE;
}

/* Reads straight into the write buffer behind a DATA header. */
static void read_pump(struct agent_conn *c)
{
	while (agent_conn_room(c) > AGENT_REPLY_ROOM) {
		size_t want = agent_conn_room(c) - AGENT_REPLY_ROOM;
		uint8_t *slot;
		ssize_t n;

		if (want > AGENT_MAX_PAYLOAD)
			want = AGENT_MAX_PAYLOAD;
		if (want > c->file_left)
			want = (size_t)c->file_left;
		if (c->woff) {
			memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
			c->wlen -= c->woff;
			c->woff = 0;
		}
		slot = c->wbuf + c->wlen;
		n = want ? pread(c->file_fd, slot + AGENT_HDR_SIZE, want, (off_t)c->file_done) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return; /* a FIFO with nothing yet: EPOLLOUT brings us back */
		if (n <= 0) {
			read_finish(c, n < 0 ? errno : 0);
			return;
		}
		agent_frame_header(slot, AGENT_DATA, 0, (uint32_t)n);
		c->wlen += AGENT_HDR_SIZE + (size_t)n;
		c->file_done += (uint64_t)n;
		c->file_left -= (uint64_t)n;
	}
}

/* ---- list ---- */

void agent_file_list(struct agent_conn *c, const struct agent_req *r)
{
	if (need_path(c, r, "list") < 0)
		return;
	c->dir = opendir(r->path);
	if (!c->dir) {
		agent_conn_error(c, errno, "list %s: %s", r->path, strerror(errno));
		return;
	}
	c->dir_count = 0;
	c->state = AGENT_C_LIST;
}

static void list_pump(struct agent_conn *c)
{
	struct agent_msg *m = c->loop->msg;

	while (agent_conn_room(c) > AGENT_REPLY_ROOM) {
		struct dirent *de;
		struct stat st;

		errno = 0;
		de = readdir(c->dir);
		if (!de) {
			int err = errno;

			agent_file_cleanup(c);
			c->state = AGENT_C_IDLE;
			if (err) {
				agent_conn_error(c, err, "list: %s", strerror(err));
				return;
			}
			agent_msg_init(m, AGENT_OK, 0);
			agent_msg_u64(m, AGENT_T_COUNT, c->dir_count);
			agent_conn_send_msg(c);
			return;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		agent_msg_init(m, AGENT_DIRENT, 0);
		agent_msg_str(m, AGENT_T_NAME, de->d_name);
		if (fstatat(dirfd(c->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			put_stat(m, &st);
		agent_conn_send_msg(c);
		c->dir_count++;
	}
}

void agent_file_pump(struct agent_conn *c)
{
	if (c->state == AGENT_C_FREAD)
		read_pump(c);
	else if (c->state == AGENT_C_LIST)
		list_pump(c);
}

/* ---- write ---- */

/* Opens the target without waiting (a FIFO with no reader would block the loop), and
 * refuses what cannot be written as a stream. Returns the fd or -errno. */
static int write_open(const struct agent_req *r)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
		    (r->append ? O_APPEND : O_TRUNC);
	mode_t mode = r->has_mode ? (mode_t)(r->mode & 07777) : 0644;
	struct stat st;
	int fd = open(r->path, flags, mode), err = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		err = EINVAL;
	else if (r->has_mode && fchmod(fd, mode) < 0)
		err = errno;
	else if ((r->has_uid || r->has_gid) &&
		 fchown(fd, r->has_uid ? r->uid : (uid_t)-1, r->has_gid ? r->gid : (gid_t)-1) < 0)
		err = errno;
	if (err) {
		close(fd);
		return -err;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

void agent_file_write(struct agent_conn *c, const struct agent_req *r)
{
	int fd;

	if (need_path(c, r, "write") < 0)
		return;
	fd = write_open(r);
	if (fd < 0) {
		agent_conn_error(c, -fd, "write %s: %s", r->path, strerror(-fd));
		return;
	}
	c->file_fd = fd;
	c->file_done = 0;
	agent_conn_ok(c);
	c->state = AGENT_C_FWRITE;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void write_end(struct agent_conn *c)
{
	struct agent_msg *m = c->loop->msg;
	int failed = c->state == AGENT_C_FWRITE_FAILED;
	int rc = c->file_fd >= 0 ? close(c->file_fd) : 0;

	c->file_fd = -1;
	c->state = AGENT_C_IDLE;
	if (failed)
		return; /* the error reply went out already */
	if (rc < 0) {
		agent_conn_error(c, errno, "write: close: %s", strerror(errno));
		return;
	}
	agent_msg_init(m, AGENT_OK, 0);
	agent_msg_u64(m, AGENT_T_SIZE, c->file_done);
	agent_conn_send_msg(c);
}

void agent_file_data(struct agent_conn *c, const struct agent_frame *f)
{
	int rc;

	if (f->type == AGENT_DATA_END) {
		write_end(c);
		return;
	}
	if (f->type != AGENT_DATA) {
		agent_conn_fail(c, EPROTO, "write: unexpected frame type %u", f->type);
		return;
	}
	if (c->state == AGENT_C_FWRITE_FAILED)
		return;
	rc = write_all(c->file_fd, f->payload, f->len);
	if (rc < 0) {
		agent_conn_error(c, -rc, "write: %s", strerror(-rc));
		agent_file_cleanup(c);
		c->state = AGENT_C_FWRITE_FAILED;
		return;
	}
	c->file_done += f->len;
}

/* ---- metadata ---- */

void agent_file_stat(struct agent_conn *c, const struct agent_req *r)
{
	struct agent_msg *m = c->loop->msg;
	struct stat st;

	if (need_path(c, r, "stat") < 0)
		return;
	if (lstat(r->path, &st) < 0) {
		agent_conn_error(c, errno, "stat %s: %s", r->path, strerror(errno));
		return;
	}
	agent_msg_init(m, AGENT_OK, 0);
	put_stat(m, &st);
	agent_conn_send_msg(c);
}

static int mkdir_parents(char *path, mode_t mode)
{
	struct stat st;

	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -1;
}

void agent_file_mkdir(struct agent_conn *c, const struct agent_req *r)
{
	mode_t mode = r->has_mode ? (mode_t)(r->mode & 07777) : 0755;
	char path[AGENT_MAX_PATH];
	int rc;

	if (need_path(c, r, "mkdir") < 0)
		return;
	memcpy(path, r->path, sizeof(path));
	rc = r->parents ? mkdir_parents(path, mode) : mkdir(path, mode);
	if (rc < 0)
		agent_conn_error(c, errno, "mkdir %s: %s", r->path, strerror(errno));
	else
		agent_conn_ok(c);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

void agent_file_remove(struct agent_conn *c, const struct agent_req *r)
{
	struct stat st;
	int rc;

	if (need_path(c, r, "remove") < 0)
		return;
	if (lstat(r->path, &st) < 0)
		rc = -1;
	else if (r->recursive && S_ISDIR(st.st_mode))
		rc = nftw(r->path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		rc = remove(r->path);
	if (rc != 0)
		agent_conn_error(c, errno ? errno : EIO, "remove %s: %s", r->path, strerror(errno));
	else
		agent_conn_ok(c);
}

void agent_file_chmod(struct agent_conn *c, const struct agent_req *r)
{
	if (need_path(c, r, "chmod") < 0)
		return;
	if (!r->has_mode) {
		agent_conn_error(c, EINVAL, "chmod: MODE missing");
		return;
	}
	if (chmod(r->path, (mode_t)(r->mode & 07777)) < 0)
		agent_conn_error(c, errno, "chmod %s: %s", r->path, strerror(errno));
	else
		agent_conn_ok(c);
}

void agent_file_chown(struct agent_conn *c, const struct agent_req *r)
{
	uid_t uid = r->has_uid ? r->uid : (uid_t)-1;
	gid_t gid = r->has_gid ? r->gid : (gid_t)-1;

	if (need_path(c, r, "chown") < 0)
		return;
	if (lchown(r->path, uid, gid) < 0)
		agent_conn_error(c, errno, "chown %s: %s", r->path, strerror(errno));
	else
		agent_conn_ok(c);
}
