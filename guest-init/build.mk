# sbx-init: static PID 1 of every guest. Every guest-init/*.c is part of it; main.c holds main().
INIT_LIB_SRCS := $(filter-out guest-init/main.c,$(wildcard guest-init/*.c))
INIT_LDLIBS   := -lpthread -lutil

BINS += $(B)/bin/sbx-init
$(B)/bin/sbx-init: $(call rel,$(INIT_LIB_SRCS) guest-init/main.c)
	@mkdir -p $(@D)
	$(CC) -static $^ -o $@ $(INIT_LDLIBS)

$(foreach t,$(wildcard guest-init/tests/test_*.c),\
  $(eval $(call unit_test,guest-init/$(basename $(notdir $(t))),$(t) $(INIT_LIB_SRCS),$(INIT_LDLIBS))))
$(foreach t,$(wildcard guest-init/fuzz/fuzz_*.c),\
  $(eval $(call fuzz_target,guest-init/$(basename $(notdir $(t))),$(t) $(INIT_LIB_SRCS),$(INIT_LDLIBS))))
