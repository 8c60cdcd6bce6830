# L1 preparation for qemu-tests/run and the benchmarks (sourced).
# Sets L1_KERNEL, L1_INITRD, L1_APPEND, L1_MEM, L1_CPUS. The initramfs is cached in
# $SBX_CACHE/l1 under a hash of its inputs.
L1_MEM=${SBX_L1_MEM:-2G}
L1_CPUS=${SBX_L1_CPUS:-1}
L1_APPEND="console=ttyS0 panic=-1 quiet loglevel=3"
L1_MODULES="kvm_amd 9p 9pnet_virtio virtio_pci vhost_vsock"

l1_prepare() {
    local cache=${SBX_CACHE:-$HOME/.cache/sbx} kdir version key stage
    kdir=$(images/fetch-kernel) || return 1
    version=$(basename "$(ls -d "$kdir"/lib/modules/*/ | head -n 1)")
    L1_KERNEL=$kdir/boot/vmlinuz-$version
    key=$( (echo "$version $L1_MODULES"; cat qemu-tests/l1-init /bin/busybox) | sha256sum | cut -c1-16)
    L1_INITRD=$cache/l1/initrd-$key.cpio.gz
    [[ -f $L1_INITRD ]] && return 0
    stage=$(mktemp -d)
    mkdir -p "$stage/bin"
    cp /bin/busybox "$stage/bin/busybox"
    install -m 0755 qemu-tests/l1-init "$stage/init"
    images/add-modules "$stage" modules.load "$kdir" $L1_MODULES
    mkdir -p "$cache/l1"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
        | gzip -1 > "$L1_INITRD.tmp" && mv "$L1_INITRD.tmp" "$L1_INITRD"
    rm -rf "$stage"
    [[ -f $L1_INITRD ]]
}
