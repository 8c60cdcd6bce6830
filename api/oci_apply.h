/* Applying an image layer (a tar, uncompressed, gzip or zstd) onto a root
 * folder the way container runtimes do: OCI whiteouts first (.wh.NAME removes
 * NAME of the layers below, .wh..wh..opq empties its folder of them), then
 * the layer's files, each replacing what was there. Nothing is written
 * outside root: ".." entries are refused, no path is followed through a
 * symlink, device nodes are left out (the guest mounts devtmpfs). */
#ifndef SBX_API_OCI_APPLY_H
#define SBX_API_OCI_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of file data written so far and the most allowed (the snapshot's
 * capacity: a layer that would grow past it fails). */
struct oci_budget {
    int64_t used;
    int64_t limit;
};

/* Applies the tarball open at fd (read from its start, twice) onto root (an
 * existing folder). with_whiteouts false unpacks a plain archive (an image
 * layout), where .wh. names are ordinary files. Returns 0, or -1 with msg. */
int oci_apply_layer(const char *root, int fd, bool with_whiteouts,
                    struct oci_budget *budget, char *msg, size_t len);

#endif
