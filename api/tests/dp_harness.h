/* Data-plane test set-up on top of harness.h: sbx-api with a stand-in VMM that
 * serves a real guest agent (agent_vmm.py running sbx-init --agent-unix), one
 * running sandbox, and the python3 client dp_client.py for the checks. */
#ifndef SBX_API_TESTS_DP_HARNESS_H
#define SBX_API_TESTS_DP_HARNESS_H

#include "harness.h"

#define DP_BOX "box"

/* Starts the server and the sandbox DP_BOX; exits 77 when python3 or sbx-init
 * is missing. */
void dp_setup(struct server *s);
/* Runs dp_client.py SUITE against it; returns its exit status. */
int dp_suite(struct server *s, const char *suite);

#endif
