# scripts/tests/test_NAME.sh -> unit test scripts/test_NAME: a script driving the
# project's scripts (run-service, run-appliance) with the real binaries of the build.
SCRIPT_TESTS := $(patsubst scripts/tests/%.sh,$(B)/tests/scripts/%,$(wildcard scripts/tests/test_*.sh))
UNIT_TESTS += $(SCRIPT_TESTS)
$(SCRIPT_TESTS): $(B)/tests/scripts/%: scripts/tests/%.sh
	@mkdir -p $(@D)
	ln -sfn $(abspath $<) $@
# `make run` as a user drives it: the appliance (QEMU TCG, nested KVM) runs these.
$(B)/tests/scripts/test_run_appliance: $(B)/bin/sbx $(B)/bin/sbx-api $(B)/bin/sbx-router \
    $(B)/bin/sbx-vmm $(B)/bin/sbx-init $(B)/images/vmlinuz $(B)/images/initrd.cpio.gz \
    $(B)/images/rootfs.ext4
DEPS += qemu-system-x86 e2fsprogs psmisc curl python3
