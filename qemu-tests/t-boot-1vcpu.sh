# sbx-vmm boots Debian's kernel (bzImage) with 1 vCPU to sbx-init, which powers off;
# sbx-vmm exits 0.
# timeout: 300
set -eu
source qemu-tests/lib/guest.sh
boot_guest 1 sbx.poweroff
expect_exit 0
expect_console 'sbx-init: ready uptime=[0-9.]*s cpus=1'
