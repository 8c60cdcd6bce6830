/* Tunnels over WebSocket to a TCP echo server, a refused port, and a service
 * URL whose token the router's code (router/svc_token.c) accepts. */
#include "dp_harness.h"

#include <sbx/svc_token.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void verify_token(struct server *s)
{
    char path[400], token[SVC_TOKEN_MAX_LEN + 2] = "";
    struct svc_token_key key;
    struct stat st;
    int64_t expires = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/state/service.key", s->dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    CHECK(svc_token_key_load(path, &key) == 0);
    snprintf(path, sizeof(path), "%s/work/token", s->dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    CHECK(fgets(token, sizeof(token), f) != NULL);
    fclose(f);
    CHECK(svc_token_verify(&key, token, strlen(token), DP_BOX, 8000, (int64_t)time(NULL),
                           &expires) == SVC_TOKEN_OK);
    CHECK(expires > (int64_t)time(NULL) + 250);
    CHECK(svc_token_verify(&key, token, strlen(token), DP_BOX, 8001, (int64_t)time(NULL),
                           NULL) == SVC_TOKEN_WRONG_TARGET);
    /* sbx-router finds the sandbox through STATE/names/NAME. */
    snprintf(path, sizeof(path), "%s/state/names/" DP_BOX "/vsock.sock", s->dir);
    CHECK(access(path, F_OK) == 0);
}

int main(void)
{
    static struct server s;

    dp_setup(&s);
    CHECK(dp_suite(&s, "tunnel") == 0);
    verify_token(&s);
    server_cleanup(&s);
    return 0;
}
