#!/usr/bin/env python3
"""Stand-in sbx-vmm for the data-plane tests: no VM, but a real guest agent.

sbx-api starts it like sbx-vmm. It runs `sbx-init --agent-unix SOCK` (path in
$SBX_TEST_INIT) as an ordinary process and serves the VMM's vsock bridge at the
--vsock-uds path: a client writes "CONNECT 52\\n", gets "OK 52\\n", and its
bytes are relayed to the agent's Unix socket. It exits on SIGTERM or when the
test process ($SBX_TEST_PID) is gone; with status 0, as sbx-vmm does when its
guest powers off, once the agent has served a SHUTDOWN and exited 0. The bridge itself is
scripts/testlib/vmm_standin.py."""
import ctypes
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                "../../scripts/testlib"))
import vmm_standin  # noqa: E402


def main():
    uds = vmm_standin.arg("--vsock-uds")
    init = os.environ.get("SBX_TEST_INIT")
    test_pid = int(os.environ.get("SBX_TEST_PID", "0"))
    if not uds or not init:
        print("agent_vmm: need --vsock-uds and $SBX_TEST_INIT", file=sys.stderr)
        return 3
    agent_path = uds + ".agent"
    try:
        os.unlink(agent_path)
    except FileNotFoundError:
        pass
    # The agent dies with us, also when the harness SIGKILLs us.
    libc = ctypes.CDLL(None, use_errno=True)
    agent = subprocess.Popen([init, "--agent-unix", agent_path],
                             preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))  # PR_SET_PDEATHSIG

    def stop(*why):
        print("agent_vmm: stopping (%s)" % (why[0] if why else "the test is gone"),
              file=sys.stderr)
        agent.kill()
        os._exit(0)

    def tick():
        if vmm_standin.process_gone(test_pid):
            stop()
        if agent.poll() == 0:
            print("agent_vmm: the guest powered off", file=sys.stderr)
            return 0
        if agent.poll() is not None:
            print("agent_vmm: the agent exited with %d" % agent.returncode, file=sys.stderr)
            return 4
        return None

    signal.signal(signal.SIGTERM, stop)
    for _ in range(100):
        if os.path.exists(agent_path):
            break
        time.sleep(0.02)
    srv = vmm_standin.listen(uds)
    return vmm_standin.serve_forever(
        srv, lambda conn: vmm_standin.bridge_to_agent(conn, agent_path), tick)


if __name__ == "__main__":
    sys.exit(main())
