#!/usr/bin/env python3
"""Stand-in sbx-vmm for test_http_snapshots: no VM and no disk, but it writes
its arguments, one a line, to SANDBOX_DIR/vmm-args (SANDBOX_DIR: the folder of
--console) and serves the VMM's vsock bridge at --vsock-uds with a tiny guest
agent that answers HELLO, SYNC, FREEZE and THAW (include/sbx/agent_proto.h),
logging each request to SANDBOX_DIR/agent.log. FREEZE fails with EBUSY while
SANDBOX_DIR/freeze-fails exists. It exits on SIGTERM or when the test process
($SBX_TEST_PID) is gone. It never touches the overlay, so the test can write
into it with libsnapfs. The bridge pieces are scripts/testlib/vmm_standin.py."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                "../../scripts/testlib"))
import vmm_standin  # noqa: E402

HELLO, OK, ERROR, SYNC, FREEZE, THAW = 1, 2, 3, 0x44, 0x45, 0x46
T_VERSION, T_ERRNO, T_MESSAGE, T_PATH = 1, 2, 3, 20
NAMES = {HELLO: "HELLO", SYNC: "SYNC", FREEZE: "FREEZE", THAW: "THAW"}


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
        if not vmm_standin.accept_connect(conn):
            return
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
    box = os.path.dirname(vmm_standin.arg("--console") or "./x")
    with open(os.path.join(box, "vmm-args"), "w") as f:
        f.write("\n".join(sys.argv[1:]) + "\n")
    srv = vmm_standin.listen(vmm_standin.arg("--vsock-uds"), 16)
    test_pid = int(os.environ.get("SBX_TEST_PID", "0"))
    vmm_standin.serve_forever(srv, lambda conn: serve(conn, box),
                              lambda: True if vmm_standin.process_gone(test_pid) else None, 0.2)


if __name__ == "__main__":
    main()
