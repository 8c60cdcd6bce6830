/* sbx-init's kernel command-line flags. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../init.h"
#include "check.h"

int main(void)
{
    struct init_flags f;

    memset(&f, 0, sizeof(f));
    init_parse_flags("console=ttyS0 quiet\n", &f);
    CHECK(!f.poweroff && !f.panic && strcmp(f.hostname, "sandbox") == 0 && f.root[0] == 0);

    memset(&f, 0, sizeof(f));
    init_parse_flags("sbx.poweroff sbx.hostname=box-1 sbx.root=/dev/vda quiet", &f);
    CHECK(f.poweroff && !f.panic);
    CHECK(strcmp(f.hostname, "box-1") == 0);
    CHECK(strcmp(f.root, "/dev/vda") == 0);

    /* Whole tokens only: prefixes and suffixes do not count. */
    memset(&f, 0, sizeof(f));
    init_parse_flags("xsbx.poweroff sbx.poweroffx sbx.panic\n", &f);
    CHECK(!f.poweroff && f.panic);
    memset(&f, 0, sizeof(f));
    init_parse_flags("nosbx.root=/dev/vdb", &f);
    CHECK(f.root[0] == 0);

    /* Empty or oversized values keep the default. */
    char long_cmdline[256];
    snprintf(long_cmdline, sizeof(long_cmdline), "sbx.hostname=%0100d sbx.root=", 7);
    memset(&f, 0, sizeof(f));
    init_parse_flags(long_cmdline, &f);
    CHECK(strcmp(f.hostname, "sandbox") == 0 && f.root[0] == 0);

    /* sbx.net= */
    struct init_net n;
    memset(&f, 0, sizeof(f));
    init_parse_flags("quiet sbx.net=10.0.2.15/24,10.0.2.2,10.0.2.3 sbx.root=/dev/vda", &f);
    CHECK(strcmp(f.net, "10.0.2.15/24,10.0.2.2,10.0.2.3") == 0);
    CHECK(init_parse_net(f.net, &n) == 0);
    CHECK(n.addr == htonl(0x0a00020f) && n.netmask == htonl(0xffffff00));
    CHECK(n.gateway == htonl(0x0a000202) && n.dns == htonl(0x0a000203));
    CHECK(init_parse_net("192.168.7.9/16,192.168.0.1", &n) == 0);
    CHECK(n.netmask == htonl(0xffff0000) && n.dns == 0);
    static const char *const bad[] = {
        "", "10.0.2.15", "10.0.2.15/24", "10.0.2.15/24,", "10.0.2.15/0,10.0.2.2",
        "10.0.2.15/31,10.0.2.14", "10.0.2.15/24,10.0.3.2", "10.0.2.15/24,10.0.2.15",
        "10.0.2.15/x,10.0.2.2", "10.0.2.15/24,10.0.2.2,", "10.0.2.15/24,10.0.2.2,dns",
        "10.0.2.256/24,10.0.2.2", "10.0.2.15/24,10.0.2.2,10.0.2.3,1.1.1.1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (init_parse_net(bad[i], &n) == 0) {
            fprintf(stderr, "sbx.net=%s parsed\n", bad[i]);
            failures++;
        }
    }

    return failures ? 1 : 0;
}
