/* Snapshots from container images, against a real registry: Debian's
 * docker-registry (the distribution registry) on loopback, with an image made
 * by api/tests/registry_image.sh (two layers: gzip, then zstd with a whiteout,
 * an opaque folder and a folder turned into a file) pushed by skopeo. sbx-api
 * runs with --insecure-registry for it. Checked: the pull by tag (through the
 * sbx CLI, --docker-image --wait), by digest and through an image index (the
 * linux/amd64 entry, not the first), the files of the image
 * (snapfs export, debugfs), a missing tag, a blob corrupted in the registry's
 * storage, a bad reference; through api/tests/registry_auth_proxy.py in
 * front of it: the anonymous bearer-token flow, blobs redirected to another
 * host (which must not get the token), a manifest that is not JSON, a token
 * refused; a private registry (the proxy's --token-login and --basic modes):
 * registry_auth given as Basic auth to the token realm or to the registry
 * itself, a wrong password and none refused with a clear message, the
 * password in no log line, no byte of the database and no answer, through
 * the API and the CLI (--registry-password-stdin, SBX_REGISTRY_PASSWORD);
 * source= an OCI layout folder, the layout as a
 * tarball, docker save's format (skopeo docker-archive:) as a tarball and
 * unpacked, a nested index with two platforms, a manifest that is not JSON
 * and a layer that does not match its digest. Skips (77) without
 * docker-registry, skopeo, busybox, zstd, debugfs, curl or python3. */
#include "../../snapfs/snapfs.h"
#include "../store.h"
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char src_dir[PATH_MAX - 64], work[256], registry[64], front[64], store_path[400];
static char front_login[64], front_basic[64];   /* the proxy in --token-login, --basic */
static pid_t registry_pid, front_pid, front_login_pid, front_basic_pid;

/* The login registry_auth_proxy.py wants, and a wrong password. */
#define LOGIN_USER "sbx-user"
#define LOGIN_PASSWORD "s3cret"
#define WRONG_PASSWORD "wr0ng-pa55w0rd"

static int shf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shf(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void find_src(void)
{
    const char *env = getenv("SBX_SRC_DIR");
    ssize_t n = readlink("/proc/self/exe", src_dir, sizeof(src_dir) - 1);

    CHECK(n > 0);
    src_dir[n] = '\0';
    for (int i = 0; i < 4; i++)             /* SRC/build/tests/api/test_x -> SRC */
        *strrchr(src_dir, '/') = '\0';
    if (env)
        snprintf(src_dir, sizeof(src_dir), "%s", env);
}

/* A loopback port free a moment ago. */
static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void start_registry(void)
{
    char conf[PATH_MAX + 16], log[PATH_MAX + 16];
    FILE *f;
    int port = free_port();

    snprintf(registry, sizeof(registry), "127.0.0.1:%d", port);
    snprintf(conf, sizeof(conf), "%s/registry.yml", work);
    f = fopen(conf, "w");
    CHECK(f != NULL);
    fprintf(f, "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
               "    rootdirectory: %s/registry\nhttp:\n  addr: %s\n", work, registry);
    fclose(f);
    snprintf(log, sizeof(log), "%s/registry.log", work);
    registry_pid = fork();
    CHECK(registry_pid >= 0);
    if (registry_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl("/usr/bin/docker-registry", "docker-registry", "serve", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; shf("curl -sf http://%s/v2/ >/dev/null", registry); i++) {
        CHECK(i < 100);
        harness_sleep_ms(100);
    }
}

/* api/tests/registry_auth_proxy.py in front of the registry: bearer tokens,
 * blobs redirected to another host, a garbage manifest; mode (NULL or one of
 * its flags) as it says. Its HOST:PORT into host. */
static void start_front(const char *mode, pid_t *pid, char *host, size_t len)
{
    char script[PATH_MAX], port_file[300], buf[16] = "";
    FILE *f = NULL;

    snprintf(script, sizeof(script), "%s/api/tests/registry_auth_proxy.py", src_dir);
    snprintf(port_file, sizeof(port_file), "%s/front%s.port", work, mode ? mode : "");
    *pid = fork();
    CHECK(*pid >= 0);
    if (*pid == 0) {
        if (mode)
            execl(script, script, mode, registry, port_file, (char *)NULL);
        else
            execl(script, script, registry, port_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; !(f = fopen(port_file, "r")); i++) {
        CHECK(i < 100);
        harness_sleep_ms(100);
    }
    CHECK(fgets(buf, sizeof(buf), f) != NULL);
    fclose(f);
    snprintf(host, len, "127.0.0.1:%d", atoi(buf));
}

static void stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* POSTs body (a JSON object's inside after name); returns the status. */
static long post(struct server *s, const char *name, const char *rest, struct reply *r)
{
    char body[4096];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"capacity_gib\":1,%s}", name, rest);
    api(s, "POST", "/v1/snapshots", body, r);
    return r->status;
}

/* Builds name from rest, expects ready (want NULL) or failed with want in
 * the message. */
static void build(struct server *s, const char *name, const char *rest, const char *want)
{
    struct reply r;

    if (post(s, name, rest, &r) != 201)
        fprintf(stderr, "%s\n", r.body);
    CHECK(r.status == 201 && !strcmp(reply_str(&r, "status"), "building"));
    reply_free(&r);
    wait_built(s, name, &r);
    fprintf(stderr, "%s: %s %s\n", name, reply_str(&r, "status"), reply_str(&r, "status_message"));
    if (!want)
        CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    else
        CHECK(!strcmp(reply_str(&r, "status"), "failed") && strstr(reply_str(&r, "status_message"), want));
    reply_free(&r);
}

/* Builds name from docker_image HOST/PATH (as build). */
static void pull(struct server *s, const char *name, const char *host, const char *path,
                 const char *want)
{
    char rest[600];

    snprintf(rest, sizeof(rest), "\"docker_image\":\"%s/%s\"", host, path);
    build(s, name, rest, want);
}

/* Builds name from source WORK/img/REL (as build). */
static void from_source(struct server *s, const char *name, const char *rel, const char *want)
{
    char rest[600];

    snprintf(rest, sizeof(rest), "\"source\":\"%s/img/%s\"", work, rel);
    build(s, name, rest, want);
}

/* The image's files after both layers, through snapfs export and debugfs. */
static void check_files(struct server *s, const char *name)
{
    char path[200], raw[PATH_MAX + 16];
    struct snapfs_store *st;
    struct reply r;

    snprintf(path, sizeof(path), "/v1/snapshots/%s", name);
    api(s, "GET", path, NULL, &r);
    CHECK(r.status == 200);
    snprintf(raw, sizeof(raw), "%s/export.img", work);
    unlink(raw);
    st = snapfs_store_open(store_path, 0);
    CHECK(st != NULL && snapfs_export(st, reply_str(&r, "id"), NULL, raw) == 0);
    snapfs_store_close(st);
    reply_free(&r);
#define DF(cmd) "debugfs -R '" cmd "' %s 2>/dev/null"
    CHECK(shf(DF("cat /etc/hello.txt") " | grep -qx 'hello from layer one'", raw) == 0);
    CHECK(shf(DF("cat /etc/added.txt") " | grep -qx 'added in layer two'", raw) == 0);
    CHECK(shf(DF("cat /opq/new.txt") " | grep -qx 'new in layer two'", raw) == 0);
    CHECK(shf(DF("cat /keep") " | grep -qx 'keep is a file now'", raw) == 0);
    CHECK(shf(DF("stat /bin/sh") " | grep -q 'Mode:  0755'", raw) == 0);
    /* whited out, hidden by the opaque folder, and no whiteout file left */
    CHECK(shf(DF("ls /etc") " | grep -q gone.txt", raw) != 0);
    CHECK(shf(DF("ls /opq") " | grep -q old.txt", raw) != 0);
    CHECK(shf(DF("ls /opq") " | grep -q wh", raw) != 0);
    CHECK(shf(DF("ls -l /etc") " | grep -q hello.txt", raw) == 0);
#undef DF
}

/* The image config's run settings, kept with snapshot name (registry_image.sh). */
static void check_config(struct server *s, const char *name)
{
    char path[200];
    struct reply r;
    json_t *c, *env;

    snprintf(path, sizeof(path), "/v1/snapshots/%s", name);
    api(s, "GET", path, NULL, &r);
    CHECK(r.status == 200 && r.json);
    c = json_object_get(r.json, "image_config");
    env = json_object_get(c, "env");
    if (json_array_size(env) != 2)
        fprintf(stderr, "%s: %s\n", name, r.body);
    CHECK(json_array_size(env) == 2);
    CHECK(!strcmp(json_string_value(json_array_get(env, 0)), "PATH=/opt/venv/bin:/bin"));
    CHECK(!strcmp(json_string_value(json_array_get(env, 1)), "GREETING=hello world"));
    CHECK(!strcmp(json_string_value(json_object_get(c, "working_dir")) ?: "", "/opq"));
    CHECK(!strcmp(json_string_value(json_object_get(c, "user")) ?: "", "app"));
    reply_free(&r);
    /* and in the list */
    api(s, "GET", "/v1/snapshots", NULL, &r);
    env = json_object_get(r.json, "snapshots");
    CHECK(r.status == 200 && json_is_array(env));
    for (size_t i = 0; i < json_array_size(env); i++) {
        json_t *o = json_array_get(env, i);
        if (!strcmp(json_string_value(json_object_get(o, "name")) ?: "", name))
            CHECK(json_is_object(json_object_get(o, "image_config")));
    }
    reply_free(&r);
}

static void expect_400(struct server *s, const char *body)
{
    struct reply r;

    api(s, "POST", "/v1/snapshots", body, &r);
    if (r.status != 400)
        fprintf(stderr, "%s -> %ld %s\n", body, r.status, r.body);
    CHECK(r.status == 400 && !strcmp(reply_error_type(&r), "validation"));
    reply_free(&r);
}

/* Through the sbx CLI: snapshot build --docker-image --wait. */
static void cli_build(struct server *s, const char *name, const char *ref)
{
    char sbx[PATH_MAX + 32];

    snprintf(sbx, sizeof(sbx), "%s/build/bin/sbx", src_dir);
    CHECK(shf("SBX_API_URL=%s SBX_API_KEY=%s %s snapshot build %s --docker-image %s "
              "--capacity 1 --wait >%s/cli.out 2>&1", s->url, TEST_KEY, sbx, name, ref,
              work) == 0);
}

/* Builds name from docker_image HOST/test/img:v1 with registry_auth of user and
 * password (as build). */
static void pull_login(struct server *s, const char *name, const char *host, const char *user,
                       const char *password, const char *want)
{
    char rest[600];

    snprintf(rest, sizeof(rest), "\"docker_image\":\"%s/test/img:v1\",\"registry_auth\":"
             "{\"username\":\"%s\",\"password\":\"%s\"}", host, user, password);
    build(s, name, rest, want);
}

/* Does file path (read as bytes; absent: no) hold needle? */
static bool file_holds(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    bool found;

    if (!f)
        return false;
    CHECK(fseek(f, 0, SEEK_END) == 0 && (len = (size_t)ftell(f), fseek(f, 0, SEEK_SET) == 0));
    buf = malloc(len + 1);
    CHECK(buf && fread(buf, 1, len, f) == len);
    fclose(f);
    found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

/* No byte of the server's folder (its log, the SQLite database and its
 * journal, the store) and no answer about the snapshots holds either password. */
static void check_no_password(struct server *s)
{
    static const char *const secrets[] = { LOGIN_PASSWORD, WRONG_PASSWORD, NULL };
    static const char *const files[] = { "state/sbx-api.db", "state/sbx-api.db-wal",
                                         "sbx-api.log", NULL };
    char path[400];
    struct reply r;

    api(s, "GET", "/v1/snapshots", NULL, &r);
    CHECK(r.status == 200);
    for (const char *const *p = secrets; *p; p++) {
        for (const char *const *f = files; *f; f++) {
            snprintf(path, sizeof(path), "%s/%s", s->dir, *f);
            CHECK(!file_holds(path, *p));
        }
        CHECK(shf("grep -rqaF -- '%s' %s", *p, s->dir) != 0);
        CHECK(!strstr(r.body, *p));
    }
    reply_free(&r);
    /* the snapshots it was given for answer by name too */
    for (const char *const *n = (const char *const[]){ "login-token", "login-wrong",
                                                       "login-basic", "basic-wrong",
                                                       "cli-login-stdin", "cli-login-env",
                                                       NULL }; *n; n++) {
        char path[200];
        snprintf(path, sizeof(path), "/v1/snapshots/%s", *n);
        api(s, "GET", path, NULL, &r);
        CHECK(r.status == 200);
        for (const char *const *p = secrets; *p; p++)
            CHECK(!strstr(r.body, *p));
        reply_free(&r);
    }
}

/* Through the sbx CLI with --registry-user: the password on stdin, or in
 * SBX_REGISTRY_PASSWORD. */
static void cli_login(struct server *s)
{
    char sbx[PATH_MAX + 32];

    snprintf(sbx, sizeof(sbx), "%s/build/bin/sbx", src_dir);
    CHECK(shf("printf '%%s\\n' %s | SBX_API_URL=%s SBX_API_KEY=%s %s snapshot build "
              "cli-login-stdin --docker-image %s/test/img:v1 --capacity 1 --registry-user %s "
              "--registry-password-stdin --wait >%s/cli.out 2>&1", LOGIN_PASSWORD, s->url,
              TEST_KEY, sbx, front_basic, LOGIN_USER, work) == 0);
    CHECK(shf("SBX_REGISTRY_PASSWORD=%s SBX_API_URL=%s SBX_API_KEY=%s %s snapshot build "
              "cli-login-env --docker-image %s/test/img:v1 --capacity 1 --registry-user %s "
              "--wait >%s/cli.out 2>&1 </dev/null", LOGIN_PASSWORD, s->url, TEST_KEY, sbx,
              front_login, LOGIN_USER, work) == 0);
    /* a user without a password is a usage error (2), before any request */
    CHECK(shf("SBX_API_URL=%s SBX_API_KEY=%s %s snapshot build cli-login-none "
              "--docker-image %s/test/img:v1 --registry-user %s >%s/cli.out 2>&1 </dev/null",
              s->url, TEST_KEY, sbx, front_basic, LOGIN_USER, work) == 2 << 8);
}

/* A private registry: a token service that wants the login (--token-login),
 * and a registry that wants it as Basic auth itself (--basic). */
static void from_private_registry(struct server *s)
{
    char want[200];

    pull_login(s, "login-token", front_login, LOGIN_USER, LOGIN_PASSWORD, NULL);
    check_files(s, "login-token");
    snprintf(want, sizeof(want), "registry credentials refused by %s: HTTP 401", front_login);
    pull_login(s, "login-wrong", front_login, LOGIN_USER, WRONG_PASSWORD, want);
    pull(s, "login-none", front_login, "test/img:v1", "token request");

    /* Basic: blobs still go to the "CDN", which refuses any Authorization */
    pull_login(s, "login-basic", front_basic, LOGIN_USER, LOGIN_PASSWORD, NULL);
    check_files(s, "login-basic");
    snprintf(want, sizeof(want), "registry credentials refused by %s: HTTP 401", front_basic);
    pull_login(s, "basic-wrong", front_basic, LOGIN_USER, WRONG_PASSWORD, want);
    pull(s, "basic-none", front_basic, "test/img:v1", "wants a username and password");
    cli_login(s);
    check_no_password(s);
}

static void from_registry(struct server *s)
{
    char rest[600], digest[100] = "", ref[300];
    struct reply r;
    FILE *f;

    /* by tag, through the CLI */
    snprintf(ref, sizeof(ref), "%s/test/img:v1", registry);
    cli_build(s, "by-tag", ref);
    api(s, "GET", "/v1/snapshots/by-tag", NULL, &r);
    CHECK(!strcmp(reply_str(&r, "status"), "ready"));
    snprintf(rest, sizeof(rest), "docker://%s/test/img:v1", registry);
    CHECK(!strcmp(reply_str(&r, "source"), rest));
    reply_free(&r);
    check_files(s, "by-tag");
    check_config(s, "by-tag");

    /* by digest (the registry's Docker-Content-Digest) */
    CHECK(shf("curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "
              "http://%s/v2/test/img/manifests/v1 | tr -d '\\r' | "
              "sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p' > %s/digest", registry,
              work) == 0);
    snprintf(rest, sizeof(rest), "%s/digest", work);
    f = fopen(rest, "r");
    CHECK(f && fgets(digest, sizeof(digest), f));
    fclose(f);
    digest[strcspn(digest, "\n")] = '\0';
    snprintf(rest, sizeof(rest), "test/img@%s", digest);
    pull(s, "by-digest", registry, rest, NULL);
    check_files(s, "by-digest");

    /* an image index: the linux/amd64 entry, not the first */
    pull(s, "index", registry, "test/multi:v1", NULL);
    check_files(s, "index");
    check_config(s, "index");
    pull(s, "no-tag", registry, "test/img:nope", "MANIFEST_UNKNOWN");
    pull(s, "no-repo", registry, "test/none:v1", "HTTP 404");
    /* not named with --insecure-registry: HTTPS, which nothing answers */
    pull(s, "not-insecure", "127.0.0.1:1", "test/img:v1", "127.0.0.1:1");

    /* token flow and a redirect to another host for blobs */
    pull(s, "with-token", front, "test/img:v1", NULL);
    check_files(s, "with-token");
    pull(s, "garbage-manifest", front, "test/img:garbage", "not valid JSON");
    pull(s, "no-token", front, "test/other:v1", "token request");

    /* every stored layer blob of the registry corrupted: the pull must notice */
    CHECK(shf("for f in $(find %s/registry -path '*/blobs/sha256/*/data' -size +1k); do "
              "printf X | dd of=$f bs=1 seek=100 conv=notrunc status=none; done", work) == 0);
    pull(s, "bad-blob", registry, "test/img:v1", "digest mismatch");
}

static void from_layouts(struct server *s)
{
    from_source(s, "layout", "layout", NULL);
    check_files(s, "layout");
    check_config(s, "layout");
    from_source(s, "archive", "image.tar", NULL);
    check_files(s, "archive");
    check_config(s, "archive");
    from_source(s, "multi", "multi", NULL);
    check_files(s, "multi");
    from_source(s, "docker-save", "save.tar", NULL);
    check_files(s, "docker-save");
    check_config(s, "docker-save");
    from_source(s, "docker-save-dir", "save", NULL);
    check_files(s, "docker-save-dir");
    from_source(s, "garbage", "garbage", "not valid JSON");
    from_source(s, "bad-digest", "baddigest", "digest mismatch");
    from_source(s, "bad-env", "badenv", "the image config's Env is not a list");
}

/* Also on a failed CHECK (exit): no registry left running. */
static void stop_helpers(void)
{
    stop(&front_basic_pid);
    stop(&front_login_pid);
    stop(&front_pid);
    stop(&registry_pid);
}

static void validation(struct server *s)
{
    expect_400(s, "{\"name\":\"v1\",\"docker_image\":\"Upper/Case\"}");
    expect_400(s, "{\"name\":\"v2\",\"docker_image\":\"ubuntu@sha256:1234\"}");
    expect_400(s, "{\"name\":\"v3\",\"docker_image\":\"ubuntu:bad tag\"}");
    expect_400(s, "{\"name\":\"v4\",\"docker_image\":\"ubuntu\",\"source\":\"/tmp\"}");
    expect_400(s, "{\"name\":\"v5\",\"docker_image\":\"\"}");
    /* registry_auth: with docker_image only, both strings, bounded */
    expect_400(s, "{\"name\":\"v6\",\"source\":\"/tmp\",\"registry_auth\":"
                  "{\"username\":\"u\",\"password\":\"" WRONG_PASSWORD "\"}}");
    expect_400(s, "{\"name\":\"v7\",\"registry_auth\":"
                  "{\"username\":\"u\",\"password\":\"" WRONG_PASSWORD "\"}}");
    expect_400(s, "{\"name\":\"v8\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "{\"username\":\"u\"}}");
    expect_400(s, "{\"name\":\"v9\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "{\"password\":\"" WRONG_PASSWORD "\"}}");
    expect_400(s, "{\"name\":\"v10\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "{\"username\":\"u\",\"password\":\"\"}}");
    expect_400(s, "{\"name\":\"v11\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "{\"username\":\"u:v\",\"password\":\"" WRONG_PASSWORD "\"}}");
    expect_400(s, "{\"name\":\"v12\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "{\"username\":\"u\",\"password\":7}}");
    expect_400(s, "{\"name\":\"v13\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "\"u:" WRONG_PASSWORD "\"}");
    expect_400(s, "{\"name\":\"v14\",\"docker_image\":\"a/b\",\"registry_auth\":"
                  "{\"username\":\"u\",\"password\":\"" WRONG_PASSWORD "\",\"x\":1}}");
    {
        char big[9000], body[9200];
        memset(big, 'p', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        snprintf(body, sizeof(body), "{\"name\":\"v15\",\"docker_image\":\"a/b\","
                 "\"registry_auth\":{\"username\":\"u\",\"password\":\"%s\"}}", big);
        expect_400(s, body);
    }
}

int main(void)
{
    const char *args[] = { "--insecure-registry", registry, "--insecure-registry", front,
                           "--insecure-registry", front_login, "--insecure-registry",
                           front_basic, NULL };
    struct server s;

    find_src();
    if (access("/usr/bin/docker-registry", X_OK) ||
        shf("which skopeo busybox zstd debugfs curl python3 >/dev/null") != 0) {
        fprintf(stderr, "SKIP: needs docker-registry, skopeo, busybox, zstd, debugfs, curl, "
                "python3\n");
        return 77;
    }
    snprintf(work, sizeof(work), "/tmp/sbx-oci-test.XXXXXX");
    CHECK(mkdtemp(work) != NULL);
    CHECK(shf("mkdir %s/img && %s/api/tests/registry_image.sh %s/img", work, src_dir, work) == 0);
    atexit(stop_helpers);
    start_registry();
    CHECK(shf("skopeo copy -q --dest-tls-verify=false oci:%s/img/layout:v1 "
              "docker://%s/test/img:v1 >%s/skopeo.log 2>&1", work, registry, work) == 0);
    CHECK(shf("skopeo copy -q --all --dest-tls-verify=false oci:%s/img/multi "
              "docker://%s/test/multi:v1 >>%s/skopeo.log 2>&1", work, registry, work) == 0);
    start_front(NULL, &front_pid, front, sizeof(front));
    start_front("--token-login", &front_login_pid, front_login, sizeof(front_login));
    start_front("--basic", &front_basic_pid, front_basic, sizeof(front_basic));
    /* docker save's format (skopeo's docker-archive: takes no zstd layers) */
    CHECK(shf("skopeo copy -q oci:%s/img/gzip:v1 docker-archive:%s/img/save.tar:test/img:v1 "
              ">>%s/skopeo.log 2>&1 && mkdir %s/img/save && tar -C %s/img/save -xf "
              "%s/img/save.tar", work, work, work, work, work, work) == 0);
    server_init(&s, args);
    snprintf(store_path, sizeof(store_path), "%s/state/store", s.dir);
    validation(&s);
    from_layouts(&s);
    from_private_registry(&s);
    from_registry(&s);
    server_cleanup(&s);
    stop_helpers();
    shf("rm -rf %s", work);
    printf("ok\n");
    return 0;
}
