#!/usr/bin/env python3
"""Stand-in for the VMM's vsock bridge (vmm/virtio_vsock.c), for router tests without a VM:
listens on the Unix socket SOCK (a sandbox's vsock.sock), reads each client's
"CONNECT <port>\\n" byte by byte, and for port 52 connects to the guest agent's Unix
socket AGENT (sbx-init --agent-unix AGENT), answers "OK 52\\n" and then relays bytes both
ways, passing half-closes on. Any other port, or an agent that is not there, gets the
connection closed, as the VMM does when the guest refuses.
With --hang, it reads the CONNECT line and then never answers (a guest that is not up).
With --coalesce, what the agent sends in its first 0.2 s goes to the client in one write,
so the tunnel's OK and the service's first bytes reach the router's backend together.
usage: sbx_bridge.py [--coalesce | --hang] SOCK AGENT ; SOCK exists once it listens.
The bridge itself is scripts/testlib/vmm_standin.py."""
import os, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                "../../scripts/testlib"))
import vmm_standin  # noqa: E402


def coalesce(agent, client):
    """Sends the agent's first 0.2 s of bytes in one piece."""
    end, data = time.time() + 0.2, b""
    while time.time() < end:
        agent.settimeout(max(end - time.time(), 0.001))
        try:
            got = agent.recv(65536)
        except socket.timeout:
            break
        if not got:
            break
        data += got
    agent.settimeout(None)
    client.sendall(data)


def hang(client):
    vmm_standin.read_line(client)
    client.recv(1)  # until the router gives up
    client.close()


def main():
    args = sys.argv[1:]
    mode = args[0] if args[0].startswith("--") else None
    path, agent_path = args[-2], args[-1]
    first = coalesce if mode == "--coalesce" else None
    if mode == "--hang":
        handle = hang
    else:
        handle = lambda client: vmm_standin.bridge_to_agent(client, agent_path, first)  # noqa: E731
    vmm_standin.serve_forever(vmm_standin.listen(path, 128), handle)


if __name__ == "__main__":
    main()
