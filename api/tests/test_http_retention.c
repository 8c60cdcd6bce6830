/* Retention timers on a real sbx-api: idle_ttl_seconds stops a running
 * sandbox, delete_after_stop_seconds deletes a stopped one, 0 disables both. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void create(struct server *s, const char *name, int idle, int delete_after)
{
    char body[200];
    struct reply r;

    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"snapshot\":\"base\",\"idle_ttl_seconds\":%d,"
             "\"delete_after_stop_seconds\":%d}", name, idle, delete_after);
    api(s, "POST", "/v1/sandboxes", body, &r);
    CHECK(r.status == 201);
    reply_free(&r);
}

int main(void)
{
    struct server s;
    struct reply r;
    struct timespec t0, t1;

    server_init(&s, NULL);
    register_snapshot(&s, "base");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    create(&s, "idles-out", 1, 0);          /* stops after 1 s, never deleted */
    create(&s, "short-lived", 1, 1);        /* stops after 1 s, deleted 1 s later */
    create(&s, "forever", 0, 1);            /* never stops by itself */

    CHECK(wait_status(&s, "idles-out", "stopped", 15000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Not before its 1 s of idleness. */
    CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 1000);
    api(&s, "GET", "/v1/sandboxes/idles-out", NULL, &r);
    CHECK(strstr(json_string_value(json_object_get(r.json, "status_message")), "idle") != NULL);
    reply_free(&r);
    CHECK(wait_status(&s, "short-lived", "gone", 15000));

    /* Give the sweeper time to (wrongly) act on the others. */
    nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 500000000 }, NULL);
    CHECK(wait_status(&s, "idles-out", "stopped", 0));
    CHECK(wait_status(&s, "forever", "running", 0));

    /* Stopping "forever" by hand starts its delete-after-stop clock. */
    api(&s, "POST", "/v1/sandboxes/forever/stop", NULL, &r);
    CHECK(r.status == 200);
    reply_free(&r);
    CHECK(wait_status(&s, "forever", "gone", 15000));
    server_cleanup(&s);
    printf("ok\n");
    return 0;
}
