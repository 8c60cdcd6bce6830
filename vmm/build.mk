# sbx-vmm: every vmm/*.c is part of the VMM; main.c holds only main().
# virtio-blk serves snapfs disks: libsnapfs is linked in (SNAPFS_LIB_SRCS is set by
# snapfs/build.mk, which the root makefile includes first: the *.mk are sorted).
VMM_LIB_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c)) $(SNAPFS_LIB_SRCS)
VMM_LDLIBS   := -lpthread -luring -lzstd -lseccomp -lcrypto -lslirp
DEPS         += liburing-dev libzstd-dev libseccomp-dev libfdt-dev libssl-dev libslirp-dev

BINS += $(B)/bin/sbx-vmm
$(B)/bin/sbx-vmm: $(call rel,$(VMM_LIB_SRCS) vmm/main.c)
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(VMM_LDLIBS)

# vmm/tests/test_NAME.c -> unit test vmm/test_NAME, linked with the whole VMM library.
$(foreach t,$(wildcard vmm/tests/test_*.c),\
  $(eval $(call unit_test,vmm/$(basename $(notdir $(t))),$(t) $(VMM_LIB_SRCS),$(VMM_LDLIBS))))
# vmm/fuzz/fuzz_NAME.c -> libFuzzer target vmm/fuzz_NAME.
$(foreach t,$(wildcard vmm/fuzz/fuzz_*.c),\
  $(eval $(call fuzz_target,vmm/$(basename $(notdir $(t))),$(t) $(VMM_LIB_SRCS),$(VMM_LDLIBS))))
