/* options: sbx-vmm's command line. Defaults, every option, --help, and the errors:
 * no --kernel, --mem / --vcpus out of range or not numbers, unknown options, a
 * missing argument and stray arguments. Parses run back to back, as they must not
 * leak state from one argv into the next. */
#include "../options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

static char err[256];

/* Parses a NULL-terminated list of arguments (after the program name), copied into
 * one arena that the next parse overwrites, as a caller's argv may be reused. */
static int parse(struct vmm_options *o, ...)
{
    static char arena[4096];
    char *argv[32];
    size_t used = 0;
    int argc = 0;
    va_list ap;

    va_start(ap, o);
    for (const char *a = "sbx-vmm"; a; a = va_arg(ap, const char *)) {
        size_t n = strlen(a) + 1;
        CHECK(argc < 31 && n <= sizeof(arena) - used);
        argv[argc++] = memcpy(arena + used, a, n);
        used += n;
    }
    va_end(ap);
    argv[argc] = NULL;
    memset(arena + used, '#', sizeof(arena) - used);
    err[0] = 0;
    return vmm_options_parse(o, argc, argv, err, sizeof(err));
}

/* Expects failure with a message that contains want. */
static void expect_error(int rc, const char *want)
{
    if (rc != -EINVAL || !strstr(err, want))
        fprintf(stderr, "rc %d, err '%s', wanted '%s'\n", rc, err, want);
    CHECK(rc == -EINVAL);
    CHECK(strstr(err, want) != NULL);
}

static void test_defaults(void)
{
    struct vmm_options o;

    CHECK(parse(&o, "--kernel", "/boot/vmlinuz", NULL) == 0);
    CHECK(strcmp(o.kernel, "/boot/vmlinuz") == 0);
    CHECK(o.initrd == NULL && o.vsock_uds == NULL);
    CHECK(o.cmdline == vmm_default_cmdline);
    CHECK(strstr(vmm_default_cmdline, "console=ttyS0") != NULL);
    CHECK(strcmp(o.console, "stdio") == 0);
    CHECK(o.mem_mib == 256 && o.vcpus == 1);
    CHECK(o.verbose == 0 && o.help == 0);
}

static void test_all_options(void)
{
    struct vmm_options o;

    CHECK(parse(&o, "--initrd", "rd.img", "--cmdline", "console=ttyS0 init=/sbin/x",
                "--mem=1024", "--vcpus", "4", "--console", "none", "--vsock-uds",
                "/run/v.sock", "-v", "--kernel=bz", "-vv", NULL) == 0);
    CHECK(strcmp(o.kernel, "bz") == 0 && strcmp(o.initrd, "rd.img") == 0);
    CHECK(strcmp(o.cmdline, "console=ttyS0 init=/sbin/x") == 0);
    CHECK(o.mem_mib == 1024 && o.vcpus == 4);
    CHECK(strcmp(o.console, "none") == 0 && strcmp(o.vsock_uds, "/run/v.sock") == 0);
    CHECK(o.verbose == 3);
    /* The last of a repeated option wins; an empty command line is allowed. */
    CHECK(parse(&o, "--kernel", "a", "--kernel", "b", "--mem", "16", "--mem", "32",
                "--cmdline", "", NULL) == 0);
    CHECK(strcmp(o.kernel, "b") == 0 && o.mem_mib == 32 && strcmp(o.cmdline, "") == 0);
    CHECK(parse(&o, "--kernel", "k", "--console", "/tmp/console.log", NULL) == 0);
    CHECK(strcmp(o.console, "/tmp/console.log") == 0);
}

static void test_help(void)
{
    struct vmm_options o;

    CHECK(parse(&o, "--help", NULL) == 0 && o.help);
    CHECK(parse(&o, "-h", NULL) == 0 && o.help);
    CHECK(parse(&o, "--kernel", "k", "--help", "stray", NULL) == 0 && o.help);
    CHECK(strstr(vmm_options_usage(), "--kernel") != NULL);
    CHECK(parse(&o, "--kernel", "k", NULL) == 0 && !o.help);
}

static void test_ranges(void)
{
    struct vmm_options o;
    static const char *bad[] = { "0", "15", "1048577", "-1", "-0", "abc", "12x", "", " ",
                                 "0x100", "99999999999999999999999", "18446744073709551616",
                                 "18446744073709551615", "1e3", "256M" };

    CHECK(parse(&o, "--kernel", "k", "--mem", "16", NULL) == 0 && o.mem_mib == 16);
    CHECK(parse(&o, "--kernel", "k", "--mem", "1048576", NULL) == 0 && o.mem_mib == 1048576);
    CHECK(parse(&o, "--kernel", "k", "--mem", "4097", NULL) == 0 && o.mem_mib == 4097);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(parse(&o, "--kernel", "k", "--mem", bad[i], NULL), "--mem");

    CHECK(parse(&o, "--kernel", "k", "--vcpus", "1", NULL) == 0 && o.vcpus == 1);
    CHECK(parse(&o, "--kernel", "k", "--vcpus", "64", NULL) == 0 && o.vcpus == 64);
    static const char *bad_vcpus[] = { "0", "65", "-1", "abc", "12x", "", "4294967297",
                                       "99999999999999999999999", "2.5" };
    for (size_t i = 0; i < sizeof(bad_vcpus) / sizeof(bad_vcpus[0]); i++)
        expect_error(parse(&o, "--kernel", "k", "--vcpus", bad_vcpus[i], NULL), "--vcpus");
}

/* --net (the SPEC itself is tested with net_slirp in test_net_slirp). */
static void test_net(void)
{
    struct vmm_options o;

    CHECK(parse(&o, "--kernel", "k", NULL) == 0 && !o.net.enabled);
    CHECK(parse(&o, "--kernel", "k", "--net", "user", NULL) == 0);
    CHECK(o.net.enabled && !o.net.host_loopback);
    CHECK(parse(&o, "--kernel", "k", "--net", "user,host-loopback=on", NULL) == 0);
    CHECK(o.net.enabled && o.net.host_loopback);
    CHECK(parse(&o, "--kernel", "k", "--net", "user", "--net", "none", NULL) == 0);
    CHECK(!o.net.enabled);
    expect_error(parse(&o, "--kernel", "k", "--net", "tap", NULL), "--net");
    expect_error(parse(&o, "--kernel", "k", "--net", "user,host-loopback=maybe", NULL), "--net");
}

static void test_errors(void)
{
    struct vmm_options o;

    expect_error(parse(&o, NULL), "--kernel");
    expect_error(parse(&o, "--mem", "64", NULL), "--kernel");
    expect_error(parse(&o, "--kernel", "k", "--bogus", NULL), "unknown");
    expect_error(parse(&o, "--kernel", "k", "-x", NULL), "unknown");
    expect_error(parse(&o, "--kernel", NULL), "option");             /* argument missing */
    expect_error(parse(&o, "--kernel", "k", "--mem", NULL), "option");
    expect_error(parse(&o, "--kernel", "k", "--help=yes", NULL), "option");
    expect_error(parse(&o, "--kernel", "k", "extra", NULL), "extra");
    expect_error(parse(&o, "stray", "--kernel", "k", NULL), "stray");
    expect_error(parse(&o, "--kernel", "k", "--", "after", NULL), "after");
    /* An error in the middle of a cluster of short options, then a clean parse: the
     * rest of the old cluster must not leak into it. */
    expect_error(parse(&o, "--kernel", "k", "-xv", NULL), "unknown");
    CHECK(parse(&o, "--kernel", "k", NULL) == 0);
    CHECK(o.verbose == 0);
}

int main(void)
{
    test_net();
    test_defaults();
    test_all_options();
    test_help();
    test_ranges();
    test_errors();
    test_defaults();
    printf("test_options: ok\n");
    return 0;
}
