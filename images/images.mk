# Guest images: Debian 12's kernel (fetched into the cache) and the initramfs with sbx-init.
DEPS += cpio kmod gzip xz-utils busybox-static
IMAGES_KERNEL_DIR = $(shell images/fetch-kernel)
# Modules every guest loads from its initramfs (Debian builds them as modules).
GUEST_MODULES := pvpanic_mmio virtio_mmio vmw_vsock_virtio_transport virtio_rng virtio_blk virtio_net ext4

BINS += $(B)/images/vmlinuz $(B)/images/initrd.cpio.gz

$(B)/images/vmlinuz: images/fetch-kernel
	@mkdir -p $(@D)
	cp "$(IMAGES_KERNEL_DIR)"/boot/vmlinuz-* $@

$(B)/images/initrd.cpio.gz: $(B)/bin/sbx-init images/build-initrd images/add-modules images/fetch-kernel
	@mkdir -p $(@D)
	images/build-initrd $@ $(B)/bin/sbx-init "$(IMAGES_KERNEL_DIR)" $(GUEST_MODULES)

# The same kernel as an ELF vmlinux (its bzImage payload), to boot-test the ELF path.
BINS += $(B)/images/vmlinux
$(B)/images/vmlinux: $(B)/images/vmlinuz images/extract-vmlinux
	images/extract-vmlinux $< $@

# A test guest: the same initramfs plus busybox, so commands can run in it.
BINS += $(B)/images/initrd-busybox.cpio.gz
$(B)/images/initrd-busybox.cpio.gz: $(B)/bin/sbx-init images/build-initrd images/add-modules images/fetch-kernel
	@mkdir -p $(@D)
	images/build-initrd --busybox $@ $(B)/bin/sbx-init "$(IMAGES_KERNEL_DIR)" $(GUEST_MODULES)

# The default sandbox root filesystem: Debian 12 minbase + python3, openssh-server and
# a few tools, as ext4 (images/build-rootfs; cached under $(SBX_CACHE)/rootfs, built
# as root with network the first time).
DEPS += debootstrap e2fsprogs
BINS += $(B)/images/rootfs.ext4
$(B)/images/rootfs.ext4: images/build-rootfs
	images/build-rootfs $@
