#!/bin/sh
# Makes the test images of test_oci_registry in folder $1 with tar, gzip,
# zstd and sha256sum (no container tools):
#   $1/layout      OCI image layout, tag v1: layer 1 (gzip) holds /bin/sh
#                  (busybox-static), /etc/hello.txt, /etc/gone.txt,
#                  /opq/old.txt, /keep/a.txt; layer 2 (zstd) whites out
#                  /etc/gone.txt, makes /opq opaque, adds /opq/new.txt and
#                  /etc/added.txt, and replaces the folder /keep with a file
#   $1/image.tar   the same layout as a tarball (like skopeo's oci-archive:)
#   $1/garbage     a layout whose manifest is not JSON (digest correct)
#   $1/baddigest   a layout whose second layer does not match its digest
#   $1/gzip        the same image with both layers gzip (for docker-archive:)
#   $1/multi       a layout whose index.json points at an image index of a
#                  linux/arm64 entry (a decoy: its config says arm64, so
#                  a build from it fails) and the linux/amd64 one
#   $1/badenv      a layout whose config's Env is a string, not a list
# The image config sets Env (PATH and GREETING), WorkingDir /opq and User app.
set -eu
out=$1
work=$out/work
mkdir -p "$work/l1/bin" "$work/l1/etc" "$work/l1/opq" "$work/l1/keep" "$work/l2/etc" \
         "$work/l2/opq" "$out/layout/blobs/sha256"
cp /bin/busybox "$work/l1/bin/sh"
echo 'hello from layer one' > "$work/l1/etc/hello.txt"
echo 'to be whited out' > "$work/l1/etc/gone.txt"
echo 'hidden by the opaque folder' > "$work/l1/opq/old.txt"
echo 'a folder replaced by a file' > "$work/l1/keep/a.txt"
: > "$work/l2/etc/.wh.gone.txt"
: > "$work/l2/opq/.wh..wh..opq"
echo 'new in layer two' > "$work/l2/opq/new.txt"
echo 'added in layer two' > "$work/l2/etc/added.txt"
echo 'keep is a file now' > "$work/l2/keep"
(cd "$work/l1" && tar --owner=0 --group=0 --numeric-owner -cf ../l1.tar .)
# The opaque marker comes after the file of its own layer: it must not hide it.
(cd "$work/l2" && tar --owner=0 --group=0 --numeric-owner -cf ../l2.tar \
    ./etc ./opq/new.txt ./opq/.wh..wh..opq ./keep)
gzip -n -c "$work/l1.tar" > "$work/l1.tar.gz"
zstd -q -c "$work/l2.tar" > "$work/l2.tar.zst"
gzip -n -c "$work/l2.tar" > "$work/l2.tar.gz"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
blob() { cp "$1" "$2/blobs/sha256/$(sha "$1")"; }

printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/opt/venv/bin:/bin","GREETING=hello world"],"WorkingDir":"/opq","User":"app"},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
    "$(sha "$work/l1.tar")" "$(sha "$work/l2.tar")" > "$work/config.json"
desc() { printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$1" "$(sha "$2")" "$(size "$2")"; }
# manifest [SECOND-LAYER MEDIA-TYPE [CONFIG]]: zstd and config.json by default
manifest() {
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s,%s]}' \
        "$(desc application/vnd.oci.image.config.v1+json "${3:-$work/config.json}")" \
        "$(desc application/vnd.oci.image.layer.v1.tar+gzip "$work/l1.tar.gz")" \
        "$(desc "${2:-application/vnd.oci.image.layer.v1.tar+zstd}" "${1:-$work/l2.tar.zst}")"
}
# layout DIR MANIFEST-FILE: the layout around a manifest.
layout() {
    mkdir -p "$1/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' > "$1/oci-layout"
    blob "$work/config.json" "$1"
    blob "$work/l1.tar.gz" "$1"
    blob "$work/l2.tar.zst" "$1"
    blob "$work/l2.tar.gz" "$1"
    blob "$2" "$1"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
        "$(sha "$2")" "$(size "$2")" > "$1/index.json"
}
manifest > "$work/manifest.json"
layout "$out/layout" "$work/manifest.json"
tar -C "$out/layout" -cf "$out/image.tar" .
echo 'this is { not json' > "$work/garbage.json"
layout "$out/garbage" "$work/garbage.json"
layout "$out/baddigest" "$work/manifest.json"
l2=$out/baddigest/blobs/sha256/$(sha "$work/l2.tar.zst")
chmod u+w "$l2"
printf 'X' | dd of="$l2" bs=1 seek=20 conv=notrunc status=none
manifest "$work/l2.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip > "$work/gz.json"
layout "$out/gzip" "$work/gz.json"
sed 's/"amd64"/"arm64"/' "$work/config.json" > "$work/config-arm64.json"
manifest "$work/l2.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip \
    "$work/config-arm64.json" > "$work/arm.json"
layout "$out/multi" "$work/manifest.json"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
    "$(sha "$work/arm.json")" "$(size "$work/arm.json")" \
    "$(sha "$work/manifest.json")" "$(size "$work/manifest.json")" > "$work/index.json"
blob "$work/index.json" "$out/multi"
blob "$work/arm.json" "$out/multi"
blob "$work/config-arm64.json" "$out/multi"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s}]}' \
    "$(sha "$work/index.json")" "$(size "$work/index.json")" > "$out/multi/index.json"
sed 's/"Env":\[[^]]*\]/"Env":"PATH=\/bin"/' "$work/config.json" > "$work/config-badenv.json"
manifest "" "" "$work/config-badenv.json" > "$work/badenv.json"
layout "$out/badenv" "$work/badenv.json"
blob "$work/config-badenv.json" "$out/badenv"
rm -rf "$work"
