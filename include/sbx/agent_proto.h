/* The guest agent protocol: the wire format spoken between the host (api/agent_client.c)
 * and sbx-init's agent (guest-init/agent*.c) over AF_VSOCK port 52 (or a Unix socket in
 * host tests). guest-init/PROTOCOL.md describes the conversation; this header is the
 * byte-level contract and carries the codec both ends use, so they cannot drift apart.
 *
 * Every frame is a 12-byte header followed by `len` payload bytes, all integers
 * little-endian:
 *     u16 type   (enum agent_type)
 *     u16 flags  (reserved, must be 0)
 *     u32 id     (command id for exec streams, else 0)
 *     u32 len    (payload length, at most AGENT_MAX_PAYLOAD)
 * A payload is either raw bytes (STDIN, STDOUT, STDERR, DATA, ENTROPY) or a sequence of
 * attributes, each u16 tag, u16 length, value. Integers inside attributes are u32 or
 * u64 (exact length required); strings carry no terminating NUL and may not contain one;
 * flags are zero-length attributes. */
#ifndef SBX_AGENT_PROTO_H
#define SBX_AGENT_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AGENT_PROTO_VERSION 1
#define AGENT_VSOCK_PORT    52
#define AGENT_HDR_SIZE      12
#define AGENT_MAX_PAYLOAD   65536
#define AGENT_MAX_FRAME     (AGENT_HDR_SIZE + AGENT_MAX_PAYLOAD)
#define AGENT_TLV_HDR_SIZE  4
#define AGENT_MAX_PATH      4096

enum agent_type {
	/* generic */
	AGENT_HELLO = 1,      /* both ways, first frame: VERSION */
	AGENT_OK = 2,         /* success reply, attributes depend on the request */
	AGENT_ERROR = 3,      /* failure reply: ERRNO, MESSAGE */
	/* exec */
	AGENT_EXEC = 0x10,    /* ARG..., ENV..., CWD, USER, TIMEOUT_MS, PTY, ROWS, COLS,
	                         KILL_ON_DISCONNECT, IDLE_TIMEOUT_MS, NO_STDIN,
	                         DROP_UNREAD -> OK CMD_ID */
	AGENT_ATTACH = 0x11,  /* CMD_ID, OFFSET -> OK CMD_ID OFFSET RUNNING? */
	AGENT_STDIN = 0x12,   /* raw bytes for the command's stdin */
	AGENT_STDIN_EOF = 0x13,
	AGENT_SIGNAL = 0x14,  /* SIGNAL: sent to the command's process group */
	AGENT_RESIZE = 0x15,  /* ROWS, COLS (PTY commands) */
	AGENT_STDOUT = 0x16,  /* raw output bytes, agent -> host */
	AGENT_STDERR = 0x17,
	AGENT_EXIT = 0x18,    /* EXIT_CODE or SIGNAL, TIMED_OUT? ; ends the exec */
	/* files */
	AGENT_FILE_READ = 0x20,  /* PATH, OFFSET?, LENGTH? -> OK SIZE MODE, DATA..., DATA_END */
	AGENT_FILE_WRITE = 0x21, /* PATH, MODE?, UID?, GID?, APPEND? -> OK; DATA..., DATA_END -> OK SIZE */
	AGENT_DATA = 0x22,
	AGENT_DATA_END = 0x23,
	AGENT_STAT = 0x24,       /* PATH -> OK MODE UID GID SIZE MTIME_NS */
	AGENT_LIST = 0x25,       /* PATH -> DIRENT..., OK COUNT */
	AGENT_DIRENT = 0x26,     /* NAME MODE UID GID SIZE MTIME_NS */
	AGENT_MKDIR = 0x27,      /* PATH, MODE?, PARENTS? -> OK */
	AGENT_REMOVE = 0x28,     /* PATH, RECURSIVE? -> OK */
	AGENT_CHMOD = 0x29,      /* PATH, MODE -> OK */
	AGENT_CHOWN = 0x2a,      /* PATH, UID?, GID? -> OK */
	/* tunnel */
	AGENT_TUNNEL = 0x30,     /* PORT -> OK, then the connection is a raw byte pipe */
	/* system */
	AGENT_PING = 0x40,       /* -> OK */
	AGENT_INFO = 0x41,       /* -> OK VERSION HOSTNAME KERNEL UPTIME_MS MEM_TOTAL MEM_AVAIL NCPU COMMANDS */
	AGENT_CLOCK_SET = 0x42,  /* TIME_NS (CLOCK_REALTIME) -> OK */
	AGENT_ENTROPY = 0x43,    /* raw seed bytes -> OK */
	AGENT_SYNC = 0x44,       /* -> OK */
	AGENT_FREEZE = 0x45,     /* PATH -> OK (FIFREEZE) */
	AGENT_THAW = 0x46,       /* PATH -> OK (FITHAW) */
	AGENT_SHUTDOWN = 0x47,   /* -> OK, then the guest powers off */
};

enum agent_tag {
	AGENT_T_VERSION = 1,           /* u32 */
	AGENT_T_ERRNO = 2,             /* u32, Linux errno */
	AGENT_T_MESSAGE = 3,           /* str */
	AGENT_T_CMD_ID = 4,            /* u32 */
	AGENT_T_ARG = 5,               /* str, repeated: argv in order */
	AGENT_T_ENV = 6,               /* str "NAME=value", repeated */
	AGENT_T_CWD = 7,               /* str */
	AGENT_T_USER = 8,              /* str: user name or numeric uid */
	AGENT_T_TIMEOUT_MS = 9,        /* u64: kill the command after this long */
	AGENT_T_PTY = 10,              /* flag */
	AGENT_T_ROWS = 11,             /* u32 */
	AGENT_T_COLS = 12,             /* u32 */
	AGENT_T_KILL_ON_DISCONNECT = 13, /* flag */
	AGENT_T_IDLE_TIMEOUT_MS = 14,  /* u64: kill after this long with no client attached */
	AGENT_T_NO_STDIN = 15,         /* flag: stdin is /dev/null */
	AGENT_T_OFFSET = 16,           /* u64 */
	AGENT_T_EXIT_CODE = 17,        /* u32 */
	AGENT_T_SIGNAL = 18,           /* u32 */
	AGENT_T_TIMED_OUT = 19,        /* flag */
	AGENT_T_PATH = 20,             /* str */
	AGENT_T_MODE = 21,             /* u32, st_mode bits */
	AGENT_T_UID = 22,              /* u32 */
	AGENT_T_GID = 23,              /* u32 */
	AGENT_T_SIZE = 24,             /* u64 */
	AGENT_T_MTIME_NS = 25,         /* u64 */
	AGENT_T_NAME = 26,             /* str */
	AGENT_T_PARENTS = 27,          /* flag */
	AGENT_T_RECURSIVE = 28,        /* flag */
	AGENT_T_PORT = 29,             /* u32 */
	AGENT_T_TIME_NS = 30,          /* u64 */
	AGENT_T_HOSTNAME = 31,         /* str */
	AGENT_T_KERNEL = 32,           /* str */
	AGENT_T_UPTIME_MS = 33,        /* u64 */
	AGENT_T_MEM_TOTAL = 34,        /* u64 bytes */
	AGENT_T_MEM_AVAIL = 35,        /* u64 bytes */
	AGENT_T_NCPU = 36,             /* u32 */
	AGENT_T_COUNT = 37,            /* u64 */
	AGENT_T_RUNNING = 38,          /* flag */
	AGENT_T_APPEND = 39,           /* flag */
	AGENT_T_LENGTH = 40,           /* u64 */
	AGENT_T_COMMANDS = 41,         /* u32 */
	AGENT_T_DROP_UNREAD = 42,      /* flag: detached, keep reading; drop the oldest output */
};

/* ---- little-endian loads and stores ---- */

static inline uint16_t agent_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t agent_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t agent_le64(const uint8_t *p)
{
	return (uint64_t)agent_le32(p) | (uint64_t)agent_le32(p + 4) << 32;
}

static inline void agent_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void agent_put32(uint8_t *p, uint32_t v)
{
	agent_put16(p, (uint16_t)v);
	agent_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void agent_put64(uint8_t *p, uint64_t v)
{
	agent_put32(p, (uint32_t)v);
	agent_put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- frames ---- */

struct agent_frame {
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	uint32_t len;
	const uint8_t *payload; /* points into the parsed buffer */
};

/* Parses one frame at the start of buf (len bytes). Returns the bytes it occupies
 * (header + payload, > 0), -2 if buf holds only a prefix of a valid frame, or -1 if the
 * header is invalid (payload longer than AGENT_MAX_PAYLOAD, or reserved flags set).
 * Never reads past buf + len. */
static inline int agent_frame_parse(const void *buf, size_t len, struct agent_frame *f)
{
	const uint8_t *p = buf;

	if (len < AGENT_HDR_SIZE)
		return -2;
	f->type = agent_le16(p);
	f->flags = agent_le16(p + 2);
	f->id = agent_le32(p + 4);
	f->len = agent_le32(p + 8);
	f->payload = p + AGENT_HDR_SIZE;
	if (f->len > AGENT_MAX_PAYLOAD || f->flags != 0)
		return -1;
	if (len - AGENT_HDR_SIZE < f->len)
		return -2;
	return (int)(AGENT_HDR_SIZE + f->len);
}

/* Writes a frame header for a payload of len bytes at hdr (AGENT_HDR_SIZE bytes). */
static inline void agent_frame_header(uint8_t *hdr, uint16_t type, uint32_t id, uint32_t len)
{
	agent_put16(hdr, type);
	agent_put16(hdr + 2, 0);
	agent_put32(hdr + 4, id);
	agent_put32(hdr + 8, len);
}

/* ---- attributes ---- */

struct agent_tlv_iter {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static inline void agent_tlv_begin(struct agent_tlv_iter *it, const void *p, size_t len)
{
	it->p = p;
	it->len = len;
	it->off = 0;
}

/* Yields the next attribute. Returns 1 with tag/val/vlen set, 0 at the end, -1 if the
 * remaining bytes are not a whole attribute. */
static inline int agent_tlv_next(struct agent_tlv_iter *it, uint16_t *tag, const uint8_t **val,
				 uint16_t *vlen)
{
	size_t left = it->len - it->off;

	if (left == 0)
		return 0;
	if (left < AGENT_TLV_HDR_SIZE)
		return -1;
	*tag = agent_le16(it->p + it->off);
	*vlen = agent_le16(it->p + it->off + 2);
	if (left - AGENT_TLV_HDR_SIZE < *vlen)
		return -1;
	*val = it->p + it->off + AGENT_TLV_HDR_SIZE;
	it->off += AGENT_TLV_HDR_SIZE + (size_t)*vlen;
	return 1;
}

/* Value decoders: 0 on success, -1 if the value has the wrong shape. */
static inline int agent_tlv_u32(const uint8_t *val, uint16_t vlen, uint32_t *out)
{
	if (vlen != 4)
		return -1;
	*out = agent_le32(val);
	return 0;
}

static inline int agent_tlv_u64(const uint8_t *val, uint16_t vlen, uint64_t *out)
{
	if (vlen != 8)
		return -1;
	*out = agent_le64(val);
	return 0;
}

/* Copies a string value into out (cap bytes, NUL-terminated). Fails on an embedded NUL
 * or when it does not fit. */
static inline int agent_tlv_str(const uint8_t *val, uint16_t vlen, char *out, size_t cap)
{
	if ((size_t)vlen >= cap || memchr(val, 0, vlen))
		return -1;
	memcpy(out, val, vlen);
	out[vlen] = 0;
	return 0;
}

/* ---- building a frame ---- */

/* A frame under construction; overflow is sticky and reported by agent_msg_finish. */
struct agent_msg {
	uint8_t buf[AGENT_MAX_FRAME];
	size_t len;
	int overflow;
};

static inline void agent_msg_init(struct agent_msg *m, uint16_t type, uint32_t id)
{
	agent_frame_header(m->buf, type, id, 0);
	m->len = AGENT_HDR_SIZE;
	m->overflow = 0;
}

/* Appends raw payload bytes. */
static inline void agent_msg_raw(struct agent_msg *m, const void *data, size_t len)
{
	if (m->overflow || len > sizeof(m->buf) - m->len) {
		m->overflow = 1;
		return;
	}
	if (len)
		memcpy(m->buf + m->len, data, len);
	m->len += len;
}

static inline void agent_msg_put(struct agent_msg *m, uint16_t tag, const void *val, size_t vlen)
{
	uint8_t th[AGENT_TLV_HDR_SIZE];

	if (vlen > 0xffff || m->overflow ||
	    AGENT_TLV_HDR_SIZE + vlen > sizeof(m->buf) - m->len) {
		m->overflow = 1;
		return;
	}
	agent_put16(th, tag);
	agent_put16(th + 2, (uint16_t)vlen);
	agent_msg_raw(m, th, sizeof(th));
	agent_msg_raw(m, val, vlen);
}

static inline void agent_msg_u32(struct agent_msg *m, uint16_t tag, uint32_t v)
{
	uint8_t b[4];

	agent_put32(b, v);
	agent_msg_put(m, tag, b, sizeof(b));
}

static inline void agent_msg_u64(struct agent_msg *m, uint16_t tag, uint64_t v)
{
	uint8_t b[8];

	agent_put64(b, v);
	agent_msg_put(m, tag, b, sizeof(b));
}

static inline void agent_msg_str(struct agent_msg *m, uint16_t tag, const char *s)
{
	agent_msg_put(m, tag, s, strlen(s));
}

static inline void agent_msg_flag(struct agent_msg *m, uint16_t tag)
{
	agent_msg_put(m, tag, NULL, 0);
}

/* Fills in the payload length. Returns the frame's total size, or -1 if it overflowed
 * AGENT_MAX_FRAME. */
static inline int agent_msg_finish(struct agent_msg *m)
{
	if (m->overflow)
		return -1;
	agent_put32(m->buf + 8, (uint32_t)(m->len - AGENT_HDR_SIZE));
	return (int)m->len;
}

#endif
