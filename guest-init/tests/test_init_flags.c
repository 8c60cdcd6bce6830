/* sbx-init's kernel command-line flags. */
#include <stdio.h>
#include <string.h>

#include "../init.h"

static int failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

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

    return failures ? 1 : 0;
}
