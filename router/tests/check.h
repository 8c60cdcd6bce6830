/* The router's C unit tests' check: a failed condition is reported with its place and
 * counted in failures; main returns failures ? 1 : 0. */
#ifndef SBX_ROUTER_TESTS_CHECK_H
#define SBX_ROUTER_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

#endif
