/* Forwarded heads (see rewrite.h). */
#include <string.h>

#include "auth.h"
#include "rewrite.h"
#include "route.h"

struct out {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_header(struct out *o, struct http_span name, struct http_span value)
{
    put(o, name.p, name.len);
    put(o, ": ", 2);
    put(o, value.p, value.len);
    put(o, "\r\n", 2);
}

/* The start line, CRLF included. */
static void put_start_line(struct out *o, const struct http_msg *m, const char *head)
{
    const char *eol = memmem(head, m->head_len, "\r\n", 2);
    put(o, head, eol ? (size_t)(eol - head) + 2 : 0);
    if (!eol)
        o->overflow = true;
}

static bool is_hop_by_hop(struct http_span name)
{
    static const char *const hop[] = {"Connection", "Keep-Alive", "Proxy-Connection", "Upgrade",
                                      "TE", "Trailer"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (http_span_ieq(name, hop[i]))
            return true;
    return false;
}

static bool is_forwarding(struct http_span name)
{
    static const char *const fwd[] = {"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
                                      "X-Forwarded-Port", "Forwarded", "X-Real-IP"};
    for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
        if (http_span_ieq(name, fwd[i]))
            return true;
    return false;
}

static void put_cookie_without_ours(struct out *o, const struct http_header *h)
{
    if (o->overflow || o->cap - o->len < 2 * h->value.len + 16) {
        o->overflow = true;
        return;
    }
    size_t mark = o->len;
    puts_(o, "Cookie: ");
    size_t n = route_cookie_strip(h->value, ROUTE_COOKIE, o->p + o->len, o->cap - o->len);
    if (n == 0) { /* only our cookie: drop the header */
        o->len = mark;
        return;
    }
    o->len += n;
    put(o, "\r\n", 2);
}

long rewrite_request(const struct http_msg *m, const char *head,
                     const struct rewrite_request_info *info, char *out, size_t cap)
{
    struct out o = {.p = out, .cap = cap};
    const struct http_header *upgrade = NULL, *host = NULL;
    put_start_line(&o, m, head);
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_header *h = &m->headers[i];
        if (http_span_ieq(h->name, "Upgrade"))
            upgrade = h;
        if (http_span_ieq(h->name, "Host"))
            host = h;
        if (is_hop_by_hop(h->name) || is_forwarding(h->name) || http_span_ieq(h->name, AUTH_HEADER))
            continue;
        if (info->strip_bearer && http_span_ieq(h->name, "Authorization"))
            continue;
        if (http_span_ieq(h->name, "Cookie"))
            put_cookie_without_ours(&o, h);
        else
            put_header(&o, h->name, h->value);
    }
    if (upgrade && http_msg_upgrade(m)) {
        put_header(&o, upgrade->name, upgrade->value);
        puts_(&o, "Connection: Upgrade\r\n");
    }
    puts_(&o, "X-Forwarded-For: ");
    puts_(&o, info->peer);
    puts_(&o, info->tls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n");
    if (host)
        put_header(&o, (struct http_span){"X-Forwarded-Host", 16}, host->value);
    put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}

long rewrite_response(const struct http_msg *m, const char *head, bool keep_alive, bool http10,
                      char *out, size_t cap)
{
    struct out o = {.p = out, .cap = cap};
    put_start_line(&o, m, head);
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_header *h = &m->headers[i];
        if (http_span_ieq(h->name, "Connection") || http_span_ieq(h->name, "Keep-Alive") ||
            http_span_ieq(h->name, "Proxy-Connection"))
            continue;
        put_header(&o, h->name, h->value);
    }
    if (!keep_alive)
        puts_(&o, "Connection: close\r\n");
    else if (http10)
        puts_(&o, "Connection: keep-alive\r\n");
    put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}
