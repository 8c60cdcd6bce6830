/* sbx's data-plane commands besides exec/console (cli_exec.h): each returns
 * sbx's exit status (0 ok, 1 the API or the network said no, 2 usage). */
#ifndef SBX_CLI_CMDS_H
#define SBX_CLI_CMDS_H

#include "cli_http.h"

#include <stdbool.h>

/* cli_tunnel.c: stdin/stdout <-> 127.0.0.1:remote_port in the sandbox (an ssh
 * ProxyCommand), or a listener on 127.0.0.1:local_port (0: any free port)
 * with one WebSocket per accepted connection, until killed. */
int cli_tunnel_stdio(const struct cli_conn *conn, const char *name, int remote_port);
int cli_tunnel_listen(const struct cli_conn *conn, const char *name, int remote_port,
                      int local_port, bool pretty);

/* cli_cp.c: LOCAL NAME:/path or NAME:/path LOCAL, "-" for stdin/stdout. */
int cli_cp(const struct cli_conn *conn, const char *src, const char *dst, bool pretty);

/* cli_ssh.c: see api/DATAPLANE.md "CLI"; identity and ssh_dir may be NULL. */
int cli_ssh_setup(const struct cli_conn *conn, const char *name, const char *identity,
                  const char *ssh_dir, bool pretty);

#endif
