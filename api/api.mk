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

BINS += $(B)/bin/sbx-api $(B)/bin/sbx
$(B)/bin/sbx-api: $(call rel,$(API_LIB_SRCS) api/main.c)
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(API_LDLIBS)
$(B)/bin/sbx: $(call rel,$(CLI_SRCS))
	@mkdir -p $(@D)
	$(CC) $^ -o $@ $(CLI_LDLIBS)

# api/tests/test_NAME.c -> unit test api/test_NAME, linked with the server library.
# The tests that drive real processes run build/bin/sbx-api and build/bin/sbx.
API_TESTS := test_store test_validate test_http_errors test_http_lifecycle test_http_restart \
             test_http_retention test_cli
$(foreach t,$(API_TESTS),\
  $(eval $(call unit_test,api/$(t),api/tests/$(t).c api/tests/harness.c $(API_LIB_SRCS),$(API_LDLIBS) -lcurl)))
$(addprefix $(B)/tests/api/,$(API_TESTS)): | $(B)/bin/sbx-api $(B)/bin/sbx

# libFuzzer target for the request path (routing + JSON body validation).
$(eval $(call fuzz_target,api/fuzz_request,api/fuzz/fuzz_request.c $(API_LIB_SRCS),$(API_LDLIBS)))
