/* A stop powers the guest off in order: the agent takes a SHUTDOWN and the VMM
 * exits by itself (agent_vmm.py exits 0 as sbx-vmm does), well before the
 * power-off timeout and with no SIGTERM. A guest that powers itself off is
 * "stopped", not "failed". A sandbox without an agent still stops, by force. */
#include "dp_harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The sandbox's state directory, from its id. */
static void box_dir(struct server *s, char *out, size_t len)
{
    struct reply r;

    api(s, "GET", "/v1/sandboxes/" DP_BOX, NULL, &r);
    CHECK(r.status == 200 && reply_str(&r, "id"));
    snprintf(out, len, "%s/state/sandboxes/%s", s->dir, reply_str(&r, "id"));
    reply_free(&r);
}

static bool file_has(const char *path, const char *text)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* Waits until the sandbox's agent answers (a stop before that is forced: there
 * is nothing to power off in order yet). */
static void wait_agent(const char *dir, const char *agentctl)
{
    char cmd[PATH_MAX * 3];

    snprintf(cmd, sizeof(cmd), "%s --vsock-uds %s/vsock.sock ping >/dev/null 2>&1", agentctl, dir);
    for (int i = 0; i < 100; i++) {
        if (system(cmd) == 0)
            return;
        harness_sleep_ms(50);
    }
    CHECK(!"the agent answers");
}

static void stop_is_orderly(struct server *s, const char *dir)
{
    char log[PATH_MAX + 16];
    struct reply r;
    int64_t t0 = now_ms();

    api(s, "POST", "/v1/sandboxes/" DP_BOX "/stop", "", &r);
    CHECK(r.status == 200);
    CHECK(!strcmp(reply_str(&r, "status"), "stopped"));
    reply_free(&r);
    /* The stand-in notices its agent's exit within half a second; a stop that
     * was not taken would wait out the 10 s power-off timeout. */
    CHECK(now_ms() - t0 < 8000);
    snprintf(log, sizeof(log), "%s/vmm.log", dir);
    CHECK(file_has(log, "agent_vmm: the guest powered off"));
    CHECK(!file_has(log, "agent_vmm: stopping"));
}

static void guest_power_off_is_a_stop(struct server *s, const char *dir, const char *agentctl)
{
    char cmd[PATH_MAX * 3];
    struct reply r;

    api(s, "POST", "/v1/sandboxes/" DP_BOX "/start", "", &r);
    CHECK(r.status == 200);
    reply_free(&r);
    CHECK(wait_status(s, DP_BOX, "running", 5000));
    wait_agent(dir, agentctl);
    /* From the API's side, nobody asked: as `poweroff -f` inside the guest. */
    snprintf(cmd, sizeof(cmd), "%s --vsock-uds %s/vsock.sock shutdown >/dev/null", agentctl, dir);
    CHECK(system(cmd) == 0);
    CHECK(wait_status(s, DP_BOX, "stopped", 10000));
    api(s, "GET", "/v1/sandboxes/" DP_BOX, NULL, &r);
    CHECK(!strcmp(reply_str(&r, "status_message"), "the guest powered off"));
    reply_free(&r);
}

int main(void)
{
    static struct server s;
    char dir[PATH_MAX], agentctl[PATH_MAX];
    ssize_t n;

    dp_setup(&s);
    n = readlink("/proc/self/exe", agentctl, sizeof(agentctl) - 32);
    CHECK(n > 0);
    agentctl[n] = '\0';
    *strrchr(agentctl, '/') = '\0';      /* build/tests/api */
    *strrchr(agentctl, '/') = '\0';      /* build/tests */
    strcpy(strrchr(agentctl, '/'), "/bin/sbx-agentctl");
    box_dir(&s, dir, sizeof(dir));
    wait_agent(dir, agentctl);
    stop_is_orderly(&s, dir);
    guest_power_off_is_a_stop(&s, dir, agentctl);
    server_cleanup(&s);
    return 0;
}
