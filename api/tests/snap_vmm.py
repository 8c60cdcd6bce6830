#!/usr/bin/env python3
"""Stand-in sbx-vmm for test_http_snapshots: no VM and no disk, but it writes
its arguments, one a line, to SANDBOX_DIR/vmm-args (SANDBOX_DIR: the folder of
--console) and serves the VMM's vsock bridge at --vsock-uds with a tiny guest
agent that answers HELLO, SYNC, FREEZE and THAW (include/sbx/agent_proto.h),
logging each request to SANDBOX_DIR/agent.log. FREEZE fails with EBUSY while
SANDBOX_DIR/freeze-fails exists. It exits on SIGTERM or when the test process
($SBX_TEST_PID) is gone. It never touches the overlay, so the test can write
into it with libsnapfs."""
import os
import socket
import struct
import sys
import threading
import time

HELLO, OK, ERROR, SYNC, FREEZE, THAW = 1, 2, 3, 0x44, 0x45, 0x46
T_VERSION, T_ERRNO, T_MESSAGE, T_PATH = 1, 2, 3, 20
NAMES = {HELLO: "HELLO", SYNC: "SYNC", FREEZE: "FREEZE", THAW: "THAW"}


def arg(name):
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def frame(ftype, payload=b""):
    return struct.pack("<HHII", ftype, 0, 0, len(payload)) + payload


def tlv(tag, value):
    return struct.pack("<HH", tag, len(value)) + value


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def path_of(payload):
    off = 0
    while off + 4 <= len(payload):
        tag, vlen = struct.unpack_from("<HH", payload, off)
        if tag == T_PATH:
            return payload[off + 4:off + 4 + vlen].decode()
        off += 4 + vlen
    return ""


def answer(box, ftype, payload):
    with open(os.path.join(box, "agent.log"), "a") as log:
        log.write(("%s %s" % (NAMES.get(ftype, hex(ftype)), path_of(payload))).strip() + "\n")
    if ftype == HELLO:
        return frame(HELLO, tlv(T_VERSION, struct.pack("<I", 1)))
    if ftype == FREEZE and os.path.exists(os.path.join(box, "freeze-fails")):
        return frame(ERROR, tlv(T_ERRNO, struct.pack("<I", 16)) +
                     tlv(T_MESSAGE, b"Device or resource busy"))
    if ftype in (SYNC, FREEZE, THAW):
        return frame(OK)
    return frame(ERROR, tlv(T_ERRNO, struct.pack("<I", 95)) + tlv(T_MESSAGE, b"not in the stand-in"))


def serve(conn, box):
    try:
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            b = conn.recv(1)
            if not b:
                return
            line += b
        if line.strip() != b"CONNECT 52":
            return
        conn.sendall(b"OK 52\n")
        while True:
            hdr = recv_exact(conn, 12)
            if hdr is None:
                return
            ftype, _, _, length = struct.unpack("<HHII", hdr)
            payload = recv_exact(conn, length) if length else b""
            if payload is None:
                return
            conn.sendall(answer(box, ftype, payload))
    except OSError:
        pass
    finally:
        conn.close()


def main():
    box = os.path.dirname(arg("--console") or "./x")
    with open(os.path.join(box, "vmm-args"), "w") as f:
        f.write("\n".join(sys.argv[1:]) + "\n")
    path = arg("--vsock-uds")
    try:
        os.unlink(path)
    except OSError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    srv.settimeout(0.2)
    test_pid = int(os.environ.get("SBX_TEST_PID", "0"))
    while True:
        if test_pid:
            try:
                os.kill(test_pid, 0)
            except OSError:
                return
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        threading.Thread(target=serve, args=(conn, box), daemon=True).start()


if __name__ == "__main__":
    main()
