/* A snapshot's start command: the process a sandbox runs from its boot on, as
 * `docker run` runs an image's Entrypoint and Cmd. It is the "command" of the
 * snapshot's run settings (snapshots.image_config, oci_run_config), kept from
 * a container image or given to the build as start_command. After each boot
 * sbx-api starts it through the guest agent on a thread of its own, with the
 * settings' env, working_dir and user (as exec's defaults), no stdin, and no
 * idle timeout, then leaves it running without a client. What happened is
 * kept in STATE/sandboxes/ID/start-command.json ({"command": [...],
 * "command_id": N} or {"command": [...], "error": "..."}), replaced at each
 * boot and removed when the sandbox stops. */
#ifndef SBX_API_STARTCMD_H
#define SBX_API_STARTCMD_H

#include "apierr.h"
#include "service.h"

#include <jansson.h>

/* How long the start-up thread waits for the guest agent to answer, and how
 * often it tries. */
#define STARTCMD_WAIT_MS 120000
#define STARTCMD_RETRY_MS 200

/* Checks a start_command given by a client: a list of at most OCI_CMD_ARGS_MAX
 * non-empty strings without NUL, OCI_CMD_BYTES_MAX bytes together ([] is
 * valid: no command). Returns 0, or -1 with a validation error in err. */
int startcmd_check(const json_t *argv, struct apierr *err);

/* Run settings text settings ("" or NULL: none) with its command replaced by
 * argv (checked; []: removed), as compact JSON ("" when nothing is left),
 * malloc'd in *out. Returns 0, or -1 (out of memory or unreadable settings). */
int startcmd_replace(const char *settings, const json_t *argv, char **out);

/* Called under the service lock right after rec booted: when its snapshot's
 * settings have a command, records it as pending and starts the thread that
 * runs it once the guest agent answers (within STARTCMD_WAIT_MS, while this
 * boot of the sandbox runs); otherwise removes the record. Never blocks on the
 * guest. */
void startcmd_launch(struct svc *svc, const struct sandbox_rec *rec);

/* Removes the record of sandbox id's start command (at a stop). */
void startcmd_forget(const struct svc *svc, const char *sandbox_id);

/* The record of sandbox id's start command as JSON, or JSON null when there
 * is none. New reference. */
json_t *startcmd_json(const struct svc *svc, const char *sandbox_id);

#endif
