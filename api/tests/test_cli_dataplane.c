/* The sbx CLI's data-plane commands (exec, console, tunnel, cp, service-url,
 * wait) against the real sbx-api and a real guest agent run as a host process
 * (dp_harness.h): test_cli_stream.py --real drives build/bin/sbx. */
#include "dp_harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    static struct server s;
    char self[PATH_MAX], sbx[PATH_MAX + 16], script[PATH_MAX + 64], work[300];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int status;
    pid_t child;

    CHECK(n > 0);
    self[n] = '\0';
    for (int i = 0; i < 3; i++)     /* build/tests/api/test_x -> build */
        *strrchr(self, '/') = '\0';
    snprintf(sbx, sizeof(sbx), "%s/bin/sbx", self);
    *strrchr(self, '/') = '\0';
    snprintf(script, sizeof(script), "%s/api/tests/test_cli_stream.py",
             getenv("SBX_SRC_DIR") ? getenv("SBX_SRC_DIR") : self);
    dp_setup(&s);
    snprintf(work, sizeof(work), "%s/cli-work", s.dir);
    CHECK(mkdir(work, 0700) == 0);
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        setenv("SBX_CLI", sbx, 0);     /* unless given, e.g. a sanitizer build */
        execlp("python3", "python3", script, "--real", s.url, TEST_KEY, DP_BOX, work,
               (char *)NULL);
        _exit(127);
    }
    CHECK(waitpid(child, &status, 0) == child);
    server_cleanup(&s);     /* also on failure: no sbx-api left behind */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: test_cli_stream.py --real\n");
        return 1;
    }
    return 0;
}
