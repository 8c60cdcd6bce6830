/* Reading OCI / Docker image documents with jansson; digests with OpenSSL. */
#include "oci_image.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#else
#define HOST_ARCH "unknown"
#endif

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

static int fail(char *msg, size_t len, const char *fmt, const char *arg)
{
    snprintf(msg, len, fmt, arg);
    return -1;
}

json_t *oci_json(const char *buf, size_t n, const char *what, char *msg, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);

    if (!doc) {
        snprintf(msg, len, "%s is not valid JSON: %.80s", what, jerr.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(msg, len, "%s is not a JSON object", what);
        return NULL;
    }
    return doc;
}

/* Content-Type without parameters, compared with want. */
static bool type_is(const char *type, const char *want)
{
    size_t n = strlen(want);

    return type && !strncmp(type, want, n) && (!type[n] || type[n] == ';' || type[n] == ' ');
}

int oci_doc_kind(json_t *doc, const char *content_type, enum oci_doc *kind, char *msg,
                 size_t len)
{
    const char *mt = json_string_value(json_object_get(doc, "mediaType"));
    const char *t = mt ? mt : content_type;

    if (json_integer_value(json_object_get(doc, "schemaVersion")) == 1)
        return fail(msg, len, "%s", "Docker schema 1 manifests are not supported");
    if (type_is(t, MT_OCI_INDEX) || type_is(t, MT_DOCKER_LIST)) {
        *kind = OCI_DOC_INDEX;
        return 0;
    }
    if (type_is(t, MT_OCI_MANIFEST) || type_is(t, MT_DOCKER_MANIFEST)) {
        *kind = OCI_DOC_MANIFEST;
        return 0;
    }
    /* An OCI document may leave mediaType out: go by its shape. */
    if (!mt && json_is_array(json_object_get(doc, "manifests"))) {
        *kind = OCI_DOC_INDEX;
        return 0;
    }
    if (!mt && json_is_array(json_object_get(doc, "layers"))) {
        *kind = OCI_DOC_MANIFEST;
        return 0;
    }
    return fail(msg, len, "not an image manifest or index (media type %.100s)",
                t ? t : "none");
}

static int parse_desc(json_t *j, struct oci_desc *d, const char *what, char *msg, size_t len)
{
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    const char *digest = json_string_value(json_object_get(j, "digest"));
    json_t *size = json_object_get(j, "size");

    memset(d, 0, sizeof(*d));
    if (!json_is_object(j) || !digest || !json_is_integer(size))
        return fail(msg, len, "%s: a descriptor without digest or size", what);
    if (!oci_digest_valid(digest))
        return fail(msg, len, "%s: unsupported digest (sha256 only)", what);
    if (json_integer_value(size) < 0)
        return fail(msg, len, "%s: negative size", what);
    snprintf(d->digest, sizeof(d->digest), "%s", digest);
    snprintf(d->media_type, sizeof(d->media_type), "%s", mt ? mt : "");
    d->size = json_integer_value(size);
    return 0;
}

int oci_pick_platform(json_t *doc, struct oci_desc *out, char *msg, size_t len)
{
    json_t *list = json_object_get(doc, "manifests"), *m;
    size_t i;

    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(msg, len, "%s", "image index without manifests");
    if (json_array_size(list) == 1 && !json_object_get(json_array_get(list, 0), "platform"))
        return parse_desc(json_array_get(list, 0), out, "index", msg, len);
    json_array_foreach(list, i, m) {
        json_t *p = json_object_get(m, "platform");
        const char *os = json_string_value(json_object_get(p, "os"));
        const char *arch = json_string_value(json_object_get(p, "architecture"));
        if (os && arch && !strcmp(os, "linux") && !strcmp(arch, HOST_ARCH))
            return parse_desc(m, out, "index", msg, len);
    }
    return fail(msg, len, "the image has no linux/%s variant", HOST_ARCH);
}

static bool tar_layer(const char *mt)
{
    static const char *const ok[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        NULL,
    };

    for (const char *const *o = ok; *o; o++)
        if (!strcmp(mt, *o))
            return true;
    return false;
}

int oci_parse_manifest(json_t *doc, struct oci_manifest *m, char *msg, size_t len)
{
    json_t *layers = json_object_get(doc, "layers"), *l;
    size_t i;

    memset(m, 0, sizeof(*m));
    if (parse_desc(json_object_get(doc, "config"), &m->config, "config", msg, len))
        return -1;
    if (!json_is_array(layers))
        return fail(msg, len, "%s", "manifest without layers");
    if (json_array_size(layers) > OCI_LAYERS_MAX)
        return fail(msg, len, "more than %s layers", "256");
    json_array_foreach(layers, i, l) {
        struct oci_desc *d = &m->layers[i];
        if (parse_desc(l, d, "layer", msg, len))
            return -1;
        if (!tar_layer(d->media_type))
            return fail(msg, len, "layer media type '%.100s' is not a filesystem layer",
                        d->media_type);
    }
    m->n_layers = json_array_size(layers);
    return 0;
}

/* A JSON string of at most max bytes with no NUL, and with no control
 * character when strict; its text, or NULL. */
static const char *clean_string(json_t *v, size_t max, bool strict)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (!s || n > max || strlen(s) != n)
        return NULL;
    for (size_t i = 0; strict && i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return NULL;
    return s;
}

static int run_env(json_t *env, json_t *run, char *msg, size_t len)
{
    size_t i, total = 0;
    json_t *v, *out;

    if (!env || json_is_null(env))
        return 0;
    if (!json_is_array(env) || json_array_size(env) > OCI_ENV_MAX) {
        snprintf(msg, len, "the image config's Env is not a list of at most %d strings",
                 OCI_ENV_MAX);
        return -1;
    }
    if (!json_array_size(env))
        return 0;
    out = json_array();
    json_object_set_new(run, "env", out);
    json_array_foreach(env, i, v) {
        const char *s = clean_string(v, OCI_ENV_ENTRY_MAX, false);
        const char *eq = s ? strchr(s, '=') : NULL;

        if (!eq || eq == s) {
            snprintf(msg, len, "the image config's Env[%zu] is not NAME=VALUE (at most %d bytes)",
                     i, OCI_ENV_ENTRY_MAX);
            return -1;
        }
        total += json_string_length(v) + 1;
        if (total > OCI_ENV_BYTES_MAX) {
            snprintf(msg, len, "the image config's Env is larger than %d bytes",
                     OCI_ENV_BYTES_MAX);
            return -1;
        }
        json_array_append(out, v);
    }
    return 0;
}

/* Config field key (a string, "" taken as absent) as run's field name. */
static int run_string(json_t *c, const char *key, const char *name, size_t max, bool path,
                      json_t *run, char *msg, size_t len)
{
    json_t *v = json_object_get(c, key);
    const char *s;

    if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
        return 0;
    s = clean_string(v, max, true);
    if (!s || (path && s[0] != '/')) {
        snprintf(msg, len, "the image config's %s is not %s of at most %zu bytes", key,
                 path ? "an absolute path" : "a name", max);
        return -1;
    }
    json_object_set(run, name, v);
    return 0;
}

/* Entrypoint or Cmd (key): absent or null is an empty list; otherwise a list
 * of strings without NUL. Returns 0, or -1 with msg. */
static int command_part(json_t *c, const char *key, json_t **out, char *msg, size_t len)
{
    json_t *v = json_object_get(c, key), *s;
    size_t i;

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > OCI_CMD_ARGS_MAX) {
        snprintf(msg, len, "the image config's %s is not a list of at most %d strings", key,
                 OCI_CMD_ARGS_MAX);
        return -1;
    }
    json_array_foreach(v, i, s) {
        if (!clean_string(s, OCI_CMD_BYTES_MAX, false)) {
            snprintf(msg, len, "the image config's %s[%zu] is not a string without NUL of "
                     "at most %d bytes", key, i, OCI_CMD_BYTES_MAX);
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* The command as Docker runs it: Entrypoint followed by Cmd when Entrypoint
 * is set, else Cmd; kept as run's "command" when not empty. */
static int run_command(json_t *c, json_t *run, char *msg, size_t len)
{
    json_t *ep, *cmd, *argv, *v;
    size_t i, total = 0;

    if (command_part(c, "Entrypoint", &ep, msg, len) || command_part(c, "Cmd", &cmd, msg, len))
        return -1;
    if (json_array_size(ep) + json_array_size(cmd) == 0)
        return 0;
    if (json_array_size(ep) + json_array_size(cmd) > OCI_CMD_ARGS_MAX) {
        snprintf(msg, len, "the image config's Entrypoint and Cmd have more than %d "
                 "arguments together", OCI_CMD_ARGS_MAX);
        return -1;
    }
    argv = json_array();
    if (!argv)
        return fail(msg, len, "%s", "out of memory");
    json_object_set_new(run, "command", argv);
    if (json_array_size(ep))
        json_array_extend(argv, ep);
    if (json_array_size(cmd))
        json_array_extend(argv, cmd);
    if (!json_string_length(json_array_get(argv, 0))) {
        snprintf(msg, len, "the image config's %s starts with an empty string",
                 json_array_size(ep) ? "Entrypoint" : "Cmd");
        return -1;
    }
    json_array_foreach(argv, i, v) {
        total += json_string_length(v) + 1;
        if (total > OCI_CMD_BYTES_MAX) {
            snprintf(msg, len, "the image config's Entrypoint and Cmd are larger than %d "
                     "bytes", OCI_CMD_BYTES_MAX);
            return -1;
        }
    }
    return 0;
}

int oci_run_config(json_t *config, char **out, char *msg, size_t len)
{
    json_t *c = json_object_get(config, "config"), *run;
    int rc = -1;

    *out = NULL;
    if (!c || json_is_null(c))
        return (*out = strdup("")) ? 0 : fail(msg, len, "%s", "out of memory");
    if (!json_is_object(c))
        return fail(msg, len, "%s", "the image config's config is not an object");
    run = json_object();
    if (!run)
        return fail(msg, len, "%s", "out of memory");
    if (run_env(json_object_get(c, "Env"), run, msg, len) ||
        run_string(c, "WorkingDir", "working_dir", OCI_WORKDIR_MAX, true, run, msg, len) ||
        run_string(c, "User", "user", OCI_USER_MAX, false, run, msg, len) ||
        run_command(c, run, msg, len))
        goto out;
    *out = json_object_size(run) ? json_dumps(run, JSON_COMPACT) : strdup("");
    rc = *out ? 0 : fail(msg, len, "%s", "out of memory");
out:
    json_decref(run);
    return rc;
}

int oci_check_config(json_t *config, char **run_out, char *msg, size_t len)
{
    const char *os = json_string_value(json_object_get(config, "os"));
    const char *arch = json_string_value(json_object_get(config, "architecture"));
    char *run;

    if ((os && strcmp(os, "linux")) || (arch && strcmp(arch, HOST_ARCH))) {
        snprintf(msg, len, "the image is for %.30s/%.30s, not linux/%s", os ? os : "?",
                 arch ? arch : "?", HOST_ARCH);
        return -1;
    }
    if (oci_run_config(config, &run, msg, len))
        return -1;
    if (run_out) {
        free(*run_out);
        *run_out = run;
    } else {
        free(run);
    }
    return 0;
}

void oci_sha256_final(EVP_MD_CTX *ctx, char out[OCI_DIGEST_LEN])
{
    unsigned char md[32];
    unsigned int n = 0;

    EVP_DigestFinal_ex(ctx, md, &n);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

void oci_sha256(const void *buf, size_t n, char out[OCI_DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    out[0] = '\0';
    if (!ctx)
        return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, buf, n);
    oci_sha256_final(ctx, out);
    EVP_MD_CTX_free(ctx);
}

int oci_check_digest(const struct oci_desc *d, const char *got, int64_t size, const char *what,
                     char *msg, size_t len)
{
    if (size != d->size) {
        snprintf(msg, len, "%s %.19s...: %lld bytes where the manifest says %lld", what,
                 d->digest, (long long)size, (long long)d->size);
        return -1;
    }
    if (strcmp(got, d->digest)) {
        snprintf(msg, len, "%s digest mismatch: expected %.23s..., got %.23s...", what,
                 d->digest, got);
        return -1;
    }
    return 0;
}

int oci_check_blob(const struct oci_desc *d, const void *buf, size_t n, const char *what,
                   char *msg, size_t len)
{
    char got[OCI_DIGEST_LEN];

    oci_sha256(buf, n, got);
    return oci_check_digest(d, got, (int64_t)n, what, msg, len);
}

int oci_check_file(const struct oci_desc *d, int fd, const char *what, char *msg, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char buf[65536], got[OCI_DIGEST_LEN];
    int64_t total = 0;
    ssize_t n;

    if (!ctx)
        return fail(msg, len, "%s", "out of memory");
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((n = pread(fd, buf, sizeof(buf), total)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            EVP_MD_CTX_free(ctx);
            return fail(msg, len, "reading a blob: %s", strerror(errno));
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    oci_sha256_final(ctx, got);
    EVP_MD_CTX_free(ctx);
    return oci_check_digest(d, got, total, what, msg, len);
}
