/* Container images on this host: an OCI image layout folder (oci-layout,
 * index.json, blobs/sha256/...), an unpacked `docker save` (manifest.json),
 * or either as a tarball (skopeo's oci-archive:, docker save's output).
 * Their layers are checked against their digests and applied like pulled
 * ones (oci_apply.h). */
#ifndef SBX_API_OCI_LAYOUT_H
#define SBX_API_OCI_LAYOUT_H

#include "oci_apply.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether folder dir holds an image layout (oci-layout or manifest.json). */
bool oci_layout_is_dir(const char *dir);

/* Whether the tarball at path holds an image layout at its top (read from
 * its headers only). */
bool oci_layout_is_archive(const char *path);

/* Applies the image in layout folder dir onto root: the only image there,
 * else the linux/amd64 one (OCI), or the first (docker save). Its run
 * settings go to *run when run is not NULL (oci_check_config). Returns 0, or
 * -1 with msg. */
int oci_layout_apply(const char *dir, const char *root, struct oci_budget *budget, char **run,
                     char *msg, size_t len);

/* Unpacks the archive into work/layout, then oci_layout_apply. */
int oci_layout_apply_archive(const char *archive, const char *work, const char *root,
                             struct oci_budget *budget, char **run, char *msg, size_t len);

#endif
