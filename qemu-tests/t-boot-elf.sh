# sbx-vmm boots the same kernel as an ELF vmlinux (the bzImage's payload) with
# 2 vCPUs to sbx-init, which powers off; sbx-vmm exits 0.
# timeout: 300
set -eu
source qemu-tests/lib/guest.sh
KERNEL=$SBX_BUILD/images/vmlinux
boot_guest 2 sbx.poweroff
expect_exit 0
expect_console 'sbx-init: ready uptime=[0-9.]*s cpus=2'
