# A guest boots from a snapfs root disk (ext4 on virtio-blk): sbx-init switches to
# it with the agent serving from there; a file written in the guest survives a
# power-off and a second boot on the same overlay.
# timeout: 420
set -eu
source qemu-tests/lib/guest.sh
CTL=$SBX_BUILD/bin/sbx-agentctl
SNAPFS=$SBX_BUILD/bin/snapfs
work=/run/sbx-tests/rootdisk
rm -rf "$work"
busybox_tree "$work/tree"
echo "from the root disk" > "$work/tree/etc/marker"
truncate -s 64M "$work/root.ext4"
mke2fs -q -F -t ext4 -b 4096 -d "$work/tree" "$work/root.ext4"
"$SNAPFS" --store "$work/store" import --level 3 "$work/root.ext4" base
"$SNAPFS" --store "$work/store" overlay base "$work/ovl"
DISK="store=$work/store,overlay=$work/ovl"
ctl() { timeout 120 "$CTL" --vsock-uds "$VSOCK" "$@"; }
check() { # WHAT EXPECTED ACTUAL
    if [[ "$3" != "$2" ]]; then echo "FAIL: $1: expected '$2', got '$3'"; exit 1; fi
    echo "ok: $1"
}

start_guest 1 "sbx.root=/dev/vda" --disk "$DISK"
trap 'kill $guest_pid 2>/dev/null || true' EXIT
check "file from the root disk" "from the root disk" "$(ctl exec --no-stdin -- cat /etc/marker)"
check "root is the disk" "/dev/vda" "$(ctl exec --no-stdin -- sh -c 'grep " / " /proc/mounts | cut -d" " -f1')"
ctl exec --no-stdin -- sh -c 'echo kept > /root/note && sync'
ctl shutdown
wait_guest_exit
check "sbx-vmm exit after shutdown" 0 "$guest_rc"

start_guest 1 "sbx.root=/dev/vda" --disk "$DISK"
check "file kept across boots" "kept" "$(ctl exec --no-stdin -- cat /root/note)"
ctl shutdown
wait_guest_exit
trap - EXIT
check "sbx-vmm exit after the second shutdown" 0 "$guest_rc"
"$SNAPFS" --store "$work/store" verify --overlay "$work/ovl"
