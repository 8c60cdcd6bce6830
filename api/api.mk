# sbx-api (control plane REST server) and sbx (its CLI). The guest-agent client
# (api/agent_client*, api/agentctl.c) has its own fragment, so sources are listed.
API_LIB_SRCS := api/apilog.c api/apierr.c api/loop.c api/store.c api/validate.c \
                api/service.c api/sandbox.c api/snapshot.c api/retention.c \
                api/driver_proc.c api/router.c api/openapi.c api/httpd.c api/options.c
API_LDLIBS   := -lmicrohttpd -ljansson -lsqlite3
CLI_SRCS     := api/cli/sbx.c api/cli/cli_http.c api/cli/cli_format.c
CLI_LDLIBS   := -lcurl -ljansson
DEPS         += libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev curl

# openapi.c embeds api/openapi.json with .incbin.
$(call rel,api/openapi.c) $(call san,api/openapi.c) $(call fuzz,api/openapi.c): api/openapi.json

BINS += $(B)/bin/sbx-api
$(B)/bin/sbx-api: $(call rel,$(API_LIB_SRCS) api/main.c)
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(API_LDLIBS)

# api/tests/test_NAME.c -> unit test api/test_NAME, linked with the server library.
# The tests that drive real processes run build/bin/sbx-api and build/bin/sbx.
$(foreach t,$(wildcard api/tests/test_*.c),\
  $(eval $(call unit_test,api/$(basename $(notdir $(t))),$(t) api/tests/harness.c $(API_LIB_SRCS),$(API_LDLIBS) -lcurl)))
$(addprefix $(B)/tests/api/,$(basename $(notdir $(wildcard api/tests/test_*.c)))): | $(B)/bin/sbx-api

# api/fuzz/fuzz_NAME.c -> libFuzzer target api/fuzz_NAME.
$(foreach t,$(wildcard api/fuzz/fuzz_*.c),\
  $(eval $(call fuzz_target,api/$(basename $(notdir $(t))),$(t) $(API_LIB_SRCS),$(API_LDLIBS))))
