# qemu-tests: end-to-end tests in a nested-KVM L1 under QEMU TCG (see qemu-tests/run).
DEPS += qemu-system-x86 busybox-static cpio kmod openssh-client

# Test guests built from source: tiny "kernels" that misbehave on purpose.
BINS += $(B)/qemu-tests/guests/triple-fault.elf
$(B)/qemu-tests/guests/%.elf: qemu-tests/guests/%.S
	@mkdir -p $(@D)
	$(CC) -nostdlib -static -no-pie -Wl,-Ttext-segment=0x100000 -Wl,--build-id=none $< -o $@
