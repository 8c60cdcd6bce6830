# snapfs: libsnapfs (every snapfs/*.c but the CLI), the snapfs CLI, its tests and fuzzer.
SNAPFS_LIB_SRCS := $(filter-out snapfs/cli.c,$(wildcard snapfs/*.c))
SNAPFS_LDLIBS   := -lpthread -luring -lzstd -lcrypto
DEPS            += liburing-dev libzstd-dev libssl-dev qemu-utils e2fsprogs

BINS += $(B)/bin/snapfs
$(B)/bin/snapfs: $(call rel,$(SNAPFS_LIB_SRCS) snapfs/cli.c)
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(SNAPFS_LDLIBS)

# The benchmark driver (bench/snapfs/run builds it; not part of `make all`).
$(B)/bin/snapfs-bench: $(call rel,$(SNAPFS_LIB_SRCS) bench/snapfs/snapbench.c)
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(SNAPFS_LDLIBS)

# snapfs/tests/test_NAME.c -> unit test snapfs/test_NAME (with tests/helpers.c).
$(foreach t,$(wildcard snapfs/tests/test_*.c),\
  $(eval $(call unit_test,snapfs/$(basename $(notdir $(t))),$(t) snapfs/tests/helpers.c $(SNAPFS_LIB_SRCS),$(SNAPFS_LDLIBS))))
# snapfs/fuzz/fuzz_NAME.c -> libFuzzer target snapfs/fuzz_NAME.
$(foreach t,$(wildcard snapfs/fuzz/fuzz_*.c),\
  $(eval $(call fuzz_target,snapfs/$(basename $(notdir $(t))),$(t) $(SNAPFS_LIB_SRCS),$(SNAPFS_LDLIBS))))
