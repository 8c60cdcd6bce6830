/* sbx's HTTP client: one JSON request to sbx-api through libcurl. */
#ifndef SBX_CLI_HTTP_H
#define SBX_CLI_HTTP_H

#include <jansson.h>
#include <stddef.h>

struct curl_slist;

struct cli_conn {
    const char *url;            /* e.g. http://127.0.0.1:8080 */
    const char *key;            /* sent as X-Api-Key; may be NULL */
};

struct cli_reply {
    long status;                /* HTTP status */
    json_t *json;               /* parsed body, NULL if empty or not JSON */
};

/* Sends method url+path with body (may be NULL). Returns 0 once any HTTP
 * answer arrived, or -1 with a message in err when sbx-api was unreachable. */
int cli_request(const struct cli_conn *conn, const char *method, const char *path,
                json_t *body, struct cli_reply *out, char *err, size_t errlen);
void cli_reply_free(struct cli_reply *r);

/* A NUL-terminated answer body that grows as it arrives, up to max bytes. */
struct cli_body {
    char *data;                 /* NULL until the first byte; free() it */
    size_t len, max;
};

/* Appends n bytes: returns n, or 0 when past max or out of memory (as a libcurl
 * write callback's result, 0 ends the transfer). */
size_t cli_body_append(struct cli_body *b, const void *p, size_t n);

/* "/v1/sandboxes/" + the percent-escaped name (+ suffix, may be ""), in out. */
int cli_path(char *out, size_t len, const char *prefix, const char *name, const char *suffix);

/* The request headers: the API key, Accept (and Content-Type: JSON when
 * has_body). Free with curl_slist_free_all. */
struct curl_slist *cli_headers(const struct cli_conn *conn, int has_body);
/* conn->url + path into out; -1 if too long. */
int cli_url(const struct cli_conn *conn, const char *path, char *out, size_t len);
/* The key in ~/.config/sbx/api-key (trailing newline dropped), malloc'd, or NULL. */
char *cli_key_from_file(void);

#endif
