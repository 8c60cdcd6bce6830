/* sbx exec and sbx console: a command in a sandbox over the exec WebSocket
 * (api/DATAPLANE.md "Streaming exec"), its output streamed to ours. */
#ifndef SBX_CLI_EXEC_H
#define SBX_CLI_EXEC_H

#include "cli_http.h"

#include <jansson.h>
#include <stdbool.h>

struct cli_exec {
    const char *name;           /* sandbox */
    json_t *command;            /* array of strings */
    json_t *env;                /* object or NULL */
    const char *cwd, *user;     /* or NULL */
    long timeout_seconds;       /* -1: the server's default */
    bool tty;                   /* a PTY in the sandbox (and raw mode here) */
    bool pass_stdin;            /* else stdin_eof right away */
    bool kill_on_disconnect;
};

/* Runs it; returns the exit status for sbx: the command's exit code,
 * 128+signal when a signal killed it, 1 when the API or the network failed. */
int cli_exec_run(const struct cli_conn *conn, const struct cli_exec *e);

#endif
