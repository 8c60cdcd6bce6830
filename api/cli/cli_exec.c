/* sbx exec / console over the exec WebSocket: see cli_exec.h. */
#include "cli_exec.h"
#include "cli_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

struct run {
    bool got_exit, timed_out, failed;
    int exit_code, signal;
    int stdout_fd;
    int interrupts;             /* SIGINTs forwarded */
    struct cli_ws_fd *in;       /* stdin's entry: unwatched once the command exited */
};

/* The terminal's settings before raw mode, put back at exit whatever path. */
static struct termios saved_tio;
static bool raw_on;

static void restore_terminal(void)
{
    if (raw_on)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
    raw_on = false;
}

static void raw_terminal(void)
{
    struct termios tio;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio))
        return;
    tio = saved_tio;
    cfmakeraw(&tio);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &tio))   /* keep type-ahead */
        return;
    raw_on = true;
    atexit(restore_terminal);
}

static void window_size(int *rows, int *cols)
{
    struct winsize w;

    *rows = 24;
    *cols = 80;
    if ((ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 || ioctl(STDIN_FILENO, TIOCGWINSZ, &w) == 0) &&
        w.ws_row && w.ws_col) {
        *rows = w.ws_row;
        *cols = w.ws_col;
    }
}

static void on_text(struct cli_ws *ws, const char *msg, size_t len, void *arg)
{
    struct run *r = arg;
    json_t *j = json_loadb(msg, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));

    (void)ws;
    if (type && !strcmp(type, "exit")) {
        r->got_exit = true;
        r->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
        r->signal = (int)json_integer_value(json_object_get(j, "signal"));
        r->timed_out = json_is_true(json_object_get(j, "timed_out"));
        r->in->fd = -1;
    } else if (type && !strcmp(type, "error")) {
        json_t *e = json_object_get(j, "error");
        restore_terminal();
        fprintf(stderr, "sbx: %s: %s\n", json_string_value(json_object_get(e, "type")) ?: "error",
                json_string_value(json_object_get(e, "message")) ?: "(no message)");
        r->failed = true;
    }
    json_decref(j);
}

static void on_binary(struct cli_ws *ws, const uint8_t *msg, size_t len, void *arg)
{
    struct run *r = arg;

    if (len < 1 || (msg[0] != 1 && msg[0] != 2))
        return;
    /* a closed stdout (sbx exec ... | head): the command gets SIGPIPE as it
     * would in a local pipeline, and the rest is dropped */
    if (cli_write_all(msg[0] == 1 ? r->stdout_fd : STDERR_FILENO, msg + 1, len - 1) &&
        msg[0] == 1 && r->stdout_fd == STDOUT_FILENO) {
        r->stdout_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        cli_ws_send_json(ws, json_pack("{s:s,s:i}", "type", "signal", "signal", SIGPIPE));
    }
}

static int on_stdin(struct cli_ws *ws, struct cli_ws_fd *f, short revents, void *arg)
{
    int rc = cli_ws_forward_input(ws, f, 0);

    (void)revents;
    (void)arg;
    if (rc != 1)
        return rc;
    return cli_ws_send_json(ws, json_pack("{s:s}", "type", "stdin_eof")) ? -1 : 0;
}

static int on_signal(struct cli_ws *ws, struct cli_ws_fd *f, short revents, void *arg)
{
    struct signalfd_siginfo si;
    struct run *r = arg;
    int rows, cols;

    (void)revents;
    if (read(f->fd, &si, sizeof(si)) != sizeof(si))
        return 0;
    if (si.ssi_signo == SIGWINCH) {
        window_size(&rows, &cols);
        return cli_ws_send_json(ws, json_pack("{s:s,s:i,s:i}", "type", "resize", "rows", rows,
                                              "cols", cols)) ? -1 : 0;
    }
    /* a command that ignores Ctrl+C: the third one kills it */
    if (si.ssi_signo == SIGINT && ++r->interrupts >= 3)
        return cli_ws_send_json(ws, json_pack("{s:s}", "type", "kill")) ? -1 : 0;
    return cli_ws_send_json(ws, json_pack("{s:s,s:i}", "type", "signal", "signal",
                                          (int)si.ssi_signo)) ? -1 : 0;
}

static json_t *start_message(const struct cli_exec *e)
{
    json_t *m = json_pack("{s:s,s:O,s:b,s:b}", "type", "start", "command", e->command,
                          "pty", e->tty, "kill_on_disconnect", e->kill_on_disconnect);
    int rows, cols;

    if (!m)
        return NULL;
    if (e->env)
        json_object_set(m, "env", e->env);
    if (e->cwd)
        json_object_set_new(m, "cwd", json_string(e->cwd));
    if (e->user)
        json_object_set_new(m, "user", json_string(e->user));
    if (e->timeout_seconds >= 0)
        json_object_set_new(m, "timeout_seconds", json_integer(e->timeout_seconds));
    if (e->tty) {
        window_size(&rows, &cols);
        json_object_set_new(m, "rows", json_integer(rows));
        json_object_set_new(m, "cols", json_integer(cols));
    }
    return m;
}

static int signal_fd(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGWINCH);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

static int outcome(const struct run *r, struct cli_ws *ws, int loop_rc)
{
    restore_terminal();
    if (r->failed)
        return 1;
    if (r->got_exit) {
        if (r->timed_out)
            fprintf(stderr, "sbx: the command timed out\n");
        if (r->signal > 0)
            return 128 + (r->signal & 127);
        return r->exit_code < 0 ? 1 : r->exit_code & 255;
    }
    if (loop_rc)
        fprintf(stderr, "sbx: %s\n", cli_ws_error(ws));
    else
        fprintf(stderr, "sbx: the stream ended before the command exited (close %u%s%s)\n",
                cli_ws_close_code(ws), *cli_ws_close_reason(ws) ? ": " : "",
                cli_ws_close_reason(ws));
    return 1;
}

int cli_exec_run(const struct cli_conn *conn, const struct cli_exec *e)
{
    static const struct cli_ws_handler h = { .on_text = on_text, .on_binary = on_binary };
    struct run r = { .stdout_fd = STDOUT_FILENO };
    struct cli_ws_fd fds[2] = {
        { .fd = -1, .events = POLLIN, .throttle = true, .ready = on_stdin },
        { .fd = -1, .events = POLLIN, .ready = on_signal },
    };
    struct cli_ws *ws;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    rc = cli_ws_open_sandbox(conn, e->name, "/exec/ws", &h, &r, &ws);
    if (rc)
        return rc;
    if (cli_ws_send_json(ws, start_message(e)))
        goto fail;
    r.in = &fds[0];
    if (e->pass_stdin)
        fds[0].fd = STDIN_FILENO;
    else if (cli_ws_send_json(ws, json_pack("{s:s}", "type", "stdin_eof")))
        goto fail;
    fds[1].fd = signal_fd();
    if (e->tty && e->pass_stdin)
        raw_terminal();
    rc = cli_ws_loop(ws, fds, 2, &r);
    rc = outcome(&r, ws, rc);
    if (fds[1].fd >= 0)
        close(fds[1].fd);
    cli_ws_free(ws);
    return rc;
fail:
    fprintf(stderr, "sbx: out of memory\n");
    cli_ws_free(ws);
    return 1;
}
