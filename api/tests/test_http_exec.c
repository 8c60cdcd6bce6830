/* One-shot and WebSocket exec against a real guest agent (dp_client.py exec),
 * streams and requests as activity for idle_ttl_seconds, then 409 on every
 * data-plane route once the sandbox stopped for idleness. */
#include "dp_harness.h"

int main(void)
{
    static struct server s;

    dp_setup(&s);
    CHECK(dp_suite(&s, "exec") == 0);
    CHECK(dp_suite(&s, "activity") == 0);
    CHECK(dp_suite(&s, "stopped") == 0);
    server_cleanup(&s);
    return 0;
}
