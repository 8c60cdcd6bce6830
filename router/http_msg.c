/* HTTP/1.x message framing over http-parser (see http_msg.h). */
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "http_msg.h"

enum last_cb { LAST_NONE, LAST_FIELD, LAST_VALUE };

static struct http_msg *msg_of(http_parser *p)
{
    return (struct http_msg *)p->data;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = msg_of(p);
    if (m->url.p && at == m->url.p + m->url.len)
        m->url.len += len;
    else if (!m->url.p)
        m->url = (struct http_span){at, len};
    return 0;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = msg_of(p);
    if (!m->reason.p)
        m->reason = (struct http_span){at, len};
    else if (at == m->reason.p + m->reason.len)
        m->reason.len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = msg_of(p);
    struct http_header *h = m->n_headers ? &m->headers[m->n_headers - 1] : NULL;
    if (h && !m->in_value && at == h->name.p + h->name.len) {
        h->name.len += len;
        return 0;
    }
    if (m->n_headers == HTTP_MSG_HEADERS_MAX) {
        m->overflow = true;
        return 1;
    }
    h = &m->headers[m->n_headers++];
    h->name = (struct http_span){at, len};
    h->value = (struct http_span){at + len, 0};
    m->in_value = false;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = msg_of(p);
    if (!m->n_headers)
        return 1;
    struct http_header *h = &m->headers[m->n_headers - 1];
    if (m->in_value) {
        h->value.len = (size_t)(at + len - h->value.p);
        return 0;
    }
    h->value = (struct http_span){at, len};
    m->in_value = true;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    return msg_of(p)->skip_body ? 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    msg_of(p)->complete = true;
    http_parser_pause(p, 1); /* stop right after the last byte of this message */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

long http_msg_head_end(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end && end + 4 - buf <= HTTP_MSG_HEAD_MAX)
        return end + 4 - buf;
    return len >= HTTP_MSG_HEAD_MAX ? -1 : -2;
}

static bool parser_ok(const http_parser *p)
{
    enum http_errno e = HTTP_PARSER_ERRNO(p);
    return e == HPE_OK || e == HPE_PAUSED;
}

long http_msg_head(struct http_msg *m, enum http_parser_type type, bool skip_body,
                   const char *buf, size_t len)
{
    /* Everything but the header array, which n_headers bounds (a head per request). */
    memset(m, 0, offsetof(struct http_msg, headers));
    m->n_headers = m->head_len = 0;
    m->skip_body = false;
    http_parser_init(&m->parser, type);
    m->parser.data = m;
    m->skip_body = skip_body;
    size_t n = http_parser_execute(&m->parser, &settings, buf, len);
    if (!parser_ok(&m->parser) || m->overflow || n != len)
        return -1;
    if (type == HTTP_REQUEST && !m->url.p)
        return -1;
    m->head_len = len;
    return (long)len;
}

long http_msg_body(struct http_msg *m, const char *buf, size_t len)
{
    if (m->complete)
        return 0;
    size_t n = http_parser_execute(&m->parser, &settings, buf, len);
    if (!parser_ok(&m->parser))
        return -1;
    if (len == 0 && !m->complete)
        return -1; /* closed before the body ended */
    return (long)n;
}

bool http_span_ieq(struct http_span s, const char *str)
{
    size_t n = strlen(str);
    return s.len == n && strncasecmp(s.p, str, n) == 0;
}

const struct http_header *http_msg_find(const struct http_msg *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (http_span_ieq(m->headers[i].name, name))
            return &m->headers[i];
    return NULL;
}

bool http_msg_upgrade(const struct http_msg *m)
{
    return m->parser.upgrade;
}

bool http_msg_keep_alive(const struct http_msg *m)
{
    return http_should_keep_alive(&m->parser);
}

bool http_msg_until_close(const struct http_msg *m)
{
    const http_parser *p = &m->parser;
    if (p->type != HTTP_RESPONSE || m->skip_body)
        return false;
    if (p->status_code / 100 == 1 || p->status_code == 204 || p->status_code == 304)
        return false;
    if (p->flags & F_CHUNKED)
        return false;
    return p->content_length == ULLONG_MAX;
}
