# A guest whose kernel panics (sbx-init exits: "Attempted to kill init") makes
# sbx-vmm exit 3 with a message naming the panic (pvpanic).
# timeout: 300
set -eu
source qemu-tests/lib/guest.sh
boot_guest 1 sbx.panic
expect_exit 3
expect_vmm_log 'guest kernel panicked'
expect_console 'Kernel panic'
