/* OCI image documents (image index / Docker manifest list, image manifest /
 * Docker schema 2 manifest, image config) and sha256 digests, shared by the
 * registry client (oci_registry.c) and local image layouts (oci_layout.c). */
#ifndef SBX_API_OCI_IMAGE_H
#define SBX_API_OCI_IMAGE_H

#include "oci_ref.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* Most bytes of a manifest, an index or an image config taken. */
#define OCI_DOC_MAX (4 << 20)
/* Most layers in one image (Docker itself stops at 127). */
#define OCI_LAYERS_MAX 256

struct oci_desc {
    char media_type[128];
    char digest[OCI_DIGEST_LEN];
    int64_t size;
};

struct oci_manifest {
    struct oci_desc config;
    struct oci_desc layers[OCI_LAYERS_MAX];
    size_t n_layers;
};

enum oci_doc { OCI_DOC_INDEX, OCI_DOC_MANIFEST };

/* What the JSON document doc is (content_type: the HTTP Content-Type, or
 * NULL). Returns 0, or -1 with msg (schema 1, an unknown type). */
int oci_doc_kind(json_t *doc, const char *content_type, enum oci_doc *kind, char *msg,
                 size_t len);

/* The entry of index doc for this host's platform (linux/amd64 on x86-64);
 * an index of one entry without a platform is taken as it is. */
int oci_pick_platform(json_t *doc, struct oci_desc *out, char *msg, size_t len);

/* The config and layers of manifest doc; layers must be tar layers
 * (uncompressed, gzip or zstd). */
int oci_parse_manifest(json_t *doc, struct oci_manifest *m, char *msg, size_t len);

/* Bounds on an image config's run settings (config.Env, WorkingDir, User, Entrypoint, Cmd):
 * an exec request to the guest agent carries them in one 64 KiB frame. */
#define OCI_ENV_MAX 256
#define OCI_ENV_ENTRY_MAX 4096
#define OCI_ENV_BYTES_MAX (32 << 10)
#define OCI_WORKDIR_MAX 1024
#define OCI_USER_MAX 256
/* Bounds on its command (Entrypoint + Cmd), and on a snapshot's start_command. */
#define OCI_CMD_ARGS_MAX 256
#define OCI_CMD_BYTES_MAX (16 << 10)

/* Checks an image config (a JSON object): its os/architecture, when given,
 * must be this host's, and its run settings valid (oci_run_config). When run
 * is not NULL the run settings replace (and free) *run. Returns 0, or -1 with
 * msg. */
int oci_check_config(json_t *config, char **run, char *msg, size_t len);

/* The run settings of image config as compact JSON text
 * {"env":["K=V",...],"working_dir":"/abs","user":"name[:group]",
 * "command":["arg",...]} (those the image sets; "" when none), malloc'd in
 * *out. Env entries must be NAME=VALUE without NUL, WorkingDir absolute;
 * command is Entrypoint followed by Cmd when Entrypoint is set, else Cmd (as
 * Docker runs them), left out when both are absent or empty; their entries are
 * strings without NUL, the first not empty. Over the bounds above fails.
 * Returns 0, or -1 with msg. */
int oci_run_config(json_t *config, char **out, char *msg, size_t len);


/* sha256:HEX of buf. */
void oci_sha256(const void *buf, size_t n, char out[OCI_DIGEST_LEN]);
/* sha256:HEX of what went through ctx (an EVP sha256 context). */
void oci_sha256_final(EVP_MD_CTX *ctx, char out[OCI_DIGEST_LEN]);
/* Whether size bytes with digest got are what d describes; -1 with msg if not. */
int oci_check_digest(const struct oci_desc *d, const char *got, int64_t size, const char *what,
                     char *msg, size_t len);
/* Whether buf has the size and digest of d; -1 with msg if not. */
int oci_check_blob(const struct oci_desc *d, const void *buf, size_t n, const char *what,
                   char *msg, size_t len);
/* The same for the file at fd (read from its start). */
int oci_check_file(const struct oci_desc *d, int fd, const char *what, char *msg, size_t len);

/* Loads JSON text (an object) strictly; NULL with msg on bad JSON. */
json_t *oci_json(const char *buf, size_t n, const char *what, char *msg, size_t len);

#endif
