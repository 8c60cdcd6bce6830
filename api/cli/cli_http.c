/* libcurl requests for sbx. */
#include "cli_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t cli_body_append(struct cli_body *b, const void *p, size_t n)
{
    char *grown;

    if (n > b->max - b->len)
        return 0;
    grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, p, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    return cli_body_append(arg, ptr, size * nmemb);
}

struct curl_slist *cli_headers(const struct cli_conn *conn, int has_body)
{
    struct curl_slist *h = NULL;
    char line[600];

    if (conn->key && *conn->key) {
        snprintf(line, sizeof(line), "X-Api-Key: %s", conn->key);
        h = curl_slist_append(h, line);
    }
    if (has_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    return curl_slist_append(h, "Accept: application/json");
}

int cli_request(const struct cli_conn *conn, const char *method, const char *path,
                json_t *body, struct cli_reply *out, char *err, size_t errlen)
{
    struct cli_body b = { .max = 16u << 20 };     /* no answer of ours is that big */
    char url[2048], *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = cli_headers(conn, text != NULL);
    CURLcode rc;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", conn->url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    if (text)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
        out->json = b.data ? json_loads(b.data, 0, NULL) : NULL;
    } else {
        snprintf(err, errlen, "cannot reach sbx-api at %s: %s", conn->url,
                 curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(text);
    free(b.data);
    return rc == CURLE_OK ? 0 : -1;
}

void cli_reply_free(struct cli_reply *r)
{
    json_decref(r->json);
    r->json = NULL;
}

int cli_path(char *out, size_t len, const char *prefix, const char *name, const char *suffix)
{
    char *escaped = curl_easy_escape(NULL, name, 0);
    int n;

    if (!escaped)
        return -1;
    n = snprintf(out, len, "%s%s%s", prefix, escaped, suffix);
    curl_free(escaped);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

char *cli_key_from_file(void)
{
    const char *home = getenv("HOME");
    char path[4096], buf[1024];
    ssize_t n;
    int fd;

    if (!home || !*home)
        return NULL;
    snprintf(path, sizeof(path), "%s/.config/sbx/api-key", home);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return n ? strdup(buf) : NULL;
}

int cli_url(const struct cli_conn *conn, const char *path, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", conn->url, path);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}
