/* sbx cp: files to and from a sandbox, streamed through libcurl
 * (api/DATAPLANE.md "Files"): PUT/GET /v1/sandboxes/NAME/files?path=P. */
#include "cli_cmds.h"
#include "cli_format.h"
#include "cli_ws.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ANSWER_MAX (1u << 20)       /* a JSON answer or error body */

struct remote {
    char name[128];
    const char *path;               /* absolute, inside the sandbox */
};

/* "NAME:/abs/path" -> remote; anything else is a local path. */
static bool parse_remote(const char *spec, struct remote *r)
{
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : 0;

    if (!colon || n == 0 || n >= sizeof(r->name) || colon[1] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", spec[i]))
            return false;
    memcpy(r->name, spec, n);
    r->name[n] = '\0';
    r->path = colon + 1;
    return true;
}

struct xfer {
    CURL *curl;
    int fd;                         /* upload source or download target, -1 until opened */
    struct cli_body answer;         /* the JSON answer or an error body */
    int64_t bytes;
    const char *tmp_dir;            /* download: where the temp file goes */
    char tmp[PATH_MAX];
    int write_errno;
};

static size_t on_answer(char *p, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;

    return cli_body_append(&x->answer, p, size * nmemb);
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    ssize_t n;

    do
        n = read(x->fd, p, size * nmemb);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        x->write_errno = errno;
        return CURL_READFUNC_ABORT;
    }
    x->bytes += n;
    return (size_t)n;
}

/* Download target: a temp file beside the destination, renamed at the end. */
static int open_target(struct xfer *x)
{
    if (x->fd >= 0)
        return 0;
    snprintf(x->tmp, sizeof(x->tmp), "%s/.sbx-cp-XXXXXX", x->tmp_dir);
    x->fd = mkostemp(x->tmp, O_CLOEXEC);
    if (x->fd < 0) {
        x->write_errno = errno;
        x->tmp[0] = '\0';
        return -1;
    }
    return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    long status = 0;

    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300)
        return cli_body_append(&x->answer, p, n);
    if (x->tmp_dir && open_target(x))
        return 0;
    if (cli_write_all(x->fd, p, n)) {
        x->write_errno = errno ? errno : EIO;
        return 0;
    }
    x->bytes += n;
    return n;
}

static int refusal(const struct xfer *x, long status)
{
    json_t *j = x->answer.data ? json_loads(x->answer.data, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    if (type && msg)
        fprintf(stderr, "sbx: %s: %s\n", type, msg);
    else
        fprintf(stderr, "sbx: sbx-api answered HTTP %ld\n", status);
    json_decref(j);
    return 1;
}

/* Runs the transfer set up on x->curl; 0, or prints why not and returns 1. */
static int perform(const struct cli_conn *conn, struct xfer *x, const char *path,
                   struct curl_slist *headers, long *status)
{
    char url[8192];
    CURLcode rc;

    if (cli_url(conn, path, url, sizeof(url))) {
        fprintf(stderr, "sbx: path too long\n");
        return 1;
    }
    curl_easy_setopt(x->curl, CURLOPT_URL, url);
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    /* any size: no total limit, but a transfer stalled for 5 minutes fails */
    curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_TIME, 300L);
    rc = curl_easy_perform(x->curl);
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK && *status < 300) {
        if (x->write_errno)
            fprintf(stderr, "sbx: cp: %s\n", strerror(x->write_errno));
        else
            fprintf(stderr, "sbx: cp via sbx-api at %s: %s\n", conn->url,
                    curl_easy_strerror(rc));
        return 1;
    }
    return *status >= 300 ? refusal(x, *status) : 0;
}

static int files_path(char *out, size_t len, const struct remote *r, const char *extra)
{
    char *esc = curl_easy_escape(NULL, r->path, 0);
    char suffix[PATH_MAX * 3 + 64];
    int n;

    if (!esc)
        return -1;
    n = snprintf(suffix, sizeof(suffix), "/files?path=%s%s", esc, extra);
    curl_free(esc);
    if (n < 0 || (size_t)n >= sizeof(suffix))
        return -1;
    return cli_path(out, len, "/v1/sandboxes/", r->name, suffix);
}

static void show(json_t *j, bool pretty)
{
    if (pretty)
        cli_print_object(j);
    else
        cli_print_json(j);
}

static int upload(const struct cli_conn *conn, const char *local, struct remote *r, bool pretty)
{
    struct xfer x = { .fd = STDIN_FILENO, .answer.max = ANSWER_MAX };
    struct curl_slist *h = NULL;
    char path[PATH_MAX * 4], extra[32] = "", full[PATH_MAX];
    struct stat st;
    long status = 0;
    int rc = 1;

    if (strcmp(local, "-")) {
        x.fd = open(local, O_RDONLY | O_CLOEXEC);
        if (x.fd < 0 || fstat(x.fd, &st)) {
            fprintf(stderr, "sbx: cp: %s: %s\n", local, strerror(errno));
            goto out;
        }
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "sbx: cp: %s is not a regular file (cp copies one file)\n", local);
            goto out;
        }
        snprintf(extra, sizeof(extra), "&mode=%04o", (unsigned)(st.st_mode & 07777));
        if (r->path[strlen(r->path) - 1] == '/') {    /* into that folder */
            char *copy = strdup(local);
            if (!copy)
                goto out;
            snprintf(full, sizeof(full), "%s%s", r->path, basename(copy));
            free(copy);
            r->path = full;
        }
    }
    if (files_path(path, sizeof(path), r, extra)) {
        fprintf(stderr, "sbx: cp: path too long\n");
        goto out;
    }
    x.curl = curl_easy_init();
    h = curl_slist_append(cli_headers(conn, 0), "Content-Type: application/octet-stream");
    curl_easy_setopt(x.curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(x.curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(x.curl, CURLOPT_READDATA, &x);
    curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
    if (x.fd != STDIN_FILENO)   /* else chunked */
        curl_easy_setopt(x.curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    rc = perform(conn, &x, path, h, &status);
    if (rc == 0) {
        json_t *j = x.answer.data ? json_loads(x.answer.data, 0, NULL) : NULL;
        if (!j)
            j = json_pack("{s:s,s:I}", "path", r->path, "size", (json_int_t)x.bytes);
        show(j, pretty);
        json_decref(j);
    }
out:
    if (x.fd > STDIN_FILENO)
        close(x.fd);
    curl_slist_free_all(h);
    if (x.curl)
        curl_easy_cleanup(x.curl);
    free(x.answer.data);
    return rc;
}

/* Where a download goes: local, or local/basename(remote) for a folder. */
static int target_path(const char *local, const struct remote *r, char *out, size_t len)
{
    struct stat st;
    const char *base = strrchr(r->path, '/') + 1;
    int n;

    if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (!*base)
            return -1;
        n = snprintf(out, len, "%s/%s", local, base);
    } else {
        n = snprintf(out, len, "%s", local);
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int finish_target(struct xfer *x, const char *dest)
{
    mode_t mask = umask(0);

    umask(mask);
    if (open_target(x) || fchmod(x->fd, 0666 & ~mask) || fsync(x->fd) ||
        rename(x->tmp, dest)) {
        fprintf(stderr, "sbx: cp: %s: %s\n", dest, strerror(x->write_errno ?: errno));
        return 1;
    }
    x->tmp[0] = '\0';
    return 0;
}

static int download(const struct cli_conn *conn, struct remote *r, const char *local,
                    bool pretty)
{
    struct xfer x = { .fd = -1, .answer.max = ANSWER_MAX };
    struct curl_slist *h = NULL;
    char path[PATH_MAX * 4], dest[PATH_MAX], dir[PATH_MAX];
    bool to_stdout = !strcmp(local, "-");
    long status = 0;
    int rc = 1;

    if (to_stdout) {
        x.fd = STDOUT_FILENO;
    } else {
        if (target_path(local, r, dest, sizeof(dest))) {
            fprintf(stderr, "sbx: cp: cannot name the local file for %s\n", r->path);
            return 1;
        }
        snprintf(dir, sizeof(dir), "%s", dest);
        x.tmp_dir = dirname(dir);
    }
    if (files_path(path, sizeof(path), r, "")) {
        fprintf(stderr, "sbx: cp: path too long\n");
        return 1;
    }
    x.curl = curl_easy_init();
    h = curl_slist_append(cli_headers(conn, 0), "Accept: application/octet-stream");
    curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
    rc = perform(conn, &x, path, h, &status);
    if (rc == 0 && !to_stdout)
        rc = finish_target(&x, dest);
    if (rc == 0 && !to_stdout) {
        json_t *j = json_pack("{s:s,s:I}", "path", dest, "size", (json_int_t)x.bytes);
        show(j, pretty);
        json_decref(j);
    }
    if (!to_stdout && x.fd >= 0)
        close(x.fd);
    if (x.tmp[0])
        unlink(x.tmp);
    curl_slist_free_all(h);
    curl_easy_cleanup(x.curl);
    free(x.answer.data);
    return rc;
}

int cli_cp(const struct cli_conn *conn, const char *src, const char *dst, bool pretty)
{
    struct remote rs, rd;
    bool src_remote = parse_remote(src, &rs), dst_remote = parse_remote(dst, &rd);

    if (src_remote == dst_remote) {
        fprintf(stderr, "sbx: cp: exactly one side is NAME:/absolute/path (the other is local "
                        "or -)\n");
        return 2;
    }
    if (dst_remote)
        return upload(conn, src, &rd, pretty);
    return download(conn, &rs, dst, pretty);
}
