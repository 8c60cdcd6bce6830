# A guest that triple-faults makes sbx-vmm exit 3 with a message and the vCPU
# registers; also checks bad set-up input gets a clear error and exit 1.
# timeout: 200
set -eu
source qemu-tests/lib/guest.sh
KERNEL=$SBX_BUILD/qemu-tests/guests/triple-fault.elf
boot_guest 1 ""
expect_exit 3
expect_vmm_log 'triple fault'
expect_vmm_log 'rip='

check_setup_error() { # EXPECTED-MESSAGE sbx-vmm args...
    local want=$1
    shift
    set +e
    "$VMM" "$@" > "$SBX_OUT/setup.log" 2>&1 < /dev/null
    local rc=$?
    set -e
    if [[ $rc -ne 1 ]] || ! grep -q -e "$want" "$SBX_OUT/setup.log"; then
        echo "FAIL: sbx-vmm $* exited $rc:"; cat "$SBX_OUT/setup.log"; exit 1
    fi
    echo "ok: $(head -n 1 "$SBX_OUT/setup.log")"
}
head -c 4096 /dev/urandom > "$SBX_OUT/garbage"
check_setup_error "not a Linux kernel" --kernel "$SBX_OUT/garbage" --console none
check_setup_error "cannot read kernel" --kernel /nonexistent --console none
check_setup_error "guest memory too small" --kernel "$SBX_BUILD/images/vmlinuz" --mem 16 --console none
check_setup_error "kernel and initrd" --kernel "$SBX_BUILD/images/vmlinuz" --initrd "$SBX_BUILD/images/vmlinux" --mem 100 --console none
check_setup_error "--vcpus: expected 1 to" --kernel "$SBX_BUILD/images/vmlinuz" --vcpus 0
check_setup_error "--kernel is required" --mem 64
