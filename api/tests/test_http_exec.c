/* One-shot and WebSocket exec against a real guest agent (dp_client.py exec),
 * then 409 on every data-plane route once the sandbox is stopped. */
#include "dp_harness.h"

int main(void)
{
    static struct server s;

    dp_setup(&s);
    CHECK(dp_suite(&s, "exec") == 0);
    dp_stop_box(&s);
    CHECK(dp_suite(&s, "stopped") == 0);
    server_cleanup(&s);
    return 0;
}
