/* sbx ssh-setup: the key into the sandbox, sshd started, its host keys into
 * ~/.ssh/known_hosts_sandboxes and a "Host sandbox-NAME" block (replaced when
 * present) in ~/.ssh/config whose ProxyCommand is `sbx tunnel --stdio`.
 * The sandbox side goes through the one-shot exec (api/DATAPLANE.md). */
#include "cli_cmds.h"
#include "cli_format.h"
#include "cli_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (4u << 20)         /* ssh config or known_hosts we rewrite */

static const char install_key[] =
    "umask 077 && mkdir -p /root/.ssh && k=$(cat) && f=/root/.ssh/authorized_keys && "
    "{ grep -qxF -- \"$k\" \"$f\" 2>/dev/null || printf '%s\\n' \"$k\" >> \"$f\"; } && "
    "chmod 700 /root/.ssh && chmod 600 \"$f\"";
static const char start_sshd[] =
    "ssh-keygen -A >/dev/null && mkdir -p /run/sshd && "
    "if [ -s /run/sshd.pid ] && kill -0 \"$(cat /run/sshd.pid)\" 2>/dev/null; then :; "
    "else /usr/sbin/sshd; fi";
static const char read_host_keys[] = "cat /etc/ssh/ssh_host_*_key.pub";

/* a + b into out; -1 if it does not fit. */
static int join(char *out, size_t len, const char *a, const char *b)
{
    int n = snprintf(out, len, "%s%s", a, b);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Reads a whole small file; NULL with errno set (ENOENT: missing). */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t n = 0;

    if (fd < 0)
        return NULL;
    buf = malloc(FILE_MAX + 1);
    while (buf) {
        ssize_t k = read(fd, buf + n, FILE_MAX - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n == FILE_MAX) {
            free(buf);
            buf = NULL;
            errno = EFBIG;
            break;
        }
    }
    close(fd);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* Replaces path with data through a temp file and rename. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd, rc = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.sbx-XXXXXX", path) >= (int)sizeof(tmp))
        return -1;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) == 0 && cli_write_all(fd, data, len) == 0 && fsync(fd) == 0 &&
        rename(tmp, path) == 0)
        rc = 0;
    close(fd);
    if (rc)
        unlink(tmp);
    return rc;
}

/* One-shot exec of /bin/sh -c script; 0 with its stdout in *out (may be
 * NULL), or 1 with why on stderr (quiet: only for a transport/API error). */
static int remote_sh(const struct cli_conn *conn, const char *name, const char *script,
                     const char *in, char **out, char *why, size_t whylen)
{
    json_t *body = json_pack("{s:[s,s,s],s:i}", "command", "/bin/sh", "-c", script,
                             "timeout_seconds", 60);
    struct cli_reply r;
    char path[512], err[512];
    int rc = 1;

    *why = '\0';
    if (in)
        json_object_set_new(body, "stdin", json_string(in));
    if (cli_path(path, sizeof(path), "/v1/sandboxes/", name, "/exec") ||
        cli_request(conn, "POST", path, body, &r, err, sizeof(err))) {
        snprintf(why, whylen, "%s", err);
        json_decref(body);
        return -1;
    }
    json_decref(body);
    if (r.status >= 400) {
        json_t *e = json_object_get(r.json, "error");
        snprintf(why, whylen, "%s: %s",
                 json_string_value(json_object_get(e, "type")) ?: "error",
                 json_string_value(json_object_get(e, "message")) ?: "sbx-api refused");
        rc = -1;
    } else if (json_integer_value(json_object_get(r.json, "exit_code")) != 0) {
        snprintf(why, whylen, "exit %lld: %.300s",
                 (long long)json_integer_value(json_object_get(r.json, "exit_code")),
                 json_string_value(json_object_get(r.json, "stderr")) ?: "");
    } else {
        rc = 0;
        if (out)
            *out = strdup(json_string_value(json_object_get(r.json, "stdout")) ?: "");
    }
    cli_reply_free(&r);
    return rc;
}

/* The public key: --identity, else the first of ~/.ssh/id_{ed25519,ecdsa,rsa}.pub. */
static char *read_identity(const char *identity, const char *ssh_dir, char *used, size_t ulen)
{
    static const char *const names[] = { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub" };
    char *key = NULL;
    size_t len;

    for (size_t i = 0; !key && i < (identity ? 1 : 3); i++) {
        int n = identity ? snprintf(used, ulen, "%s", identity)
                         : snprintf(used, ulen, "%s/%s", ssh_dir, names[i]);
        if (n < 0 || (size_t)n >= ulen)
            break;
        key = slurp(used, &len);
    }
    if (!key) {
        fprintf(stderr, "sbx: ssh-setup: no public key (%s%s); make one with ssh-keygen or "
                        "pass --identity KEY.pub\n", identity ? used : "looked for id_*.pub in ",
                identity ? "" : ssh_dir);
        return NULL;
    }
    key[strcspn(key, "\r\n")] = '\0';
    if (strncmp(key, "ssh-", 4) && strncmp(key, "ecdsa-", 6) && strncmp(key, "sk-", 3)) {
        fprintf(stderr, "sbx: ssh-setup: %s is not an OpenSSH public key\n", used);
        free(key);
        return NULL;
    }
    return key;
}

/* Drops the lines whose first field is host, then appends "host TYPE KEY"
 * for each "TYPE KEY comment" line of keys. Returns the count written. */
static int update_known_hosts(const char *path, const char *host, const char *keys)
{
    size_t len = 0, hl = strlen(host), cap;
    char *old = slurp(path, &len), *out, *line, *save = NULL, *copy = strdup(keys);
    size_t n = 0;
    int count = 0, rc = -1;

    if ((!old && errno != ENOENT) || !copy)
        goto out_free;
    /* each key line grows by at most the host name and a space */
    size_t lines = 1;
    for (const char *c = keys; *c; c++)
        lines += *c == '\n';
    cap = len + 1 + strlen(keys) + lines * (hl + 2) + 64;
    out = malloc(cap);
    if (!out)
        goto out_free;
    for (char *p = old; p && *p;) {
        char *end = strchr(p, '\n');
        size_t ll = end ? (size_t)(end - p + 1) : strlen(p);
        if (!(ll > hl && !strncmp(p, host, hl) && (p[hl] == ' ' || p[hl] == '\t'))) {
            memcpy(out + n, p, ll);
            n += ll;
            if (!end)
                out[n++] = '\n';
        }
        p += ll;
    }
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char type[64], blob[16384];
        if (sscanf(line, "%63s %16383s", type, blob) != 2)
            continue;
        int k = snprintf(out + n, cap - n, "%s %s %s\n", host, type, blob);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
        count++;
    }
    rc = count && write_atomic(path, out, n, 0644) == 0 ? count : -1;
    free(out);
out_free:
    free(old);
    free(copy);
    return rc;
}

/* For the ProxyCommand line (run by the shell, after ssh's % expansion). */
static void quoted(char *out, size_t len, const char *s)
{
    bool plain = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                           "/._-:+@=,") == strlen(s);
    size_t n = 0;

    if (!plain && n + 1 < len)
        out[n++] = '\'';
    for (; *s && n + 6 < len; s++) {
        if (*s == '%')
            out[n++] = '%';
        if (*s == '\'' && !plain) {
            memcpy(out + n, "'\\''", 4);
            n += 4;
            continue;
        }
        out[n++] = *s;
    }
    if (!plain)
        out[n++] = '\'';
    out[n] = '\0';
}

static bool starts_block(const char *line, size_t ll)
{
    while (ll && (*line == ' ' || *line == '\t')) {
        line++;
        ll--;
    }
    return (ll > 5 && !strncasecmp(line, "host", 4) && (line[4] == ' ' || line[4] == '\t')) ||
           (ll > 6 && !strncasecmp(line, "match", 5) && (line[5] == ' ' || line[5] == '\t'));
}

static bool is_our_block(const char *line, size_t ll, const char *host)
{
    char buf[256];

    if (ll >= sizeof(buf))
        return false;
    memcpy(buf, line, ll);
    buf[ll] = '\0';
    char kw[16], pat[200], extra[8];
    return sscanf(buf, "%15s %199s %7s", kw, pat, extra) == 2 && !strcasecmp(kw, "host") &&
           !strcmp(pat, host);
}

/* Writes block in place of the old "Host host" block, or at the end. */
static int update_config(const char *path, const char *host, const char *block)
{
    size_t len = 0, n = 0;
    char *old = slurp(path, &len), *out;
    bool placed = false, skipping = false;
    struct stat st;
    mode_t mode = 0600;
    int rc = -1;

    if (!old && errno != ENOENT)
        return -1;
    if (old && stat(path, &st) == 0)
        mode = st.st_mode & 0777;
    out = malloc(len + strlen(block) + 4);
    if (!out)
        goto out;
    for (char *p = old; p && *p;) {
        char *end = strchr(p, '\n');
        size_t ll = end ? (size_t)(end - p) : strlen(p);
        if (starts_block(p, ll)) {
            skipping = is_our_block(p, ll, host);
            if (skipping && !placed) {
                memcpy(out + n, block, strlen(block));
                n += strlen(block);
                placed = true;
            }
        }
        if (!skipping) {
            memcpy(out + n, p, ll);
            n += ll;
            out[n++] = '\n';
        }
        p += ll + (end ? 1 : 0);
    }
    if (!placed) {
        if (n && !(n >= 2 && out[n - 1] == '\n' && out[n - 2] == '\n'))
            out[n++] = '\n';
        memcpy(out + n, block, strlen(block));
        n += strlen(block);
    }
    rc = write_atomic(path, out, n, mode);
out:
    free(old);
    free(out);
    return rc;
}

/* ~/.config/sbx/api-key, 0600, when it does not hold the key in use. */
static int save_api_key(const char *key)
{
    const char *home = getenv("HOME");
    char *cur = cli_key_from_file(), dir[PATH_MAX], path[PATH_MAX], line[1100];
    int rc = 0;

    if (!key || !*key || !home || (cur && !strcmp(cur, key)))
        goto out;
    snprintf(dir, sizeof(dir), "%s/.config", home);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/.config/sbx", home);
    mkdir(dir, 0700);
    if (join(path, sizeof(path), dir, "/api-key")) {
        rc = -1;
        goto out;
    }
    snprintf(line, sizeof(line), "%s\n", key);
    rc = write_atomic(path, line, strlen(line), 0600);
out:
    free(cur);
    return rc;
}

static int make_block(char *out, size_t len, const struct cli_conn *conn, const char *name,
                      const char *known_hosts, const char *identity)
{
    char exe[PATH_MAX], qexe[PATH_MAX * 2], qurl[2048], idline[PATH_MAX + 32] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    int k;

    if (n <= 0)
        return -1;
    exe[n] = '\0';
    quoted(qexe, sizeof(qexe), exe);
    quoted(qurl, sizeof(qurl), conn->url);
    if (identity) {     /* ssh needs the private half of a key it would not try itself */
        char priv[PATH_MAX];
        size_t il = strlen(identity);
        snprintf(priv, sizeof(priv), "%.*s", (int)(il > 4 && !strcmp(identity + il - 4, ".pub")
                                                   ? il - 4 : il), identity);
        char *abs = realpath(priv, NULL);
        snprintf(idline, sizeof(idline), "    IdentityFile %s\n", abs ? abs : priv);
        free(abs);
    }
    k = snprintf(out, len,
                 "Host sandbox-%s\n"
                 "    User root\n"
                 "    ProxyCommand %s --api-url %s tunnel %s --remote-port 22 --stdio\n"
                 "    UserKnownHostsFile %s\n"
                 "    StrictHostKeyChecking yes\n%s",
                 name, qexe, qurl, name, known_hosts, idline);
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

static int sandbox_side(const struct cli_conn *conn, const char *name, const char *key,
                        char **host_keys)
{
    char why[512];

    if (remote_sh(conn, name, install_key, key, NULL, why, sizeof(why))) {
        fprintf(stderr, "sbx: ssh-setup: could not add the key to /root/.ssh/authorized_keys: "
                        "%s\n", why);
        return 1;
    }
    int rc = remote_sh(conn, name, start_sshd, NULL, NULL, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "sbx: ssh-setup: %s\n", why);
        return 1;
    }
    if (rc)
        fprintf(stderr, "sbx: warning: sshd did not start in %s (%s); ssh will not work until "
                        "it runs on port 22\n", name, why);
    if (remote_sh(conn, name, read_host_keys, NULL, host_keys, why, sizeof(why))) {
        fprintf(stderr, "sbx: ssh-setup: no host keys in /etc/ssh of %s: %s\n", name, why);
        return 1;
    }
    return 0;
}

static bool home_is_passwd_home(const char *home)
{
    const struct passwd *pw = getpwuid(getuid());
    char a[PATH_MAX], b[PATH_MAX];

    if (!home || !pw || !pw->pw_dir || !realpath(home, a) || !realpath(pw->pw_dir, b))
        return false;
    return strcmp(a, b) == 0;
}

int cli_ssh_setup(const struct cli_conn *conn, const char *name, const char *identity,
                  const char *ssh_dir, bool pretty)
{
    const char *home = getenv("HOME");
    char dir[PATH_MAX], used[PATH_MAX], kh[PATH_MAX], cfg[PATH_MAX], host[160], kh_ref[PATH_MAX];
    char block[PATH_MAX * 4], *key = NULL, *host_keys = NULL;
    int rc = 1, count;

    if (!ssh_dir && (!home || !*home)) {
        fprintf(stderr, "sbx: ssh-setup: HOME is not set (or pass --ssh-dir)\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s", ssh_dir ? ssh_dir : home);
    if (!ssh_dir)
        strncat(dir, "/.ssh", sizeof(dir) - strlen(dir) - 1);
    snprintf(host, sizeof(host), "sandbox-%.120s", name);
    if (join(kh, sizeof(kh), dir, "/known_hosts_sandboxes") ||
        join(cfg, sizeof(cfg), dir, "/config")) {
        fprintf(stderr, "sbx: ssh-setup: --ssh-dir too long\n");
        return 2;
    }
    /* The block names the default file as ssh users write it, but ssh expands ~ to
     * the passwd home, not $HOME: where the two differ, the path is written whole. */
    snprintf(kh_ref, sizeof(kh_ref), "%s",
             ssh_dir || !home_is_passwd_home(home) ? kh : "~/.ssh/known_hosts_sandboxes");
    key = read_identity(identity, dir, used, sizeof(used));
    if (!key)
        goto out;
    if (sandbox_side(conn, name, key, &host_keys))
        goto out;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "sbx: ssh-setup: %s: %s\n", dir, strerror(errno));
        goto out;
    }
    count = update_known_hosts(kh, host, host_keys);
    if (count <= 0) {
        fprintf(stderr, "sbx: ssh-setup: could not write host keys to %s%s\n", kh,
                count ? "" : " (the sandbox gave none)");
        goto out;
    }
    if (make_block(block, sizeof(block), conn, name, kh_ref, identity) ||
        update_config(cfg, host, block)) {
        fprintf(stderr, "sbx: ssh-setup: could not write %s\n", cfg);
        goto out;
    }
    if (save_api_key(conn->key))
        fprintf(stderr, "sbx: warning: could not save the API key in ~/.config/sbx/api-key\n");
    if (pretty) {
        printf("ssh config: %s\nknown hosts: %s (%d keys)\nconnect with: ssh %s\n", cfg, kh,
               count, host);
    } else {
        json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:s}", "host", host, "ssh_config", cfg,
                              "known_hosts", kh, "host_keys", count, "identity", used);
        cli_print_json(j);
        json_decref(j);
    }
    rc = 0;
out:
    free(key);
    free(host_keys);
    return rc;
}
