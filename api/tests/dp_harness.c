/* The data-plane tests' set-up (see dp_harness.h). */
#include "dp_harness.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char src_dir[PATH_MAX - 64];
static struct server *running;

/* A failed check exits: stop the server so it does not outlive the test. */
static void stop_at_exit(void)
{
    if (running && running->pid > 0)
        kill(running->pid, SIGTERM);
}

/* build/tests/api/test_x -> build/bin/NAME and the source tree above build/. */
static void find_paths(char *init, size_t len)
{
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    CHECK(n > 0);
    self[n] = '\0';
    for (int i = 0; i < 3; i++)
        *strrchr(self, '/') = '\0';
    snprintf(init, len, "%s/bin/sbx-init", self);
    *strrchr(self, '/') = '\0';
    snprintf(src_dir, sizeof(src_dir), "%s", getenv("SBX_SRC_DIR") ? getenv("SBX_SRC_DIR") : self);
}

void dp_setup(struct server *s)
{
    char init[PATH_MAX], vmm[PATH_MAX + 64], pid[32];
    const char *args[] = { "--vmm", vmm, "--service-domain", "sbx.test",
                           "--service-url-base", "http://{host}:9999", NULL };
    struct reply r;

    find_paths(init, sizeof(init));
    snprintf(vmm, sizeof(vmm), "%s/api/tests/agent_vmm.py", src_dir);
    if (access(init, X_OK) || access(vmm, X_OK) || system("python3 -c '' 2>/dev/null")) {
        fprintf(stderr, "SKIP: needs %s, %s and python3\n", init, vmm);
        exit(77);
    }
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("SBX_TEST_PID", pid, 1);
    setenv("SBX_TEST_INIT", init, 1);
    server_init(s, args);
    running = s;
    atexit(stop_at_exit);
    register_snapshot(s, "base");
    api(s, "POST", "/v1/sandboxes", "{\"name\":\"" DP_BOX "\",\"snapshot\":\"base\"}", &r);
    CHECK(r.status == 201);
    reply_free(&r);
    CHECK(wait_status(s, DP_BOX, "running", 5000));
}

int dp_suite(struct server *s, const char *suite)
{
    char script[PATH_MAX + 64], work[300], pid[32];
    pid_t child;
    int status;

    snprintf(script, sizeof(script), "%s/api/tests/dp_client.py", src_dir);
    snprintf(work, sizeof(work), "%s/work", s->dir);
    mkdir(work, 0700);
    snprintf(pid, sizeof(pid), "%d", (int)s->pid);
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        execlp("python3", "python3", script, suite, s->url, TEST_KEY, DP_BOX, work, pid,
               (char *)NULL);
        _exit(127);
    }
    CHECK(waitpid(child, &status, 0) == child);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
