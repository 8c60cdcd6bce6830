/* libFuzzer: a client's bytes through everything the router does with a request
 * before forwarding it: head framing, request line and header parsing, Host routing,
 * bootstrap query and redirect checks, cookies, token checks, head rewriting, and
 * following the body. */
#include <stdint.h>
#include <string.h>

#include "../auth.h"
#include "../http_msg.h"
#include "../rewrite.h"
#include "../route.h"

static void poke_url(struct http_span url)
{
    char token[SVC_TOKEN_MAX_LEN + 1], next[2049];
    (void)route_path_is(url, ROUTE_AUTH_PATH);
    long n = route_query_param(url, "next", next, sizeof(next));
    if (n >= 0)
        (void)route_next_ok(next, (size_t)n);
    (void)route_query_param(url, "token", token, sizeof(token));
}

static void poke_headers(const struct http_msg *m)
{
    static struct svc_token_key key = {.len = 32};
    struct route_target t = {.sandbox = "box", .port = 80};
    const struct http_header *host = http_msg_find(m, "Host");
    if (host)
        (void)route_parse_host(host->value, "sbx.example.com", &t);
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_header *h = &m->headers[i];
        struct http_span v;
        char out[2 * HTTP_MSG_HEAD_MAX];
        size_t pos = 0;
        if (!http_span_ieq(h->name, "Cookie"))
            continue;
        while (route_cookie_find(h->value, ROUTE_COOKIE, &pos, &v))
            ;
        (void)route_cookie_strip(h->value, ROUTE_COOKIE, out, sizeof(out));
    }
    static struct auth_cache cache;
    (void)auth_check(&key, m, &t, 1800000000, &cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_msg m;
    static char out[2 * HTTP_MSG_HEAD_MAX + 1024];
    const char *buf = (const char *)data;
    long head = http_msg_head_end(buf, size);
    if (head < 0)
        return 0;
    if (http_msg_head(&m, HTTP_REQUEST, false, buf, (size_t)head) < 0)
        return 0;
    poke_url(m.url);
    poke_headers(&m);
    struct rewrite_request_info info = {.peer = "127.0.0.1", .strip_bearer = size & 1};
    (void)rewrite_request(&m, buf, &info, out, sizeof(out));
    (void)http_msg_keep_alive(&m);
    (void)http_msg_upgrade(&m);
    /* The rest is body, fed in two pieces, then the end of input. */
    size_t left = size - (size_t)head, half = left / 2;
    long a = http_msg_body(&m, buf + head, half);
    if (a >= 0 && !m.complete)
        (void)http_msg_body(&m, buf + head + half, left - half);
    if (!m.complete)
        (void)http_msg_body(&m, "", 0);
    return 0;
}
