/* Pulling a container image from a registry that speaks the OCI distribution
 * API (Docker Registry HTTP API v2) with libcurl: bearer tokens from the
 * WWW-Authenticate challenge (Docker Hub, ghcr.io), anonymous or asked for
 * with a username and password, or HTTP Basic auth (a plain registry behind
 * htpasswd), image indexes
 * (the linux/amd64 entry), OCI and Docker schema 2 manifests, every blob's
 * size and sha256 checked as it streams in. HTTPS only, except for the hosts
 * named with oci_registry_allow_insecure (sbx-api --insecure-registry). */
#ifndef SBX_API_OCI_REGISTRY_H
#define SBX_API_OCI_REGISTRY_H

#include "oci_apply.h"

#include <stddef.h>

/* Lets HOST:PORT (or HOST) be spoken to over plain HTTP. Call before any
 * pull starts (option parsing). Returns 0 or -1 (bad name, too many). */
int oci_registry_allow_insecure(const char *host);

/* A registry login: a username and a password (or an access token used as
 * one). */
struct oci_registry_auth {
    const char *username;
    const char *password;
};

/* Pulls image reference ref and applies its layers in order onto root
 * (a folder); work is an empty folder for downloads. Its run settings go to
 * *run when run is not NULL (oci_check_config). auth (NULL: anonymous) goes,
 * as HTTP Basic, only to the registry of ref (when it challenges with Basic)
 * and to the token realm its Bearer challenge names, over plain HTTP only to
 * hosts named with oci_registry_allow_insecure; never into msg, a log line,
 * or a redirect to another host. Copies of it made here are wiped before
 * returning. Blocking. Returns 0, or -1 with msg. */
int oci_registry_pull(const char *ref, const struct oci_registry_auth *auth, const char *work,
                      const char *root, struct oci_budget *budget, char **run, char *msg,
                      size_t len);

#endif
