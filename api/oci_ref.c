/* Parsing image references with the grammar of distribution/reference
 * (POSIX extended regular expressions for the parts). */
#include "oci_ref.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

#define COMPONENT "[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*"
#define REPO_RE "^" COMPONENT "(/" COMPONENT ")*$"
#define TAG_RE "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
#define LABEL "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
#define HOST_RE "^" LABEL "(\\." LABEL ")*(:[0-9]{1,5})?$"

static bool matches(const char *re, const char *s)
{
    regex_t rx;
    bool ok;

    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB))
        return false;
    ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

bool oci_digest_valid(const char *d)
{
    if (strncmp(d, "sha256:", 7) || strlen(d + 7) != 64)
        return false;
    return strspn(d + 7, "0123456789abcdef") == 64;
}

/* Whether the first path component names a registry rather than a repository. */
static bool is_host(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && !memcmp(s, "localhost", 9));
}

static int fail(char *why, size_t len, const char *msg)
{
    snprintf(why, len, "%s", msg);
    return -1;
}

/* Splits name (no tag, no digest) into registry and repository. */
static int split_name(const char *name, struct oci_ref *ref, char *why, size_t len)
{
    const char *slash = strchr(name, '/');
    const char *repo = name;

    snprintf(ref->registry, sizeof(ref->registry), "registry-1.docker.io");
    if (slash && is_host(name, (size_t)(slash - name))) {
        if ((size_t)(slash - name) >= sizeof(ref->registry))
            return fail(why, len, "registry name is too long");
        snprintf(ref->registry, sizeof(ref->registry), "%.*s", (int)(slash - name), name);
        if (!matches(HOST_RE, ref->registry))
            return fail(why, len, "bad registry host");
        if (!strcmp(ref->registry, "docker.io") || !strcmp(ref->registry, "index.docker.io"))
            snprintf(ref->registry, sizeof(ref->registry), "registry-1.docker.io");
        repo = slash + 1;
    }
    if (!strcmp(ref->registry, "registry-1.docker.io") && !strchr(repo, '/')) {
        if (strlen(repo) + 8 >= sizeof(ref->repo))
            return fail(why, len, "repository name is too long");
        snprintf(ref->repo, sizeof(ref->repo), "library/%.*s", (int)sizeof(ref->repo) - 9, repo);
    } else {
        if (strlen(repo) >= sizeof(ref->repo))
            return fail(why, len, "repository name is too long");
        snprintf(ref->repo, sizeof(ref->repo), "%.*s", (int)sizeof(ref->repo) - 1, repo);
    }
    if (!matches(REPO_RE, ref->repo))
        return fail(why, len, "bad repository name (lowercase letters, digits, separators . _ - /)");
    return 0;
}

int oci_ref_parse(const char *s, struct oci_ref *ref, char *why, size_t len)
{
    char buf[600], *at, *colon, *slash;

    memset(ref, 0, sizeof(*ref));
    if (!*s || strlen(s) >= sizeof(buf))
        return fail(why, len, "empty or too long image reference");
    snprintf(buf, sizeof(buf), "%s", s);
    at = strchr(buf, '@');
    if (at) {
        *at = '\0';
        if (!oci_digest_valid(at + 1))
            return fail(why, len, "bad digest (sha256:<64 lowercase hex digits> only)");
        snprintf(ref->digest, sizeof(ref->digest), "%s", at + 1);
    }
    slash = strrchr(buf, '/');
    colon = strrchr(slash ? slash : buf, ':');
    if (colon) {
        *colon = '\0';
        if (!matches(TAG_RE, colon + 1))
            return fail(why, len, "bad tag");
        snprintf(ref->tag, sizeof(ref->tag), "%s", colon + 1);
    } else if (!ref->digest[0]) {
        snprintf(ref->tag, sizeof(ref->tag), "latest");
    }
    return split_name(buf, ref, why, len);
}

void oci_ref_format(const struct oci_ref *ref, char *out, size_t len)
{
    snprintf(out, len, "%s/%s%s%s%s%s", ref->registry, ref->repo, ref->tag[0] ? ":" : "",
             ref->tag, ref->digest[0] ? "@" : "", ref->digest);
}
