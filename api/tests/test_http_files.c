/* Files: a 64 MiB upload and download with the same sha256 in bounded sbx-api
 * memory, stat, list, mkdir, delete and the error mapping (dp_client.py files). */
#include "dp_harness.h"

int main(void)
{
    static struct server s;

    dp_setup(&s);
    CHECK(dp_suite(&s, "files") == 0);
    server_cleanup(&s);
    return 0;
}
