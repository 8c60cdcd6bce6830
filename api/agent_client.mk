# sbx-agentctl: a small CLI on the guest agent client library (api/agent_client.c), for
# tests and debugging: `sbx-agentctl --unix PATH exec -- CMD`, put, get, tunnel, shutdown...
AGENT_CLIENT_SRCS := api/agent_client.c

BINS += $(B)/bin/sbx-agentctl
$(B)/bin/sbx-agentctl: $(call rel,api/agentctl.c $(AGENT_CLIENT_SRCS))
	@mkdir -p $(@D)
	$(CC) $^ -o $@

# The agent's unit tests (guest-init/tests/test_agent*.c, declared by guest-init/build.mk)
# drive it through this client: add it to their link.
$(foreach t,$(wildcard guest-init/tests/test_agent*.c),\
  $(eval $(B)/tests/guest-init/$(basename $(notdir $(t))): $(call san,$(AGENT_CLIENT_SRCS))))
# test_agent_ctl runs the CLI itself.
$(B)/tests/guest-init/test_agent_ctl: | $(B)/bin/sbx-agentctl
