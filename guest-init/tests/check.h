/* CHECK for sbx-init's plain unit tests (not the agent's: agent_testutil.h): a failed
 * check is printed and counted in failures, and the test goes on; main returns
 * failures ? 1 : 0. Header-only: each test is one binary. */
#ifndef SBX_INIT_TESTS_CHECK_H
#define SBX_INIT_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

#endif
