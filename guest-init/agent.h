/* The guest agent: serves include/sbx/agent_proto.h (see guest-init/PROTOCOL.md) on a
 * listening stream socket from one epoll loop. It may run as PID 1, so it reaps every
 * child that exits. */
#ifndef SBX_GUEST_AGENT_H
#define SBX_GUEST_AGENT_H

#include <stdint.h>
#include <time.h>

/* agent_serve's return value when a client asked for an orderly power-off: PID 1 then
 * syncs, unmounts and powers off. */
#define AGENT_SERVE_POWEROFF 1

struct agent_config {
	/* Output kept per command (stdout and stderr together, bytes) before the command is
	 * paused by backpressure; also the history a re-attaching client can replay.
	 * 0 picks 1 MiB. */
	uint64_t max_output;
	/* How long a finished command stays available for re-attach once no client is
	 * attached (ms). 0 picks 60 s. */
	uint64_t exit_ttl_ms;
	/* Default idle timeout: a running command with no client attached for this long is
	 * killed (ms). 0 picks 10 min; a request may ask for its own. */
	uint64_t idle_timeout_ms;
	/* Most commands tracked at once (running or kept for re-attach). 0 picks 256. */
	uint32_t max_commands;
	/* Sets the wall clock for CLOCK_SET; NULL uses clock_settime(CLOCK_REALTIME).
	 * Returns 0 or negative errno. Tests pass their own so they never touch the host's. */
	int (*set_clock)(const struct timespec *ts);
};

/* Serves connections accepted on listen_fd (already bound and listening; the agent makes
 * it non-blocking) until a fatal error or a SHUTDOWN request. Blocks SIGCHLD and SIGPIPE
 * in the calling thread, reaps every child (exit codes of children it did not start are
 * ignored) and kills its running commands before returning. cfg may be NULL for the
 * defaults. Returns AGENT_SERVE_POWEROFF after a SHUTDOWN request, or negative errno.
 * Does not close listen_fd. */
int agent_serve(int listen_fd, const struct agent_config *cfg);

/* Runs the agent as an ordinary process on a Unix socket at socket_path (an existing
 * socket file there is replaced), for host tests: binds, listens and calls agent_serve
 * with the defaults. Returns what agent_serve returns, or negative errno if the socket
 * could not be set up. */
int agent_main_unix(const char *socket_path);

#endif
