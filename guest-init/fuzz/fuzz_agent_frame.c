/* libFuzzer target for the agent protocol's decoder (include/sbx/agent_proto.h): the input
 * is a byte stream as a connection would deliver it. Every frame the parser accepts must
 * lie inside the input; every attribute inside its frame; and re-encoding the attributes
 * must reproduce the payload byte for byte. Every frame also goes through the agent's EXEC
 * decoder (argv/env strings, integers) and environment defaults. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sbx/agent_proto.h>

#include "../agent_spawn.h"

static struct agent_msg msg;

static void check_attrs(const struct agent_frame *f)
{
	struct agent_tlv_iter it;
	const uint8_t *v;
	uint16_t tag, n;
	uint32_t u32;
	uint64_t u64;
	char s[AGENT_MAX_PATH];
	int rc;

	agent_msg_init(&msg, f->type, f->id);
	agent_tlv_begin(&it, f->payload, f->len);
	while ((rc = agent_tlv_next(&it, &tag, &v, &n)) == 1) {
		if (v < f->payload || v + n > f->payload + f->len)
			abort();
		if (agent_tlv_u32(v, n, &u32) == 0 && n != 4)
			abort();
		if (agent_tlv_u64(v, n, &u64) == 0 && n != 8)
			abort();
		if (agent_tlv_str(v, n, s, sizeof(s)) == 0 && (strlen(s) != n || memcmp(s, v, n)))
			abort();
		agent_msg_put(&msg, tag, v, n);
	}
	if (rc == 0) { /* well-formed: the encoder gives the same bytes back */
		if (agent_msg_finish(&msg) != (int)(AGENT_HDR_SIZE + f->len))
			abort();
		if (memcmp(msg.buf + AGENT_HDR_SIZE, f->payload, f->len))
			abort();
	}
}

static void check_exec(const struct agent_frame *f)
{
	static struct agent_user user = { .name = "root", .home = "/root" };
	static char store[2 * AGENT_MAX_PATH + 1024];
	struct agent_exec_req q;

	if (agent_exec_req_parse(f, &q) == 0) {
		if (q.argv[q.argc] != NULL)
			abort();
		for (size_t i = 0; i < q.argc; i++)
			if (strlen(q.argv[i]) > f->len)
				abort();
		agent_env_defaults(&q, &user, store, sizeof(store));
		if (q.envp[q.envc] != NULL)
			abort();
	}
	agent_exec_req_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct agent_frame f;
		int n = agent_frame_parse(data + off, size - off, &f);

		if (n < 0)
			break; /* -1 bad header, -2 incomplete: the agent closes or waits */
		if ((size_t)n > size - off || (size_t)n != AGENT_HDR_SIZE + f.len)
			abort();
		check_attrs(&f);
		check_exec(&f);
		off += (size_t)n;
	}
	return 0;
}
