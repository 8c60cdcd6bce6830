# qemu-tests: end-to-end tests in a nested-KVM L1 under QEMU TCG (see qemu-tests/run).
DEPS += qemu-system-x86 busybox-static cpio kmod
