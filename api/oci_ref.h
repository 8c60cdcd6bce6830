/* Container image references as Docker and the OCI distribution spec write
 * them: [REGISTRY[:PORT]/]REPO[:TAG][@sha256:HEX]. Docker Hub is the default
 * registry (API host registry-1.docker.io), where a one-part repository is
 * under library/; the default tag is latest. */
#ifndef SBX_API_OCI_REF_H
#define SBX_API_OCI_REF_H

#include <stdbool.h>
#include <stddef.h>

#define OCI_DIGEST_LEN 72           /* "sha256:" + 64 hex + NUL, rounded */

struct oci_ref {
    char registry[256];             /* the host (and port) the API is asked at */
    char repo[256];                 /* e.g. library/ubuntu */
    char tag[129];                  /* "" when only a digest was given */
    char digest[OCI_DIGEST_LEN];    /* "" unless pinned with @sha256:... */
};

/* Parses s into ref. Returns 0, or -1 with why filled. */
int oci_ref_parse(const char *s, struct oci_ref *ref, char *why, size_t len);

/* The full form: REGISTRY/REPO:TAG[@DIGEST] (REGISTRY/REPO@DIGEST without tag). */
void oci_ref_format(const struct oci_ref *ref, char *out, size_t len);

/* "sha256:" followed by 64 lowercase hex digits (the only algorithm taken). */
bool oci_digest_valid(const char *digest);

#endif
