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
usage: sbx_bridge.py [--coalesce | --hang] SOCK AGENT ; SOCK exists once it listens."""
import os, socket, sys, threading, time


def read_line(s):
    line = b""
    while len(line) < 64:
        b = s.recv(1)
        if not b:
            return None
        if b == b"\n":
            return line.decode(errors="replace")
        line += b
    return None


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        try:
            sock.shutdown(how)
        except OSError:
            pass


def open_agent(client, agent_path):
    """The agent connection for a good CONNECT line, else None."""
    if read_line(client) != "CONNECT 52":
        return None
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        agent.connect(agent_path)
        client.sendall(b"OK 52\n")
    except OSError:
        agent.close()
        return None
    return agent


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


def serve(client, agent_path, mode):
    if mode == "--hang":
        read_line(client)
        client.recv(1)  # until the router gives up
        client.close()
        return
    agent = open_agent(client, agent_path)
    if agent is None:
        client.close()
        return
    up = threading.Thread(target=pump, args=(client, agent), daemon=True)
    up.start()
    if mode == "--coalesce":
        coalesce(agent, client)
    pump(agent, client)
    up.join()
    client.close()
    agent.close()


def main():
    args = sys.argv[1:]
    mode = args[0] if args[0].startswith("--") else None
    path, agent_path = args[-2], args[-1]
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(128)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client, agent_path, mode),
                         daemon=True).start()


if __name__ == "__main__":
    main()
