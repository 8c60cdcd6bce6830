/* exec: one-shot (POST .../exec, output collected into the reply) and the
 * WebSocket session (GET .../exec/ws) that streams both ways. */
#include "dataplane_int.h"

#include "apilog.h"
#include "snapshot.h"
#include "validate.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUTPUT_CAP (16u << 20)          /* per stream, one-shot */
#define DEFAULT_TIMEOUT_S 600
#define MAX_TIMEOUT_S (7LL * 24 * 3600)
#define MAX_ARGS 4096
#define PING_MS 20000
#define FIRST_MSG_MS 30000
#define CLOSE_WAIT_MS 3000
#define AGENT_OUT_HIGH (256u << 10)     /* stop reading the client above this */
#define WS_OUT_HIGH (1u << 20)          /* stop reading the agent above this */

/* ---- the exec request, shared by both forms ---- */

struct exec_req {
    const char **argv;          /* borrowed from the JSON, NULL-terminated */
    char **envp;                /* owned */
    char *cwd, *user;           /* owned: the image config's, when o.cwd/o.user are them */
    struct agent_exec_opts o;
};

static void exec_req_free(struct exec_req *x)
{
    for (char **p = x->envp; p && *p; p++)
        free(*p);
    free(x->envp);
    free(x->argv);
    free(x->cwd);
    free(x->user);
    memset(x, 0, sizeof(*x));
}

static int read_command(json_t *cmd, struct exec_req *x, struct dperr *e)
{
    static const char *sh[] = { "/bin/sh", "-c" };
    size_t n, i;
    json_t *v;

    if (json_is_string(cmd)) {
        if (!json_string_length(cmd))
            return dp_fail(e, 400, "validation", "command is empty");
        x->argv = calloc(4, sizeof(*x->argv));
        if (!x->argv)
            return dp_fail(e, 500, "internal", "out of memory");
        x->argv[0] = sh[0];
        x->argv[1] = sh[1];
        x->argv[2] = json_string_value(cmd);
        return 0;
    }
    n = json_array_size(cmd);
    if (!json_is_array(cmd) || n == 0 || n > MAX_ARGS)
        return dp_fail(e, 400, "validation",
                       "command must be a string or a non-empty array of strings");
    x->argv = calloc(n + 1, sizeof(*x->argv));
    if (!x->argv)
        return dp_fail(e, 500, "internal", "out of memory");
    json_array_foreach(cmd, i, v) {
        if (!json_is_string(v))
            return dp_fail(e, 400, "validation", "command[%zu] is not a string", i);
        x->argv[i] = json_string_value(v);
    }
    return 0;
}

static int read_env(json_t *env, struct exec_req *x, struct dperr *e)
{
    const char *k;
    size_t i = 0;
    json_t *v;

    if (!env)
        return 0;
    if (!json_is_object(env) || json_object_size(env) > MAX_ARGS)
        return dp_fail(e, 400, "validation", "env must be an object of strings");
    x->envp = calloc(json_object_size(env) + 1, sizeof(*x->envp));
    if (!x->envp)
        return dp_fail(e, 500, "internal", "out of memory");
    json_object_foreach(env, k, v) {
        if (!json_is_string(v) || !*k || strchr(k, '='))
            return dp_fail(e, 400, "validation", "env.%.64s must be a string with a valid name",
                           k);
        if (asprintf(&x->envp[i], "%s=%s", k, json_string_value(v)) < 0) {
            x->envp[i] = NULL;
            return dp_fail(e, 500, "internal", "out of memory");
        }
        i++;
    }
    return 0;
}

static int read_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    struct dperr *e)
{
    struct apierr aerr;
    bool present;

    if (valid_int_field(obj, key, min, max, out, &present, &aerr))
        return dp_fail(e, 400, "validation", "%s", aerr.message);
    return 0;
}

static int read_bool(json_t *obj, const char *key, int *out, struct dperr *e)
{
    json_t *v = json_object_get(obj, key);

    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return dp_fail(e, 400, "validation", "%s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int read_str(json_t *obj, const char *key, const char **out, struct dperr *e)
{
    struct apierr aerr;

    if (valid_str_field(obj, key, 4000, out, &aerr))
        return dp_fail(e, 400, "validation", "%s", aerr.message);
    return 0;
}

/* The fields common to one-shot and start messages; timeout is the default. */
static int read_exec(json_t *obj, int64_t timeout, struct exec_req *x, struct dperr *e)
{
    json_t *cmd = json_object_get(obj, "command");

    if (!cmd)
        return dp_fail(e, 400, "validation", "command is required");
    if (read_command(cmd, x, e) || read_env(json_object_get(obj, "env"), x, e) ||
        read_str(obj, "cwd", &x->o.cwd, e) || read_str(obj, "user", &x->o.user, e) ||
        read_int(obj, "timeout_seconds", 0, MAX_TIMEOUT_S, &timeout, e))
        return -1;
    x->o.argv = x->argv;
    x->o.envp = (const char *const *)x->envp;
    x->o.timeout_ms = (uint64_t)timeout * 1000;
    return 0;
}

/* ---- the defaults of the sandbox's image config (Env, WorkingDir, User) ---- */

/* Whether the variable of "NAME=..." entry is set in envp (NULL-terminated,
 * may be NULL), or in image entries env[from...]. */
static bool env_sets(char *const *envp, json_t *env, size_t from, const char *entry)
{
    size_t n = strcspn(entry, "=");

    for (; envp && *envp; envp++)
        if (!strncmp(*envp, entry, n) && (*envp)[n] == '=')
            return true;
    for (size_t i = from; i < json_array_size(env); i++) {
        const char *s = json_string_value(json_array_get(env, i));
        if (s && !strncmp(s, entry, n) && s[n] == '=')
            return true;
    }
    return false;
}

/* The image's Env first, then the request's: a variable the request sets (or
 * a later image entry, as in Docker) replaces the image's entry. */
static int merge_env(json_t *env, struct exec_req *x)
{
    size_t n_img = json_array_size(env), n_req = 0, k = 0;
    char **out;

    for (char **p = x->envp; p && *p; p++)
        n_req++;
    out = calloc(n_img + n_req + 1, sizeof(*out));
    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < n_img; i++) {
        const char *s = json_string_value(json_array_get(env, i));
        if (!s || !strchr(s, '=') || env_sets(x->envp, env, i + 1, s))
            continue;
        if (!(out[k++] = strdup(s))) {
            for (size_t j = 0; j < k; j++)
                free(out[j]);
            free(out);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n_req; i++)
        out[k++] = x->envp[i];
    free(x->envp);
    x->envp = out;
    x->o.envp = (const char *const *)out;
    return 0;
}

/* The image config of t's snapshot: its Env is the base environment, its
 * WorkingDir the default cwd, its User (the name or uid before any ":group";
 * the agent takes the group from /etc/passwd) the default user. Snapshots
 * without one change nothing. */
static int image_defaults(struct dataplane *dp, const struct dp_target *t, struct exec_req *x,
                          struct dperr *e)
{
    json_t *cfg = snapshot_config_json(dp->cfg.svc, t->snapshot_id);
    const char *wd = json_string_value(json_object_get(cfg, "working_dir"));
    const char *user = json_string_value(json_object_get(cfg, "user"));
    int rc = 0;

    if (json_array_size(json_object_get(cfg, "env")) &&
        merge_env(json_object_get(cfg, "env"), x))
        rc = -1;
    if (!rc && !x->o.cwd && wd && wd[0]) {
        if (!(x->cwd = strdup(wd)))
            rc = -1;
        x->o.cwd = x->cwd;
    }
    if (!rc && !x->o.user && user && strcspn(user, ":")) {
        if (!(x->user = strndup(user, strcspn(user, ":"))))
            rc = -1;
        x->o.user = x->user;
    }
    json_decref(cfg);
    return rc ? dp_fail(e, 500, "internal", "out of memory") : 0;
}

static int known_fields(json_t *obj, const char *const *allowed, struct dperr *e)
{
    struct apierr aerr;

    if (valid_known_fields(obj, allowed, &aerr))
        return dp_fail(e, 400, "validation", "%s", aerr.message);
    return 0;
}

static int read_start(json_t *m, struct exec_req *x, struct dperr *e);

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* The bytes as a JSON string, invalid UTF-8 (and NUL) replaced by U+FFFD. */
json_t *dp_utf8_json(const uint8_t *p, size_t n)
{
    char *out = malloc(n * 3 + 1);
    size_t o = 0, i = 0;
    json_t *s;

    if (!out)
        return NULL;
    while (i < n) {
        size_t len = p[i] ? utf8_seq(p + i, n - i) : 0;
        if (len) {
            memcpy(out + o, p + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    s = json_stringn(out, o);
    free(out);
    return s;
}

/* ---- one-shot ---- */

struct capture {
    uint8_t *data;
    size_t len, cap;
    bool truncated;
};

static void capture_add(struct capture *c, const uint8_t *p, size_t n)
{
    if (n > OUTPUT_CAP - c->len) {
        n = OUTPUT_CAP - c->len;
        c->truncated = true;
    }
    if (dp_reserve(&c->data, &c->cap, c->len + n)) {
        c->truncated = true;
        return;
    }
    memcpy(c->data + c->len, p, n);
    c->len += n;
}

struct oneshot {
    struct dataplane *dp;
    struct dp_target t;
    struct agent_client ac;
    struct dp_outbuf out;       /* stdin frames, then STDIN_EOF */
    struct capture so, se;
    struct agent_exec_event exit;
    bool exited;
};

/* Feeds stdin and collects output with poll, so a command that writes much
 * before it reads its stdin cannot deadlock us. */
static int oneshot_pump(struct oneshot *s)
{
    struct agent_exec_event ev;

    for (;;) {
        struct pollfd p = { .fd = s->ac.fd, .events = POLLIN | (s->out.len ? POLLOUT : 0) };
        int rc;

        while ((rc = agent_client_exec_next(&s->ac, &ev)) == 0) {
            if (ev.type == AGENT_STDOUT)
                capture_add(&s->so, ev.data, ev.len);
            else if (ev.type == AGENT_STDERR)
                capture_add(&s->se, ev.data, ev.len);
            else if (ev.type == AGENT_EXIT) {
                s->exit = ev;
                return 0;
            }
        }
        if (rc != -EAGAIN)
            return rc;
        if ((rc = dp_outbuf_flush(&s->out, s->ac.fd)) < 0)
            return rc;
        p.events = POLLIN | (s->out.len ? POLLOUT : 0);
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            return -errno;
        dp_touch_maybe(s->dp, &s->t);
    }
}

static int queue_stdin(struct oneshot *s, uint32_t id, const char *in, size_t n)
{
    while (n) {
        size_t chunk = n > AGENT_MAX_PAYLOAD ? AGENT_MAX_PAYLOAD : n;
        int rc = dp_outbuf_frame(&s->out, AGENT_STDIN, id, in, chunk);
        if (rc)
            return rc;
        in += chunk;
        n -= chunk;
    }
    return dp_outbuf_frame(&s->out, AGENT_STDIN_EOF, id, NULL, 0);
}

static json_t *oneshot_reply(struct oneshot *s, uint32_t id)
{
    return json_pack("{s:I,s:i,s:i,s:b,s:o*,s:o*,s:b,s:b}", "command_id", (json_int_t)id,
                     "exit_code", s->exit.exit_code, "signal", s->exit.signal, "timed_out",
                     s->exit.timed_out, "stdout", dp_utf8_json(s->so.data, s->so.len), "stderr",
                     dp_utf8_json(s->se.data, s->se.len), "stdout_truncated", s->so.truncated,
                     "stderr_truncated", s->se.truncated);
}

static int oneshot_run(struct oneshot *s, struct exec_req *x, const char *in, size_t in_len,
                       json_t **out, struct dperr *e)
{
    uint32_t id = 0;
    int rc, fl;

    x->o.no_stdin = !in;
    x->o.kill_on_disconnect = 1;
    rc = agent_client_exec(&s->ac, &x->o, &id);
    if (rc < 0)
        return dp_fail_errno(e, rc, s->ac.error, "exec");
    if (in && queue_stdin(s, id, in, in_len))
        return dp_fail(e, 500, "internal", "out of memory");
    fl = fcntl(s->ac.fd, F_GETFL);
    if (fl < 0 || fcntl(s->ac.fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return dp_fail(e, 500, "internal", "fcntl: %s", strerror(errno));
    rc = oneshot_pump(s);
    if (rc < 0)
        return dp_fail(e, 500, "internal", "lost the guest agent during exec: %s",
                       s->ac.error[0] ? s->ac.error : strerror(-rc));
    *out = oneshot_reply(s, id);
    return *out ? 0 : dp_fail(e, 500, "internal", "out of memory");
}

int dp_exec_oneshot(struct dp_call *c, json_t **out, struct dperr *e)
{
    static const char *const allowed[] = { "command", "env", "cwd", "user", "timeout_seconds",
                                           "stdin", NULL };
    struct oneshot *s = calloc(1, sizeof(*s));
    struct exec_req x = { 0 };
    struct apierr aerr;
    json_t *obj = NULL, *in;
    int rc = -1;

    if (!s)
        return dp_fail(e, 500, "internal", "out of memory");
    s->dp = c->dp;
    s->ac.fd = -1;
    if (valid_parse_object(c->body, c->body_len, false, &obj, &aerr)) {
        dp_fail(e, 400, "validation", "%s", aerr.message);
        goto out;
    }
    in = json_object_get(obj, "stdin");
    if (known_fields(obj, allowed, e) || read_exec(obj, DEFAULT_TIMEOUT_S, &x, e))
        goto out;
    if (in && !json_is_string(in)) {
        dp_fail(e, 400, "validation", "stdin must be a string");
        goto out;
    }
    if (dp_lookup(c->dp, c->name, &s->t, e) || image_defaults(c->dp, &s->t, &x, e) ||
        dp_agent_open(c->dp, &s->t, &s->ac, e))
        goto out;
    rc = oneshot_run(s, &x, in ? json_string_value(in) : NULL, in ? json_string_length(in) : 0,
                     out, e);
    dp_touch(c->dp, &s->t);
out:
    dp_agent_close(c->dp, &s->ac);
    dp_outbuf_free(&s->out);
    free(s->so.data);
    free(s->se.data);
    free(s);
    exec_req_free(&x);
    json_decref(obj);
    return rc;
}

int dp_exec_parse(const char *body, size_t len, bool stream, struct dperr *e)
{
    static const char *const allowed[] = { "command", "env", "cwd", "user", "timeout_seconds",
                                           "stdin", NULL };
    struct exec_req x = { 0 };
    struct apierr aerr;
    json_t *obj;
    int rc;

    if (valid_parse_object(body, len, false, &obj, &aerr))
        return dp_fail(e, 400, "validation", "%s", aerr.message);
    if (stream)
        rc = read_start(obj, &x, e);
    else
        rc = known_fields(obj, allowed, e) || read_exec(obj, DEFAULT_TIMEOUT_S, &x, e) ? -1 : 0;
    exec_req_free(&x);
    json_decref(obj);
    return rc;
}

/* ---- WebSocket session ---- */

/* A message that came with the first one, before the command ran. */
struct early_msg {
    struct early_msg *next;
    bool text;
    size_t len;
    uint8_t data[];
};

struct session {
    struct dataplane *dp;
    struct dp_target *t;
    struct ws *ws;
    struct agent_client ac;
    struct dp_outbuf out;       /* frames for the agent */
    json_t *first;              /* the first message, until the command starts */
    bool first_bad;
    uint32_t id;
    bool running;               /* attached to the agent */
    bool done;                  /* exit (or error) sent, close queued */
    bool client_gone;
    int64_t last_io_ms;
    struct early_msg *early, **early_tail;
    size_t early_bytes;
};

static void send_error_close(struct session *s, uint16_t code, const char *type, const char *msg)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type,
                          "message", msg);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (text)
        ws_send_json_text(s->ws, text);
    free(text);
    json_decref(j);
    ws_close(s->ws, code, NULL);
    s->done = true;
}

static void send_json_msg(struct session *s, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (text)
        ws_send_json_text(s->ws, text);
    free(text);
    json_decref(j);
}

static void on_control(struct session *s, json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    uint8_t pay[16];

    if (!type)
        return;
    if (!strcmp(type, "stdin_eof")) {
        dp_outbuf_frame(&s->out, AGENT_STDIN_EOF, s->id, NULL, 0);
    } else if (!strcmp(type, "signal") || !strcmp(type, "kill")) {
        json_int_t sig = !strcmp(type, "kill") ? 9
                                               : json_integer_value(json_object_get(msg, "signal"));
        if (sig <= 0 || sig > 64)
            return;
        agent_put16(pay, AGENT_T_SIGNAL);
        agent_put16(pay + 2, 4);
        agent_put32(pay + 4, (uint32_t)sig);
        dp_outbuf_frame(&s->out, AGENT_SIGNAL, s->id, pay, 8);
    } else if (!strcmp(type, "resize")) {
        json_int_t rows = json_integer_value(json_object_get(msg, "rows"));
        json_int_t cols = json_integer_value(json_object_get(msg, "cols"));
        if (rows <= 0 || cols <= 0 || rows > 10000 || cols > 10000)
            return;
        agent_put16(pay, AGENT_T_ROWS);
        agent_put16(pay + 2, 4);
        agent_put32(pay + 4, (uint32_t)rows);
        agent_put16(pay + 8, AGENT_T_COLS);
        agent_put16(pay + 10, 4);
        agent_put32(pay + 12, (uint32_t)cols);
        dp_outbuf_frame(&s->out, AGENT_RESIZE, s->id, pay, 16);
    }
}

/* Stdin or control messages sent right behind start, read in the same batch:
 * kept (bounded) and replayed once the command runs. */
static void keep_early(struct session *s, bool text, const uint8_t *data, size_t len)
{
    struct early_msg *m;

    if (len > WS_OUT_HIGH - s->early_bytes || !(m = malloc(sizeof(*m) + len)))
        return;
    m->next = NULL;
    m->text = text;
    m->len = len;
    memcpy(m->data, data, len);
    *s->early_tail = m;
    s->early_tail = &m->next;
    s->early_bytes += len;
}

static void free_early(struct session *s)
{
    while (s->early) {
        struct early_msg *m = s->early;
        s->early = m->next;
        free(m);
    }
    s->early_tail = &s->early;
    s->early_bytes = 0;
}

static void on_message(void *arg, bool text, const uint8_t *data, size_t len);

static void replay_early(struct session *s)
{
    for (struct early_msg *m = s->early; m; m = m->next)
        on_message(s, m->text, m->data, m->len);
    free_early(s);
}

static void on_message(void *arg, bool text, const uint8_t *data, size_t len)
{
    struct session *s = arg;
    json_t *msg;

    s->last_io_ms = dp_mono_ms();
    if (!s->running) {
        if (s->first || s->first_bad) {
            keep_early(s, text, data, len);
            return;
        }
        s->first = text ? json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        s->first_bad = !json_is_object(s->first);
        return;
    }
    if (s->done)
        return;
    if (!text) {
        /* Stream 0 is stdin; other first bytes are ignored. */
        for (size_t off = 1; len > 0 && data[0] == 0 && off < len;) {
            size_t chunk = len - off > AGENT_MAX_PAYLOAD ? AGENT_MAX_PAYLOAD : len - off;
            dp_outbuf_frame(&s->out, AGENT_STDIN, s->id, data + off, chunk);
            off += chunk;
        }
        return;
    }
    msg = json_loadb((const char *)data, len, 0, NULL);
    on_control(s, msg);
    json_decref(msg);
}

static void on_close(void *arg, uint16_t code)
{
    struct session *s = arg;

    (void)code;
    s->client_gone = true;
}

static bool can_read(void *arg)
{
    struct session *s = arg;

    /* Nothing more is read between the first message and the command's start. */
    if (!s->running && (s->first || s->first_bad))
        return false;
    return s->out.len < AGENT_OUT_HIGH;
}

static const struct ws_handlers handlers = {
    .on_message = on_message, .on_close = on_close, .can_read = can_read,
};

/* Waits for the first message. Returns 0 when one arrived. */
static int wait_first(struct session *s, int fd)
{
    int64_t deadline = dp_mono_ms() + FIRST_MSG_MS;

    ws_io(s->ws, 0);
    while (!s->first && !s->first_bad && !s->client_gone) {
        struct pollfd p = { .fd = fd, .events = ws_events(s->ws) };
        int64_t left = deadline - dp_mono_ms();
        if (left <= 0 || !p.events)
            return -1;
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            return -1;
        if (ws_io(s->ws, p.revents) < 0)
            return -1;
    }
    return s->first ? 0 : -1;
}

static int read_start(json_t *m, struct exec_req *x, struct dperr *e)
{
    static const char *const allowed[] = { "type", "command", "env", "cwd", "user",
                                           "timeout_seconds", "pty", "rows", "cols",
                                           "kill_on_disconnect", NULL };
    int64_t rows = 0, cols = 0;

    /* A stream is interactive: no timeout unless asked for. */
    if (known_fields(m, allowed, e) || read_exec(m, 0, x, e) ||
        read_bool(m, "pty", &x->o.pty, e) ||
        read_bool(m, "kill_on_disconnect", &x->o.kill_on_disconnect, e) ||
        read_int(m, "rows", 1, 10000, &rows, e) || read_int(m, "cols", 1, 10000, &cols, e))
        return -1;
    x->o.rows = (unsigned)rows;
    x->o.cols = (unsigned)cols;
    return 0;
}

struct first_msg {
    bool attach;
    struct exec_req x;          /* start */
    uint32_t id;                /* attach */
    uint64_t offset;
};

/* Reads the first message into f; 0, or -1 with e filled (a close 1008). */
static int read_first(json_t *m, struct first_msg *f, struct dperr *e)
{
    static const char *const attach_fields[] = { "type", "command_id", "offset", NULL };
    const char *type = json_string_value(json_object_get(m, "type"));
    int64_t id = 0, off = 0;

    if (type && !strcmp(type, "start"))
        return read_start(m, &f->x, e);
    if (!type || strcmp(type, "attach"))
        return dp_fail(e, 400, "validation", "the first message must be start or attach");
    f->attach = true;
    if (known_fields(m, attach_fields, e) ||
        read_int(m, "command_id", 1, UINT32_MAX, &id, e) ||
        read_int(m, "offset", 0, INT64_MAX, &off, e))
        return -1;
    if (!id)
        return dp_fail(e, 400, "validation", "attach needs command_id");
    f->id = (uint32_t)id;
    f->offset = (uint64_t)off;
    return 0;
}

/* Starts or attaches per the first message; sends started/attached. */
static int begin_command(struct session *s)
{
    struct first_msg f = { 0 };
    struct dperr e = { 0 };
    uint64_t first = 0;
    int rc = -1, running = 0;

    if (read_first(s->first, &f, &e)) {
        send_error_close(s, 1008, e.type, e.message);
        goto out;
    }
    if (!f.attach && image_defaults(s->dp, s->t, &f.x, &e)) {
        send_error_close(s, 1011, e.type, e.message);
        goto out;
    }
    if (dp_agent_open(s->dp, s->t, &s->ac, &e)) {
        send_error_close(s, 1011, e.type, e.message);
        goto out;
    }
    s->id = f.id;
    rc = f.attach ? agent_client_attach(&s->ac, s->id, f.offset, &first, &running)
                  : agent_client_exec(&s->ac, &f.x.o, &s->id);
    if (rc < 0) {
        dp_fail_errno(&e, rc, s->ac.error, f.attach ? "attach" : "exec");
        send_error_close(s, 1011, e.type, e.message);
    } else if (f.attach) {
        send_json_msg(s, json_pack("{s:s,s:I,s:I,s:b}", "type", "attached", "command_id",
                                   (json_int_t)s->id, "offset", (json_int_t)first, "running",
                                   running));
    } else {
        send_json_msg(s, json_pack("{s:s,s:I}", "type", "started", "command_id",
                                   (json_int_t)s->id));
    }
out:
    exec_req_free(&f.x);
    return rc < 0 ? -1 : 0;
}

static void handle_agent_frame(struct session *s, const struct agent_exec_event *ev)
{
    s->last_io_ms = dp_mono_ms();
    if (ev->type == AGENT_STDOUT || ev->type == AGENT_STDERR) {
        ws_send(s->ws, false, ev->type == AGENT_STDOUT ? 1 : 2, ev->data, ev->len);
        return;
    }
    if (ev->type == AGENT_EXIT) {
        send_json_msg(s, json_pack("{s:s,s:i,s:i,s:b}", "type", "exit", "exit_code",
                                   ev->exit_code, "signal", ev->signal, "timed_out",
                                   ev->timed_out));
        ws_close(s->ws, 1000, NULL);
        s->done = true;
    }
}

/* Reads what the agent has, while the client's queue has room. */
static void pump_agent(struct session *s)
{
    struct agent_exec_event ev;
    int rc = 0;

    while (!s->done && ws_queued(s->ws) < WS_OUT_HIGH &&
           (rc = agent_client_exec_next(&s->ac, &ev)) == 0)
        handle_agent_frame(s, &ev);
    if (!s->done && rc < 0 && rc != -EAGAIN)
        send_error_close(s, 1011, "internal",
                         rc == -ECONNRESET ? "the guest agent connection ended"
                                           : "the guest agent failed during exec");
}

static void run_stream(struct session *s, int fd)
{
    int64_t close_deadline = 0;
    int fl = fcntl(s->ac.fd, F_GETFL);

    if (fl < 0 || fcntl(s->ac.fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return;
    s->running = true;
    s->last_io_ms = dp_mono_ms();
    replay_early(s);
    ws_io(s->ws, 0);            /* bytes that came with the first message */
    while (!s->client_gone) {
        struct pollfd p[2] = {
            { .fd = fd, .events = ws_events(s->ws) },
            { .fd = s->ac.fd, .events = (short)((s->done ? 0 : POLLIN) |
                                                (s->out.len ? POLLOUT : 0)) },
        };
        if (!s->done && ws_queued(s->ws) >= WS_OUT_HIGH)
            p[1].events &= (short)~POLLIN;
        if (s->done && !close_deadline)
            close_deadline = dp_mono_ms() + CLOSE_WAIT_MS;
        if (ws_finished(s->ws) || (close_deadline && dp_mono_ms() > close_deadline))
            break;
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (ws_io(s->ws, p[0].revents) < 0)
            break;
        if (!s->done && dp_outbuf_flush(&s->out, s->ac.fd) < 0)
            send_error_close(s, 1011, "internal", "the guest agent connection ended");
        pump_agent(s);
        dp_touch_maybe(s->dp, s->t);
        if (!s->done && dp_mono_ms() - s->last_io_ms >= PING_MS) {
            ws_ping(s->ws);
            s->last_io_ms = dp_mono_ms();
        }
    }
    /* Flush what is queued (close frame) without waiting for the client. */
    ws_io(s->ws, 0);
}

void dp_exec_session(struct dataplane *dp, struct dp_target *t, int fd, const void *extra,
                     size_t extra_len)
{
    struct session *s = calloc(1, sizeof(*s));

    if (!s)
        return;
    s->dp = dp;
    s->t = t;
    s->ac.fd = -1;
    s->early_tail = &s->early;
    s->ws = ws_new(fd, extra, extra_len, &handlers, s);
    if (!s->ws)
        goto out;
    if (wait_first(s, fd) == 0 || s->first_bad) {
        if (s->first_bad)
            send_error_close(s, 1008, "validation", "the first message must be a JSON object");
        else if (begin_command(s) == 0)
            run_stream(s, fd);
    }
    if (s->done && !s->running) {
        /* An error before the stream: give the close frame a moment to leave. */
        for (int i = 0; i < 30 && !ws_finished(s->ws); i++) {
            struct pollfd p = { .fd = fd, .events = ws_events(s->ws) };
            poll(&p, 1, 100);
            if (ws_io(s->ws, p.revents) < 0)
                break;
        }
    }
out:
    dp_agent_close(dp, &s->ac);
    dp_outbuf_free(&s->out);
    json_decref(s->first);
    free_early(s);
    ws_free(s->ws);
    free(s);
}
