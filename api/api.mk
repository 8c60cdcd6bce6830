# sbx-api (control plane REST server) and sbx (its CLI). The guest-agent client
# (api/agent_client*, api/agentctl.c) has its own fragment, so sources are listed.
API_LIB_SRCS := api/apilog.c api/apierr.c api/loop.c api/store.c api/validate.c \
                api/service.c api/sandbox.c api/ports.c api/snapshot.c api/retention.c \
                api/driver_proc.c api/router.c api/openapi.c api/httpd.c api/options.c \
                api/dataplane.c api/dataplane_exec.c api/dataplane_files.c \
                api/dataplane_stream.c api/dataplane_svcurl.c api/ws.c api/agent_client.c \
                router/svc_token.c
API_LDLIBS   := -lmicrohttpd -ljansson -lsqlite3 -lwslay -lcrypto -lpthread
CLI_SRCS     := api/cli/sbx.c api/cli/cli_http.c api/cli/cli_format.c api/cli/cli_ws.c \
                api/cli/cli_exec.c api/cli/cli_tunnel.c api/cli/cli_cp.c api/cli/cli_ssh.c
CLI_LDLIBS   := -lcurl -ljansson -lwslay -lcrypto
DEPS         += libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev curl \
                libwslay-dev libssl-dev

# Snapshots: building and capturing images, with libsnapfs linked in (sbx-api
# reads and writes the store STATE/store itself) and the guest agent client.
API_LIB_SRCS += api/snapshot_build.c api/snapshot_capture.c api/logtail.c \
                api/oci_ref.c api/oci_image.c api/oci_apply.c api/oci_layout.c \
                api/oci_registry.c api/startcmd.c \
                $(filter-out $(API_LIB_SRCS),api/agent_client.c) \
                $(filter-out snapfs/cli.c,$(wildcard snapfs/*.c))
API_LDLIBS   += -luring -lzstd -lcrypto -lpthread -larchive -lcurl
# Builds run tar (zstd for .tar.zst), mke2fs, e2fsck and resize2fs; the test debugfs.
# Container images: libarchive unpacks layers, libcurl pulls from registries;
# test_oci_registry runs a real registry (docker-registry) and skopeo.
DEPS         += e2fsprogs zstd liburing-dev libzstd-dev libarchive-dev docker-registry skopeo \
                busybox-static

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
# test_http_exec, _files, _tunnel run a real guest agent (build/bin/sbx-init) behind a
# stand-in VMM (api/tests/agent_vmm.py) and check with api/tests/dp_client.py (python3).
API_TESTS := test_store test_validate test_http_errors test_http_lifecycle test_http_restart \
             test_http_retention test_cli test_http_exec test_http_files test_http_tunnel \
             test_cli_dataplane test_http_ports
# test_http_snapshots: real tar, mke2fs and debugfs, and the stand-in VMM
# api/tests/snap_vmm.py (python3) with a tiny guest agent for capture.
API_TESTS += test_http_snapshots
# test_oci_registry: docker_image pulled from a real registry on loopback
# (docker-registry, image pushed by skopeo; made by api/tests/registry_image.sh).
API_TESTS += test_oci_registry
# test_oci_apply: hostile layers (made with libarchive) and image references.
API_TESTS += test_oci_apply
# test_http_image_config: a snapshot's image config (Env, WorkingDir, User) as the
# defaults of one-shot and WebSocket exec, against the real agent (dp_harness.h).
API_TESTS += test_http_image_config
# test_oci_config: the image config's run settings kept, and hostile ones refused.
API_TESTS += test_oci_config
# test_http_capture_config: the image config of a snapshot built from an image layout
# (registry_image.sh) kept across a restart and by a capture (snap_vmm.py).
API_TESTS += test_http_capture_config
# test_http_poweroff: a stop powers the guest off through its agent; a guest's own
# power-off is a stop (agent_vmm.py, sbx-agentctl).
API_TESTS += test_http_poweroff
# test_http_start_command: a snapshot's start command (the image's Entrypoint/Cmd or
# the build's start_command) run at each boot through the real agent (dp_harness.h).
API_TESTS += test_http_start_command
$(foreach t,$(API_TESTS),\
  $(eval $(call unit_test,api/$(t),api/tests/$(t).c api/tests/harness.c api/tests/dp_harness.c $(API_LIB_SRCS),$(API_LDLIBS) -lcurl)))
$(addprefix $(B)/tests/api/,$(API_TESTS)): | $(B)/bin/sbx-api $(B)/bin/sbx $(B)/bin/sbx-init \
                                             $(B)/bin/sbx-agentctl

# api/tests/test_cli_*.py -> unit test api/test_cli_*: scripts driving build/bin/sbx
# against a stand-in server of their own (python3, standard library only).
API_SCRIPT_TESTS := $(patsubst api/tests/%.py,$(B)/tests/api/%,$(wildcard api/tests/test_cli_*.py))
UNIT_TESTS += $(API_SCRIPT_TESTS)
$(API_SCRIPT_TESTS): $(B)/tests/api/%: api/tests/%.py $(B)/bin/sbx
	@mkdir -p $(@D)
	ln -sfn $(abspath $<) $@

# libFuzzer target for the request path (routing + JSON body validation).
$(eval $(call fuzz_target,api/fuzz_request,api/fuzz/fuzz_request.c $(API_LIB_SRCS),$(API_LDLIBS)))
# libFuzzer target for the data plane's parsers (exec bodies, start messages, UTF-8
# repair of output, the WebSocket accept key).
$(eval $(call fuzz_target,api/fuzz_dataplane,api/fuzz/fuzz_dataplane.c $(API_LIB_SRCS),$(API_LDLIBS)))
