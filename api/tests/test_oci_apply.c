/* oci_apply_layer against hostile layers, made here with libarchive: paths
 * with "..", writes through a symlink (absolute or relative) a lower layer
 * made, a hard link to a file outside through such a symlink, whiteouts
 * through it and whiteouts naming "." or "..", a device node, a layer larger
 * than the budget; nothing outside the root may change. Also image
 * references (oci_ref_parse): Docker's defaults, ports, digests, bad ones;
 * and image documents that must be refused with a message. */
#include "../oci_apply.h"
#include "../oci_image.h"
#include "../oci_ref.h"
#include "harness.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char dir[64], root[128], outside[128], tarpath[128];

struct ent {
    const char *name;
    mode_t type;                    /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0 ends */
    const char *data;               /* file contents or symlink target */
    const char *hardlink;
    int64_t size;                   /* when data is NULL: that many zero bytes */
};

/* Writes the layer ents to tarpath and applies it; returns oci_apply_layer's. */
static int apply(const struct ent *ents, int64_t limit, char *msg, size_t len)
{
    struct archive *a = archive_write_new();
    struct oci_budget budget = { .limit = limit };
    static char zeros[65536];
    int fd, rc;

    CHECK(a && archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
    CHECK(archive_write_open_filename(a, tarpath) == ARCHIVE_OK);
    for (const struct ent *e = ents; e->type; e++) {
        struct archive_entry *ae = archive_entry_new();
        int64_t size = e->type == AE_IFREG && !e->hardlink
                           ? (e->data ? (int64_t)strlen(e->data) : e->size) : 0;
        archive_entry_set_pathname(ae, e->name);
        archive_entry_set_filetype(ae, e->type);
        archive_entry_set_perm(ae, e->type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_size(ae, size);
        if (e->type == AE_IFLNK)
            archive_entry_set_symlink(ae, e->data);
        if (e->hardlink)
            archive_entry_set_hardlink(ae, e->hardlink);
        if (e->type == AE_IFCHR)
            archive_entry_set_rdev(ae, makedev(1, 3));
        CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
        if (size && e->data)
            CHECK(archive_write_data(a, e->data, (size_t)size) == (la_ssize_t)size);
        for (int64_t left = e->data ? 0 : size; left > 0; left -= (int64_t)sizeof(zeros))
            CHECK(archive_write_data(a, zeros, left < (int64_t)sizeof(zeros) ? (size_t)left
                                                                              : sizeof(zeros)) > 0);
        archive_entry_free(ae);
    }
    CHECK(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
    fd = open(tarpath, O_RDONLY);
    CHECK(fd >= 0);
    msg[0] = '\0';
    rc = oci_apply_layer(root, fd, true, &budget, msg, len);
    close(fd);
    fprintf(stderr, "layer %s: %d %s\n", ents[0].name, rc, msg);
    return rc;
}

static bool exists(const char *base, const char *rel)
{
    char path[300];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    return lstat(path, &st) == 0;
}

static void write_outside(const char *name, const char *text)
{
    char path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outside, name);
    f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0);
    fclose(f);
}

static void hostile_layers(void)
{
    char msg[256], abs_target[200];
    const int64_t big = 1 << 30;

    snprintf(abs_target, sizeof(abs_target), "%s", outside);
    write_outside("secret", "do not touch\n");
    const struct ent lower[] = {
        { "evil", AE_IFLNK, abs_target, NULL, 0 },
        { "rel", AE_IFLNK, "../outside", NULL, 0 },
        { "keep/", AE_IFDIR, NULL, NULL, 0 },
        { "keep/a", AE_IFREG, "a\n", NULL, 0 },
        { "dev/null", AE_IFCHR, NULL, NULL, 0 },
        { 0 },
    };
    CHECK(apply(lower, big, msg, sizeof(msg)) == 0);
    CHECK(exists(root, "evil") && exists(root, "keep/a") && !exists(root, "dev/null"));

    const struct ent through_abs[] = { { "evil/pwned", AE_IFREG, "x", NULL, 0 }, { 0 } };
    CHECK(apply(through_abs, big, msg, sizeof(msg)) != 0 && msg[0]);
    const struct ent through_rel[] = { { "rel/pwned", AE_IFREG, "x", NULL, 0 }, { 0 } };
    CHECK(apply(through_rel, big, msg, sizeof(msg)) != 0 && msg[0]);
    const struct ent dotdot[] = { { "keep/../../outside/pwned", AE_IFREG, "x", NULL, 0 },
                                  { 0 } };
    CHECK(apply(dotdot, big, msg, sizeof(msg)) != 0 && strstr(msg, "leaves the root"));
    const struct ent link_out[] = { { "hl", AE_IFREG, NULL, "evil/secret", 0 }, { 0 } };
    CHECK(apply(link_out, big, msg, sizeof(msg)) != 0 && strstr(msg, "hard link"));
    CHECK(!exists(outside, "pwned") && !exists(root, "hl"));

    const struct ent wh_out[] = {
        { "evil/.wh.secret", AE_IFREG, "", NULL, 0 },
        { "rel/.wh.secret", AE_IFREG, "", NULL, 0 },
        { "keep/.wh..", AE_IFREG, "", NULL, 0 },
        { "keep/.wh...", AE_IFREG, "", NULL, 0 },
        { "keep/.wh.", AE_IFREG, "", NULL, 0 },
        { 0 },
    };
    CHECK(apply(wh_out, big, msg, sizeof(msg)) == 0);
    CHECK(exists(outside, "secret") && exists(root, "keep/a") && exists(root, "evil"));
    CHECK(!exists(root, "keep/.wh..") && !exists(root, "evil/.wh.secret"));

    const struct ent too_big[] = { { "big", AE_IFREG, NULL, NULL, 2 << 20 }, { 0 } };
    CHECK(apply(too_big, 1 << 20, msg, sizeof(msg)) != 0 && strstr(msg, "capacity"));

    /* an ordinary replacement: the folder keep becomes a file, evil a folder */
    const struct ent replace[] = {
        { "keep", AE_IFREG, "file now\n", NULL, 0 },
        { "evil/", AE_IFDIR, NULL, NULL, 0 },
        { "evil/inside", AE_IFREG, "in\n", NULL, 0 },
        { 0 },
    };
    CHECK(apply(replace, big, msg, sizeof(msg)) == 0);
    CHECK(exists(root, "evil/inside") && !exists(outside, "inside") && !exists(root, "keep/a"));
    CHECK(exists(outside, "secret"));
}

static void refs(void)
{
    struct oci_ref r;
    char why[200], out[700];
    static const char *const good[][2] = {
        { "ubuntu", "registry-1.docker.io/library/ubuntu:latest" },
        { "ubuntu:22.04", "registry-1.docker.io/library/ubuntu:22.04" },
        { "docker.io/ubuntu", "registry-1.docker.io/library/ubuntu:latest" },
        { "index.docker.io/foo/bar:1", "registry-1.docker.io/foo/bar:1" },
        { "ghcr.io/org/img:v1.2", "ghcr.io/org/img:v1.2" },
        { "localhost/x", "localhost/x:latest" },
        { "127.0.0.1:5000/test/img:tag", "127.0.0.1:5000/test/img:tag" },
        { "reg.example:443/a/b/c", "reg.example:443/a/b/c:latest" },
        { "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000",
          "registry-1.docker.io/library/alpine@sha256:"
          "0000000000000000000000000000000000000000000000000000000000000000" },
        { "alpine:3@sha256:0000000000000000000000000000000000000000000000000000000000000000",
          "registry-1.docker.io/library/alpine:3@sha256:"
          "0000000000000000000000000000000000000000000000000000000000000000" },
        { "my_repo/a__b.c-d", "registry-1.docker.io/my_repo/a__b.c-d:latest" },
    };
    static const char *const bad[] = {
        "", "Ubuntu", "ubuntu:", "ubuntu:bad tag", ":tag", "a//b", "/abs", "ubuntu@sha256:12",
        "ubuntu@md5:00", "-x", "a_", "host:port:x/y", "ubuntu@sha256:"
        "000000000000000000000000000000000000000000000000000000000000000G",
        "ubuntu:-x", "a/../b",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (oci_ref_parse(good[i][0], &r, why, sizeof(why)))
            fprintf(stderr, "%s: %s\n", good[i][0], why);
        CHECK(oci_ref_parse(good[i][0], &r, why, sizeof(why)) == 0);
        oci_ref_format(&r, out, sizeof(out));
        if (strcmp(out, good[i][1]))
            fprintf(stderr, "%s -> %s\n", good[i][0], out);
        CHECK(!strcmp(out, good[i][1]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (oci_ref_parse(bad[i], &r, why, sizeof(why)) == 0)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(oci_ref_parse(bad[i], &r, why, sizeof(why)) < 0 && why[0]);
    }
}

#define D64 "sha256:0000000000000000000000000000000000000000000000000000000000000000"

/* Parses text as a manifest or index the way a pull does; 0 or -1 with msg. */
static int parse_doc(const char *text, char *msg, size_t len)
{
    static struct oci_manifest m;
    struct oci_desc d;
    enum oci_doc kind;
    json_t *doc = oci_json(text, strlen(text), "doc", msg, len);
    int rc = -1;

    if (doc && oci_doc_kind(doc, NULL, &kind, msg, len) == 0)
        rc = kind == OCI_DOC_INDEX ? oci_pick_platform(doc, &d, msg, len)
                                   : oci_parse_manifest(doc, &m, msg, len);
    json_decref(doc);
    fprintf(stderr, "doc: %d %s\n", rc, rc ? msg : "");
    return rc;
}

static void documents(void)
{
    static const char *const bad[][2] = {
        { "[1,2]", "not a JSON object" },
        { "{\"a\":1,\"a\":2}", "not valid JSON" },
        { "{\"schemaVersion\":1,\"fsLayers\":[]}", "schema 1" },
        { "{\"mediaType\":\"text/html\"}", "not an image manifest" },
        { "{\"manifests\":[]}", "without manifests" },
        { "{\"manifests\":[{\"digest\":\"" D64 "\",\"size\":1,\"platform\":"
          "{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}", "no linux/" },
        { "{\"layers\":[],\"config\":{\"digest\":\"md5:00\",\"size\":1}}", "sha256 only" },
        { "{\"layers\":[],\"config\":{\"digest\":\"" D64 "\",\"size\":-1}}", "negative" },
        { "{\"layers\":[{\"mediaType\":\"application/x-helm\",\"digest\":\"" D64 "\","
          "\"size\":1}],\"config\":{\"digest\":\"" D64 "\",\"size\":1}}",
          "not a filesystem layer" },
    };
    char msg[256];
    json_t *cfg;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(parse_doc(bad[i][0], msg, sizeof(msg)) < 0 && strstr(msg, bad[i][1]));
    CHECK(parse_doc("{\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar"
                    "+zstd\",\"digest\":\"" D64 "\",\"size\":1}],\"config\":{\"digest\":"
                    "\"" D64 "\",\"size\":1}}", msg, sizeof(msg)) == 0);
    cfg = json_pack("{s:s,s:s}", "os", "windows", "architecture", "amd64");
    CHECK(oci_check_config(cfg, NULL, msg, sizeof(msg)) < 0 && strstr(msg, "windows"));
    json_decref(cfg);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sbx-oci-apply.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(root, sizeof(root), "%s/root", dir);
    snprintf(outside, sizeof(outside), "%s/outside", dir);
    snprintf(tarpath, sizeof(tarpath), "%s/layer.tar", dir);
    CHECK(mkdir(root, 0755) == 0 && mkdir(outside, 0755) == 0);
    refs();
    documents();
    hostile_layers();
    CHECK(system("rm -rf /tmp/sbx-oci-apply.??????") == 0);
    printf("ok\n");
    return 0;
}
