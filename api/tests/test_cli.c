/* The sbx CLI against a real sbx-api: JSON by default, --format pretty
 * tables, env or flag configuration, and clear errors with exit status 1
 * (API said no) or 2 (usage). */
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    int status;
    char out[16384];
    char err[4096];
};

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;

    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Runs build/bin/sbx with the arguments (NULL-terminated) and env set. */
static void sbx(struct server *s, struct run *r, ...)
{
    char bin[PATH_MAX], out[300], err[300];
    const char *argv[24] = { bin };
    int argc = 1, status;
    va_list ap;
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s", s->dir);   /* placeholder, set in child */
    va_start(ap, r);
    while (argc < 23 && (argv[argc] = va_arg(ap, const char *)))
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    snprintf(out, sizeof(out), "%s/cli.out", s->dir);
    snprintf(err, sizeof(err), "%s/cli.err", s->dir);
    ssize_t n = readlink("/proc/self/exe", bin, sizeof(bin) - 16);
    CHECK(n > 0);
    bin[n] = '\0';
    for (int i = 0; i < 3; i++)
        *strrchr(bin, '/') = '\0';
    strcat(bin, "/bin/sbx");
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        setenv("SBX_API_URL", s->url, 1);
        setenv("SBX_API_KEY", TEST_KEY, 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    r->status = WEXITSTATUS(status);
    slurp(out, r->out, sizeof(r->out));
    slurp(err, r->err, sizeof(r->err));
}

static void expect(struct run *r, int status, const char *in_out, const char *in_err)
{
    if (r->status != status || (in_out && !strstr(r->out, in_out)) ||
        (in_err && !strstr(r->err, in_err))) {
        fprintf(stderr, "sbx exit %d (want %d)\nstdout: %s\nstderr: %s\n", r->status, status,
                r->out, r->err);
        exit(1);
    }
}

static void round_trip(struct server *s, const char *image)
{
    struct run r;
    json_t *j;

    sbx(s, &r, "snapshot", "register", "base", "--image", image, NULL);
    expect(&r, 0, "\"ready\"", NULL);
    sbx(s, &r, "--format", "pretty", "snapshot", "list", NULL);
    expect(&r, 0, "NAME", NULL);
    CHECK(strstr(r.out, "base") != NULL);
    sbx(s, &r, "create", "cli-box", "--snapshot-id", "base", "--vcpus", "2", "--memory",
        "1gb", "--disk", "4gb", "--idle-ttl", "0", NULL);
    expect(&r, 0, NULL, NULL);
    j = json_loads(r.out, 0, NULL);
    CHECK(j && json_integer_value(json_object_get(j, "memory_mib")) == 1024);
    CHECK(json_integer_value(json_object_get(j, "disk_gib")) == 4);
    json_decref(j);
    sbx(s, &r, "list", NULL);
    j = json_loads(r.out, 0, NULL);
    CHECK(r.status == 0 && json_is_array(j) && json_array_size(j) == 1);
    json_decref(j);
    sbx(s, &r, "list", "--format", "pretty", NULL);
    expect(&r, 0, "cli-box", NULL);
    CHECK(strstr(r.out, "STATUS") && strstr(r.out, "running"));
    sbx(s, &r, "update", "cli-box", "--memory", "512", NULL);
    expect(&r, 0, "\"memory_mib\": 512", NULL);
    sbx(s, &r, "stop", "cli-box", NULL);
    expect(&r, 0, "\"stopped\"", NULL);
    sbx(s, &r, "start", "cli-box", NULL);
    expect(&r, 0, "\"running\"", NULL);
    sbx(s, &r, "get", "cli-box", "--format", "pretty", NULL);
    expect(&r, 0, "status", NULL);
    sbx(s, &r, "delete", "cli-box", NULL);
    expect(&r, 0, "\"deleted\": true", NULL);
    sbx(s, &r, "snapshot", "delete", "base", NULL);
    expect(&r, 0, NULL, NULL);
}

static void errors(struct server *s)
{
    char url[128];
    struct run r;

    sbx(s, &r, "get", "nope", NULL);
    expect(&r, 1, NULL, "sbx: not_found: sandbox 'nope' not found");
    sbx(s, &r, "create", "Bad_Name", "--snapshot", "x", NULL);
    expect(&r, 1, NULL, "validation");
    sbx(s, &r, "--api-key", "wrong", "list", NULL);
    expect(&r, 1, NULL, "unauthorized");
    sbx(s, &r, "create", "x", NULL);
    expect(&r, 2, NULL, "needs --snapshot");
    sbx(s, &r, "list", "--vcpus", "2", NULL);
    expect(&r, 2, NULL, "does not apply");
    sbx(s, &r, "create", "x", "--snapshot", "b", "--memory", "lots", NULL);
    expect(&r, 2, NULL, "bad size");
    sbx(s, &r, "frobnicate", NULL);
    expect(&r, 2, NULL, "unknown command");
    /* Nothing listens on port 1. */
    snprintf(url, sizeof(url), "http://127.0.0.1:1");
    sbx(s, &r, "--api-url", url, "list", NULL);
    expect(&r, 1, NULL, "cannot reach sbx-api");
}

int main(void)
{
    struct server s;
    char image[300];

    server_init(&s, NULL);
    snprintf(image, sizeof(image), "%s/state/snapshots/base.img", s.dir);
    round_trip(&s, image);
    errors(&s);
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
