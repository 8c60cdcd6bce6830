/* libFuzzer: a service's bytes through response framing: head parsing (as the answer
 * to GET or HEAD), head rewriting, then the body followed in small pieces. */
#include <stdint.h>

#include "../http_msg.h"
#include "../rewrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_msg m;
    static char out[HTTP_MSG_HEAD_MAX + 1024];
    if (size < 1)
        return 0;
    bool head_request = data[0] & 1, keep = data[0] & 2;
    const char *buf = (const char *)data + 1;
    size--;
    long head = http_msg_head_end(buf, size);
    if (head < 0 || http_msg_head(&m, HTTP_RESPONSE, head_request, buf, (size_t)head) < 0)
        return 0;
    (void)rewrite_response(&m, buf, keep, data[0] & 4, out, sizeof(out));
    (void)http_msg_until_close(&m);
    (void)http_msg_keep_alive(&m);
    size_t off = (size_t)head;
    while (off < size && !m.complete) {
        size_t piece = size - off < 7 ? size - off : 7;
        long used = http_msg_body(&m, buf + off, piece);
        if (used < 0)
            return 0;
        off += (size_t)used;
        if ((size_t)used < piece && !m.complete)
            return 0;
    }
    if (!m.complete)
        (void)http_msg_body(&m, "", 0);
    return 0;
}
