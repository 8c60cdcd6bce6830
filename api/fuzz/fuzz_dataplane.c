/* libFuzzer target for the data plane's own parsers: exec bodies and WebSocket
 * start messages (argv, env, cwd, user, timeouts, PTY size), the UTF-8
 * repair of command output, and the WebSocket handshake's accept key.
 * Input: byte 0 picks the parser, the rest is its input. */
#include "../dataplane_int.h"
#include "../ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_utf8(const uint8_t *p, size_t n)
{
    json_t *s = dp_utf8_json(p, n);
    size_t len;

    /* jansson accepts only valid UTF-8: a NULL here is a repair that missed. */
    if (!s)
        abort();
    len = json_string_length(s);
    if (len < n || len > 3 * n || memchr(json_string_value(s), 0, len))
        abort();
    json_decref(s);
}

static void check_accept(const uint8_t *p, size_t n)
{
    char key[64], out[WS_ACCEPT_LEN];

    if (n >= sizeof(key))
        n = sizeof(key) - 1;
    memcpy(key, p, n);
    key[n] = '\0';
    if (ws_accept_key(key, out) == 0 && strlen(out) != WS_ACCEPT_LEN - 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dperr e;

    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
        dp_exec_parse((const char *)data + 1, size - 1, false, &e);
        break;
    case 1:
        dp_exec_parse((const char *)data + 1, size - 1, true, &e);
        break;
    case 2:
        check_utf8(data + 1, size - 1);
        break;
    default:
        check_accept(data + 1, size - 1);
        break;
    }
    return 0;
}
