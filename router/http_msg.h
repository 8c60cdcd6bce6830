/* HTTP/1.x message framing on top of http-parser: parse a head held in memory, then
 * follow the body byte by byte so it can be forwarded raw (chunked or not) without
 * buffering it, and know where the next message starts. */
#ifndef ROUTER_HTTP_MSG_H
#define ROUTER_HTTP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define HTTP_MSG_HEAD_MAX    16384 /* longest head accepted, request or response */
#define HTTP_MSG_HEADERS_MAX 100

struct http_span {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_span name, value;
};

struct http_msg {
    http_parser parser;
    bool complete;  /* the whole message (head and body) has been seen */
    bool overflow;  /* too many headers */
    bool in_value;  /* last header callback was a value */
    /* Head, valid while the buffer given to http_msg_head is unchanged. */
    struct http_span url;
    struct http_span reason;
    struct http_header headers[HTTP_MSG_HEADERS_MAX];
    size_t n_headers;
    size_t head_len;
    bool skip_body; /* response to HEAD */
};

/* Finds the end of a head ("\r\n\r\n") in buf[0..len). Returns the head length, -2 if
 * not there yet (and len <= HTTP_MSG_HEAD_MAX), -1 if the head is too long. */
long http_msg_head_end(const char *buf, size_t len);

/* Parses the head in buf[0..len) (len from http_msg_head_end) as a request
 * (type HTTP_REQUEST) or a response (HTTP_RESPONSE; skip_body for an answer to HEAD).
 * Returns len, or -1 if it is not a valid head. After it, m->complete says whether
 * the message has no body. */
long http_msg_head(struct http_msg *m, enum http_parser_type type, bool skip_body,
                   const char *buf, size_t len);

/* Follows body bytes buf[0..len) of a message whose head was parsed. Returns how many
 * of them belong to this message (sets m->complete when it ends), or -1 on a framing
 * error. len 0 means the peer closed: completes a body delimited by the close. */
long http_msg_body(struct http_msg *m, const char *buf, size_t len);

/* Header lookup, case-insensitive. Returns the first match or NULL. */
const struct http_header *http_msg_find(const struct http_msg *m, const char *name);

/* Case-insensitive comparison of a span with a NUL-terminated string. */
bool http_span_ieq(struct http_span s, const char *str);

/* Whether the message asks for, or (101 response) grants, a protocol upgrade. */
bool http_msg_upgrade(const struct http_msg *m);

/* Whether the peer may keep the connection open after this message. */
bool http_msg_keep_alive(const struct http_msg *m);

/* Whether the body is delimited by the sender closing the connection. */
bool http_msg_until_close(const struct http_msg *m);

#endif
