/* Files of a layout are opened beneath its folder (openat2 RESOLVE_BENEATH:
 * relative symlinks inside it, as docker save makes, are fine; nothing
 * outside it is read). */
#include "oci_layout.h"

#include "oci_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_NESTING 4
#define SCAN_COMPRESSED 64          /* headers looked at in a compressed tarball */

static bool has_file(const char *dir, const char *name)
{
    char path[4200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool oci_layout_is_dir(const char *dir)
{
    return has_file(dir, "oci-layout") || has_file(dir, "manifest.json");
}

static bool top_marker(const char *name)
{
    if (!strncmp(name, "./", 2))
        name += 2;
    return !strcmp(name, "oci-layout") || !strcmp(name, "manifest.json");
}

bool oci_layout_is_archive(const char *path)
{
    struct archive *ar = archive_read_new();
    struct archive_entry *e;
    bool found = false;
    long n = 0;

    if (!ar)
        return false;
    archive_read_support_filter_all(ar);
    archive_read_support_format_tar(ar);
    archive_read_support_format_gnutar(ar);
    if (archive_read_open_filename(ar, path, 1 << 16) == ARCHIVE_OK) {
        /* An uncompressed tar is skipped through by seeking: look at all of
         * it (docker save puts manifest.json last). */
        while (!found && archive_read_next_header(ar, &e) == ARCHIVE_OK) {
            found = top_marker(archive_entry_pathname(e) ?: "");
            if (++n >= SCAN_COMPRESSED && archive_filter_code(ar, 0) != ARCHIVE_FILTER_NONE)
                break;
        }
    }
    archive_read_free(ar);
    return found;
}

struct layout {
    int dirfd;
    const char *root;
    struct oci_budget *budget;
    char **run;                     /* the image's run settings (oci_check_config) */
    char *msg;
    size_t len;
};

static int open_in(struct layout *l, const char *rel)
{
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH };
    int fd = (int)syscall(SYS_openat2, l->dirfd, rel, &how, sizeof(how));

    if (fd < 0)
        snprintf(l->msg, l->len, "image layout: %.200s: %s", rel, strerror(errno));
    return fd;
}

/* Reads rel (at most OCI_DOC_MAX bytes) into a NUL-terminated buffer. */
static char *read_in(struct layout *l, const char *rel, size_t *n)
{
    int fd = open_in(l, rel);
    char *buf = NULL;
    struct stat st;
    ssize_t got;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > OCI_DOC_MAX) {
        snprintf(l->msg, l->len, "image layout: %.200s: not a file of at most 4 MiB", rel);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto out;
    got = pread(fd, buf, (size_t)st.st_size, 0);
    if (got != st.st_size) {
        snprintf(l->msg, l->len, "image layout: %.200s: short read", rel);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[got] = '\0';
    *n = (size_t)got;
out:
    close(fd);
    return buf;
}

static void blob_path(const char *digest, char *out, size_t len)
{
    snprintf(out, len, "blobs/sha256/%s", digest + 7);
}

/* The blob of d, checked, parsed as JSON. */
static json_t *read_blob_json(struct layout *l, const struct oci_desc *d, const char *what)
{
    char rel[128];
    size_t n = 0;
    char *buf;
    json_t *doc = NULL;

    blob_path(d->digest, rel, sizeof(rel));
    buf = read_in(l, rel, &n);
    if (buf && oci_check_blob(d, buf, n, what, l->msg, l->len) == 0)
        doc = oci_json(buf, n, what, l->msg, l->len);
    free(buf);
    return doc;
}

/* Checks the layer at rel against d (size -1: any size) and applies it. */
static int apply_layer(struct layout *l, const char *rel, struct oci_desc *d)
{
    int fd = open_in(l, rel), rc = -1;
    struct stat st;

    if (fd < 0)
        return -1;
    if (d->size < 0 && fstat(fd, &st) == 0)
        d->size = st.st_size;
    if (oci_check_file(d, fd, "layer", l->msg, l->len) == 0)
        rc = oci_apply_layer(l->root, fd, true, l->budget, l->msg, l->len);
    close(fd);
    return rc;
}

/* OCI layout: index.json, down to one image manifest. */
static int apply_oci(struct layout *l)
{
    struct oci_manifest *m = malloc(sizeof(*m));
    json_t *doc, *cfg = NULL;
    struct oci_desc d;
    enum oci_doc kind = OCI_DOC_INDEX;
    char rel[128];
    size_t n = 0;
    char *buf = read_in(l, "index.json", &n);
    int rc = -1;

    doc = buf ? oci_json(buf, n, "index.json", l->msg, l->len) : NULL;
    free(buf);
    for (int depth = 0; doc && kind == OCI_DOC_INDEX; depth++) {
        if (depth == MAX_NESTING || oci_pick_platform(doc, &d, l->msg, l->len)) {
            if (depth == MAX_NESTING)
                snprintf(l->msg, l->len, "image indexes nested too deep");
            goto out;
        }
        json_decref(doc);
        doc = read_blob_json(l, &d, "manifest");
        if (doc && oci_doc_kind(doc, NULL, &kind, l->msg, l->len))
            goto out;
    }
    if (!doc || !m || oci_parse_manifest(doc, m, l->msg, l->len))
        goto out;
    cfg = read_blob_json(l, &m->config, "config");
    if (!cfg || oci_check_config(cfg, l->run, l->msg, l->len))
        goto out;
    for (size_t i = 0; i < m->n_layers; i++) {
        blob_path(m->layers[i].digest, rel, sizeof(rel));
        if (apply_layer(l, rel, &m->layers[i]))
            goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    json_decref(cfg);
    free(m);
    return rc;
}

/* The sha256 digest a docker save path carries (blobs/sha256/HEX, HEX.json,
 * HEX.tar). */
static bool digest_of_path(const char *rel, char out[OCI_DIGEST_LEN])
{
    const char *base = strrchr(rel, '/');

    base = base ? base + 1 : rel;
    snprintf(out, OCI_DIGEST_LEN, "sha256:%.64s", base);
    return oci_digest_valid(out) &&
           (!base[64] || !strcmp(base + 64, ".json") || !strcmp(base + 64, ".tar"));
}

/* docker save: manifest.json [{Config, Layers}]; layers without a digest in
 * their name are checked against the config's rootfs.diff_ids. */
static int apply_docker(struct layout *l)
{
    size_t n = 0, i;
    char *buf = read_in(l, "manifest.json", &n), *cbuf = NULL;
    json_t *doc = buf ? json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL) : NULL, *cfg = NULL;
    json_t *img = json_array_get(doc, 0), *layers = json_object_get(img, "Layers"), *ly;
    const char *config = json_string_value(json_object_get(img, "Config"));
    json_t *diff_ids;
    struct oci_desc d;
    int rc = -1;

    if (!config || !json_is_array(layers)) {
        if (buf)
            snprintf(l->msg, l->len, "manifest.json is not a docker save manifest");
        goto out;
    }
    cbuf = read_in(l, config, &n);
    d = (struct oci_desc){ .size = (int64_t)n };
    if (!cbuf || (digest_of_path(config, d.digest) &&
                  oci_check_blob(&d, cbuf, n, "config", l->msg, l->len)))
        goto out;
    cfg = oci_json(cbuf, n, "the image config", l->msg, l->len);
    if (!cfg || oci_check_config(cfg, l->run, l->msg, l->len))
        goto out;
    diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    json_array_foreach(layers, i, ly) {
        const char *rel = json_string_value(ly);
        const char *diff = json_string_value(json_array_get(diff_ids, i));
        d = (struct oci_desc){ .size = -1 };
        if (rel && !digest_of_path(rel, d.digest))
            snprintf(d.digest, sizeof(d.digest), "%s", diff ? diff : "");
        if (!rel || !oci_digest_valid(d.digest)) {
            snprintf(l->msg, l->len, "manifest.json: layer %zu has no digest to check", i);
            goto out;
        }
        if (apply_layer(l, rel, &d))
            goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    json_decref(cfg);
    free(buf);
    free(cbuf);
    return rc;
}

int oci_layout_apply(const char *dir, const char *root, struct oci_budget *budget, char **run,
                     char *msg,
                     size_t len)
{
    struct layout l = { .root = root, .budget = budget, .run = run, .msg = msg, .len = len };
    int rc;

    l.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l.dirfd < 0) {
        snprintf(msg, len, "%.200s: %s", dir, strerror(errno));
        return -1;
    }
    rc = has_file(dir, "index.json") ? apply_oci(&l) : apply_docker(&l);
    close(l.dirfd);
    return rc;
}

int oci_layout_apply_archive(const char *archive, const char *work, const char *root,
                             struct oci_budget *budget, char **run, char *msg, size_t len)
{
    char dir[4200];
    struct oci_budget unpack = { .limit = budget->limit };
    int fd = open(archive, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0) {
        snprintf(msg, len, "%.200s: %s", archive, strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/layout", work);
    if (mkdir(dir, 0700) < 0) {
        snprintf(msg, len, "cannot create %.200s: %s", dir, strerror(errno));
        close(fd);
        return -1;
    }
    rc = oci_apply_layer(dir, fd, false, &unpack, msg, len);
    close(fd);
    return rc ? -1 : oci_layout_apply(dir, root, budget, run, msg, len);
}
