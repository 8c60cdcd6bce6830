# sbx-router: service URLs <sandbox>--<port>.<domain> relayed to sandbox ports.
# Every router/*.c but main.c is the router library (also linked by tests and fuzzers).
ROUTER_LIB_SRCS := $(filter-out router/main.c,$(wildcard router/*.c))
ROUTER_LDLIBS   := -lhttp_parser -lssl -lcrypto
DEPS            += libhttp-parser-dev libssl-dev curl python3 openssl chromium wrk nginx-light

BINS += $(B)/bin/sbx-router
$(B)/bin/sbx-router: $(call rel,$(ROUTER_LIB_SRCS) router/main.c)
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(ROUTER_LDLIBS)

# The same program with ASan+UBSan; the script tests use it when it is there.
$(B)/san-bin/sbx-router: $(call san,$(ROUTER_LIB_SRCS) router/main.c)
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) $^ -o $@ $(ROUTER_LDLIBS)

# router/tests/test_NAME.c -> unit test router/test_NAME (C, linked with the library).
$(foreach t,$(wildcard router/tests/test_*.c),\
  $(eval $(call unit_test,router/$(basename $(notdir $(t))),$(t) $(ROUTER_LIB_SRCS),$(ROUTER_LDLIBS))))

# router/tests/test_NAME.sh -> unit test router/test_NAME: a script driving the real
# sbx-router with curl and python3 backends (linked into the build tree).
ROUTER_SCRIPT_TESTS := $(patsubst router/tests/%.sh,$(B)/tests/router/%,$(wildcard router/tests/test_*.sh))
UNIT_TESTS += $(ROUTER_SCRIPT_TESTS)
$(ROUTER_SCRIPT_TESTS): $(B)/tests/router/%: router/tests/%.sh $(B)/bin/sbx-router $(B)/san-bin/sbx-router
	@mkdir -p $(@D)
	ln -sfn $(abspath $<) $@
# The sbx backend's tests run the real guest agent (sbx-init --agent-unix), and sbx-api.
$(B)/tests/router/test_sbx_backend: $(B)/bin/sbx-init
$(B)/tests/router/test_sbx_api: $(B)/bin/sbx-init $(B)/bin/sbx-api
$(B)/tests/router/test_sbx_public: $(B)/bin/sbx-init $(B)/bin/sbx-api $(B)/bin/sbx

# router/fuzz/fuzz_NAME.c -> libFuzzer target router/fuzz_NAME.
$(foreach t,$(wildcard router/fuzz/fuzz_*.c),\
  $(eval $(call fuzz_target,router/$(basename $(notdir $(t))),$(t) $(ROUTER_LIB_SRCS),$(ROUTER_LDLIBS))))
