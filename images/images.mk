# Guest images: Debian 12's kernel (fetched into the cache) and the initramfs with sbx-init.
DEPS += cpio kmod gzip
IMAGES_KERNEL_DIR = $(shell images/fetch-kernel)
# Modules every guest loads from its initramfs (Debian builds them as modules).
GUEST_MODULES :=

BINS += $(B)/images/vmlinuz $(B)/images/initrd.cpio.gz

$(B)/images/vmlinuz: images/fetch-kernel
	@mkdir -p $(@D)
	cp "$(IMAGES_KERNEL_DIR)"/boot/vmlinuz-* $@

$(B)/images/initrd.cpio.gz: $(B)/bin/sbx-init images/build-initrd images/fetch-kernel
	@mkdir -p $(@D)
	images/build-initrd $@ $(B)/bin/sbx-init "$(IMAGES_KERNEL_DIR)" $(GUEST_MODULES)
