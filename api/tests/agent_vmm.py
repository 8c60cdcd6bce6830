#!/usr/bin/env python3
"""Stand-in sbx-vmm for the data-plane tests: no VM, but a real guest agent.

sbx-api starts it like sbx-vmm. It runs `sbx-init --agent-unix SOCK` (path in
$SBX_TEST_INIT) as an ordinary process and serves the VMM's vsock bridge at the
--vsock-uds path: a client writes "CONNECT 52\\n", gets "OK 52\\n", and its
bytes are relayed to the agent's Unix socket. It exits on SIGTERM or when the
test process ($SBX_TEST_PID) is gone."""
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def arg(name):
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def relay(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(conn, agent_path):
    try:
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            b = conn.recv(1)
            if not b:
                conn.close()
                return
            line += b
        if line.strip() != b"CONNECT 52":
            conn.close()
            return
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(agent_path)
        conn.sendall(b"OK 52\n")
    except OSError:
        conn.close()
        return
    t = threading.Thread(target=relay, args=(up, conn), daemon=True)
    t.start()
    relay(conn, up)
    t.join()
    conn.close()
    up.close()


def main():
    uds = arg("--vsock-uds")
    init = os.environ.get("SBX_TEST_INIT")
    test_pid = int(os.environ.get("SBX_TEST_PID", "0"))
    if not uds or not init:
        print("agent_vmm: need --vsock-uds and $SBX_TEST_INIT", file=sys.stderr)
        return 3
    agent_path = uds + ".agent"
    for p in (uds, agent_path):
        try:
            os.unlink(p)
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

    signal.signal(signal.SIGTERM, stop)
    for _ in range(100):
        if os.path.exists(agent_path):
            break
        time.sleep(0.02)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(uds)
    srv.listen(64)
    srv.settimeout(0.5)
    while True:
        if test_pid and not os.path.exists("/proc/%d" % test_pid):
            stop()
        if agent.poll() is not None:
            print("agent_vmm: the agent exited", file=sys.stderr)
            return 4
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        threading.Thread(target=serve, args=(conn, agent_path), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
