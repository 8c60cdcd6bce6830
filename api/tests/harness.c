/* The api tests' harness. */
#include "harness.h"

#include "../snapshot_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void harness_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    exit(1);
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* build/tests/api/test_x -> build/bin/NAME */
static void sibling_bin(const char *name, char *out, size_t len)
{
    char self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    CHECK(n > 0);
    self[n] = '\0';
    for (int i = 0; i < 3; i++)
        *strrchr(self, '/') = '\0';
    snprintf(out, len, "%s/bin/%s", self, name);
    CHECK(access(out, X_OK) == 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    fputs(text, f);
    CHECK(fclose(f) == 0);
    CHECK(chmod(path, mode) == 0);
}

/* The stand-in VMM: writes its arguments, one a line, to DIR/vmm-args.PID, then
 * lives as long as the test process, or fails at once when asked for 77 MiB
 * (to test failure reporting). */
static void write_standin(struct server *s)
{
    char path[300], script[512];

    snprintf(script, sizeof(script),
             "#!/bin/sh\n"
             "printf '%%s\\n' \"$@\" > %s/vmm-args.$$\n"
             "case \" $* \" in *\" --mem 77 \"*) echo \"vmm: cannot boot with 77 MiB\" >&2;"
             " exit 3;; esac\n"
             "while kill -0 %d 2>/dev/null; do sleep 0.2; done\n",
             s->dir, (int)getpid());
    snprintf(path, sizeof(path), "%s/vmm", s->dir);
    write_file(path, script, 0755);
}

void server_init(struct server *s, const char *const *extra_args)
{
    char path[300];

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/sbx-api-test.XXXXXX");
    CHECK(mkdtemp(s->dir) != NULL);
    snprintf(path, sizeof(path), "%s/state", s->dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/state/snapshots", s->dir);
    CHECK(mkdir(path, 0700) == 0);
    /* A raw disk image of 1 MiB (snapfs wants a multiple of 512 bytes). */
    snprintf(path, sizeof(path), "%s/state/snapshots/base.img", s->dir);
    write_file(path, "not really a root file system\n", 0644);
    CHECK(truncate(path, 1 << 20) == 0);
    write_standin(s);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    server_start(s, extra_args);
}

static void exec_server(struct server *s, const char *const *extra_args)
{
    char bin[PATH_MAX], state[300], vmm[300], port[300], log[300];
    const char *argv[40] = { bin, "--listen", "127.0.0.1:0", "--port-file", port,
                             "--state-dir", state, "--vmm", vmm, "--sweep-interval-ms",
                             "100", "--stop-grace-ms", "2000", "--verbose" };
    int argc = 14, fd;

    sibling_bin("sbx-api", bin, sizeof(bin));
    snprintf(state, sizeof(state), "%s/state", s->dir);
    snprintf(vmm, sizeof(vmm), "%s/vmm", s->dir);
    snprintf(port, sizeof(port), "%s/port", s->dir);
    snprintf(log, sizeof(log), "%s/sbx-api.log", s->dir);
    for (; extra_args && *extra_args && argc < 38; extra_args++)
        argv[argc++] = *extra_args;
    argv[argc] = NULL;
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0)
        dup2(fd, 2);
    setenv("SBX_API_KEY", TEST_KEY, 1);
    execv(bin, (char *const *)argv);
    _exit(127);
}

static int read_port(struct server *s)
{
    char path[300];
    int port = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/port", s->dir);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    return port;
}

void server_start(struct server *s, const char *const *extra_args)
{
    char path[300];
    int port = 0;

    snprintf(path, sizeof(path), "%s/port", s->dir);
    unlink(path);
    s->pid = fork();
    CHECK(s->pid >= 0);
    if (s->pid == 0)
        exec_server(s, extra_args);
    for (int i = 0; i < 200 && !(port = read_port(s)); i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            harness_fail(__FILE__, __LINE__, "sbx-api exited at start-up (see sbx-api.log)");
        }
        harness_sleep_ms(50);
    }
    CHECK(port > 0);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", port);
}

void server_stop(struct server *s)
{
    int status;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    CHECK(waitpid(s->pid, &status, 0) == s->pid);
    s->pid = 0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

void server_cleanup(struct server *s)
{
    struct reply r;

    /* Stop the stand-in VMMs through the API while the server is up. */
    if (s->pid > 0) {
        api(s, "GET", "/v1/sandboxes", NULL, &r);
        json_t *arr = json_object_get(r.json, "sandboxes"), *sb;
        size_t i;
        json_array_foreach(arr, i, sb) {
            json_t *pid = json_object_get(sb, "vmm_pid");
            if (json_is_integer(pid))
                kill((pid_t)json_integer_value(pid), SIGKILL);
        }
        reply_free(&r);
    }
    server_stop(s);
    snapbuild_rmtree(s->dir);
    curl_global_cleanup();
}

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    char *grown = realloc(b->data, b->len + n + 1);

    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void request(struct server *s, const char *method, const char *path, const char *key,
             const char *body, size_t body_len, struct reply *out)
{
    struct curl_slist *headers = NULL;
    struct buf b = { .data = calloc(1, 1) };
    char url[1024], keyhdr[512];
    CURL *curl = curl_easy_init();

    CHECK(curl != NULL);
    snprintf(url, sizeof(url), "%s%s", s->url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    if (key) {
        if (!strncmp(key, "Bearer ", 7))
            snprintf(keyhdr, sizeof(keyhdr), "Authorization: %s", key);
        else
            snprintf(keyhdr, sizeof(keyhdr), "X-Api-Key: %s", key);
        headers = curl_slist_append(headers, keyhdr);
    }
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    out->body = b.data;
    out->json = json_loads(b.data, 0, NULL);
}

void api(struct server *s, const char *method, const char *path, const char *body,
         struct reply *out)
{
    request(s, method, path, TEST_KEY, body, body ? strlen(body) : 0, out);
}

void reply_free(struct reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

const char *reply_error_type(const struct reply *r)
{
    const char *t = json_string_value(json_object_get(json_object_get(r->json, "error"), "type"));

    return t ? t : "";
}

void register_snapshot(struct server *s, const char *name)
{
    char body[512];
    struct reply r;

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"image_path\":\"%s/state/snapshots/base.img\"}",
             name, s->dir);
    api(s, "POST", "/v1/snapshots", body, &r);
    CHECK(r.status == 201);
    reply_free(&r);
}

bool wait_status(struct server *s, const char *name, const char *want, int timeout_ms)
{
    char path[256];

    snprintf(path, sizeof(path), "/v1/sandboxes/%s", name);
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        struct reply r;
        api(s, "GET", path, NULL, &r);
        const char *status = json_string_value(json_object_get(r.json, "status"));
        bool done = r.status == 404 ? !strcmp(want, "gone") : status && !strcmp(status, want);
        reply_free(&r);
        if (done)
            return true;
        harness_sleep_ms(50);
    }
    return false;
}

bool pid_alive(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

void wait_built(struct server *s, const char *name, struct reply *out)
{
    char path[200];

    snprintf(path, sizeof(path), "/v1/snapshots/%s", name);
    for (int waited = 0; waited < 120000; waited += 100) {
        api(s, "GET", path, NULL, out);
        CHECK(out->status == 200);
        if (strcmp(reply_str(out, "status"), "building"))
            return;
        reply_free(out);
        harness_sleep_ms(100);
    }
    CHECK(!"snapshot still building after 120 s");
}

const char *reply_str(const struct reply *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r->json, key));

    return v ? v : "";
}
