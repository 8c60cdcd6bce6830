# Helpers for qemu-tests that boot L2 guests with sbx-vmm (sourced inside L1).
VMM=$SBX_BUILD/bin/sbx-vmm
KERNEL=${KERNEL:-$SBX_BUILD/images/vmlinuz}
INITRD=${INITRD:-$SBX_BUILD/images/initrd.cpio.gz}
BASE_CMDLINE="console=ttyS0 reboot=k panic=-1 pci=off nomodeset i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check quiet"
GUEST_TIMEOUT=${GUEST_TIMEOUT:-150}

# boot_guest VCPUS EXTRA_CMDLINE [sbx-vmm options...]: runs one guest to the end;
# sets guest_rc, console log in $SBX_OUT/console-N.log.
guest_n=0
boot_guest() {
    local vcpus=$1 extra=$2
    shift 2
    guest_n=$((guest_n + 1))
    console=$SBX_OUT/console-$guest_n.log
    local start=$(date +%s.%N)
    set +e
    timeout -k 5 "$GUEST_TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --mem 256 \
        --vcpus "$vcpus" --cmdline "$BASE_CMDLINE $extra" --console "$console" "$@" \
        > "$SBX_OUT/vmm-$guest_n.log" 2>&1 < /dev/null
    guest_rc=$?
    set -e
    local end=$(date +%s.%N)
    echo "guest $guest_n: sbx-vmm exit $guest_rc after $(awk "BEGIN{print $end - $start}")s wall"
    cat "$SBX_OUT/vmm-$guest_n.log"
}

expect_exit() {
    if [[ $guest_rc -ne $1 ]]; then
        echo "FAIL: sbx-vmm exited $guest_rc, expected $1"; tail -n 40 "$console"; exit 1
    fi
}

expect_console() {
    if ! grep -q -e "$1" "$console"; then
        echo "FAIL: console has no line matching '$1'"; tail -n 40 "$console"; exit 1
    fi
    grep -e "$1" "$console"
}

expect_vmm_log() {
    if ! grep -q -e "$1" "$SBX_OUT/vmm-$guest_n.log"; then
        echo "FAIL: sbx-vmm said nothing matching '$1'"; exit 1
    fi
}

# start_guest VCPUS EXTRA_CMDLINE [sbx-vmm options...]: starts a guest in the
# background with its vsock bridge on $VSOCK and waits for sbx-init's readiness
# line. Sets guest_pid.
start_guest() {
    local vcpus=$1 extra=$2
    shift 2
    guest_n=$((guest_n + 1))
    console=$SBX_OUT/console-$guest_n.log
    mkdir -p /run/sbx-tests   # not under $SBX_OUT: Unix sockets cannot live on 9p
    VSOCK=/run/sbx-tests/vsock-$guest_n.sock
    : > "$console"
    "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --mem "${GUEST_MEM:-256}" --vcpus "$vcpus" \
        --cmdline "$BASE_CMDLINE $extra" --console "$console" --vsock-uds "$VSOCK" "$@" \
        > "$SBX_OUT/vmm-$guest_n.log" 2>&1 < /dev/null &
    guest_pid=$!
    for _ in $(seq 1 "$GUEST_TIMEOUT"); do
        grep -q 'sbx-init: ready' "$console" && return 0
        kill -0 "$guest_pid" 2>/dev/null || break
        sleep 1
    done
    echo "FAIL: guest not ready"; cat "$SBX_OUT/vmm-$guest_n.log"; tail -n 30 "$console"; exit 1
}

# wait_guest_exit: waits (bounded) for the background guest; sets guest_rc.
wait_guest_exit() {
    for _ in $(seq 1 60); do
        kill -0 "$guest_pid" 2>/dev/null || break
        sleep 1
    done
    kill -0 "$guest_pid" 2>/dev/null && kill "$guest_pid"
    set +e
    wait "$guest_pid"
    guest_rc=$?
    set -e
}
# busybox_tree DIR: a minimal root file system tree in DIR (created): busybox with a
# link per applet in bin/, root in etc/passwd and etc/group, and the mount points.
busybox_tree() {
    mkdir -p "$1"/{bin,etc,root,tmp,dev,proc,sys,run}
    cp /bin/busybox "$1/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [[ $applet == busybox ]] || ln -s busybox "$1/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$1/etc/passwd"
    printf 'root:x:0:\n' > "$1/etc/group"
}
