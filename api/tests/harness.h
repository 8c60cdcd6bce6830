/* Test harness for the api tests: a temporary state directory, a stand-in
 * sbx-vmm script, a real sbx-api process on a free loopback port, and HTTP
 * requests through libcurl. Checks exit the test with status 1. */
#ifndef SBX_API_TESTS_HARNESS_H
#define SBX_API_TESTS_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CHECK(cond) \
    do { \
        if (!(cond)) \
            harness_fail(__FILE__, __LINE__, #cond); \
    } while (0)

#define TEST_KEY "test-key-0123456789"

struct server {
    char dir[256];              /* temp dir: state/, vmm, log, port */
    char url[64];
    pid_t pid;
    int restarts;
};

struct reply {
    long status;
    char *body;
    json_t *json;               /* NULL when body is not JSON */
};

void harness_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Makes the temp dir, the stand-in VMM and a snapshot image file, and starts
 * sbx-api with extra_args (NULL-terminated, may be NULL). */
void server_init(struct server *s, const char *const *extra_args);
/* Starts sbx-api again on the same state (after server_stop). */
void server_start(struct server *s, const char *const *extra_args);
/* SIGTERM and wait; sandboxes' VMMs keep running. */
void server_stop(struct server *s);
/* Stops the server, kills every stand-in VMM, removes the temp dir. */
void server_cleanup(struct server *s);

/* A request with key (NULL: no key header; "Bearer ...": sent as
 * Authorization; anything else as X-Api-Key). body may be NULL. */
void request(struct server *s, const char *method, const char *path, const char *key,
             const char *body, size_t body_len, struct reply *out);
/* Shorthand with the right key and a NUL-terminated body. */
void api(struct server *s, const char *method, const char *path, const char *body,
         struct reply *out);
void reply_free(struct reply *r);

/* error.type of a JSON error reply ("" if none). */
const char *reply_error_type(const struct reply *r);
/* Registers the stand-in image as snapshot name. */
void register_snapshot(struct server *s, const char *name);
/* Polls GET /v1/sandboxes/name until status is want ("gone" for 404);
 * returns false after timeout_ms. */
bool wait_status(struct server *s, const char *name, const char *want, int timeout_ms);
/* nanosleep for ms milliseconds. */
void harness_sleep_ms(int ms);
/* The string member key of a JSON reply, "" when absent. */
const char *reply_str(const struct reply *r, const char *key);
/* Polls GET /v1/snapshots/name until its status is not building; *out keeps
 * the last reply. Fails the test after 120 s. */
void wait_built(struct server *s, const char *name, struct reply *out);
/* true when pid exists and is not a zombie. */
bool pid_alive(pid_t pid);

#endif
