"""Pieces shared by the test stand-ins for sbx-vmm's vsock bridge (vmm/virtio_vsock.c):
api/tests/agent_vmm.py, api/tests/snap_vmm.py and router/tests/sbx_bridge.py.

The bridge listens on a Unix socket; a client writes "CONNECT <port>\\n" and, for the
guest agent's port 52, gets "OK 52\\n" and then talks to the agent. Standard library
only. The stand-ins import it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                    "../../scripts/testlib"))"""
import os
import socket
import sys
import threading

AGENT_PORT = 52
CONNECT_LINE = "CONNECT %d" % AGENT_PORT
OK_LINE = b"OK %d\n" % AGENT_PORT


def arg(name, argv=None):
    """The value after option NAME in argv (default sys.argv[1:]), or None."""
    argv = sys.argv[1:] if argv is None else argv
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def read_line(sock, limit=64):
    """One line read byte by byte (so nothing after it is consumed), without its
    newline; None at EOF or when longer than LIMIT."""
    line = b""
    while len(line) < limit:
        b = sock.recv(1)
        if not b:
            return None
        if b == b"\n":
            return line.decode(errors="replace")
        line += b
    return None


def accept_connect(client):
    """Reads the client's CONNECT line; True (and "OK 52" sent) for the agent's port."""
    if read_line(client) != CONNECT_LINE:
        return False
    client.sendall(OK_LINE)
    return True


def open_agent(client, agent_path):
    """The connection to the agent's Unix socket AGENT_PATH for a good CONNECT line,
    with "OK 52" sent to the client; None when the line is wrong or the agent is not there."""
    if read_line(client) != CONNECT_LINE:
        return None
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        agent.connect(agent_path)
        client.sendall(OK_LINE)
    except OSError:
        agent.close()
        return None
    return agent


def pump(src, dst):
    """Copies SRC to DST until EOF, then passes the half-close on."""
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


def relay(client, agent, first=None):
    """Relays bytes both ways until both sides are done, then closes both. FIRST, when
    given, is called as first(agent, client) before the agent-to-client copy starts."""
    up = threading.Thread(target=pump, args=(client, agent), daemon=True)
    up.start()
    if first:
        first(agent, client)
    pump(agent, client)
    up.join()
    client.close()
    agent.close()


def bridge_to_agent(client, agent_path, first=None):
    """Serves one bridge client: CONNECT 52 to the agent at AGENT_PATH, then relay."""
    try:
        agent = open_agent(client, agent_path)
    except OSError:
        agent = None
    if agent is None:
        client.close()
        return
    relay(client, agent, first)


def listen(path, backlog=64):
    """A Unix stream socket listening at PATH (an old one is removed first)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(backlog)
    return srv


def process_gone(pid):
    """True when PID (non-zero) no longer exists."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def serve_forever(srv, handle, tick=None, interval=0.5):
    """Accepts on SRV and runs handle(conn) in a thread for each client. Every INTERVAL
    seconds, and before each accept, tick() is called when given: a result other than
    None ends the loop and is returned."""
    srv.settimeout(interval)
    while True:
        if tick:
            done = tick()
            if done is not None:
                return done
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
