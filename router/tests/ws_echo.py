#!/usr/bin/env python3
"""A WebSocket client through sbx-router for the router's script tests: GET /ws on
Host HOST with the extra header line HEADER (the service token, as a header or a
cookie), three text messages that the service must echo, then a close that must come
back, followed by the end of the connection. Prints "echo=BOOL eof=BOOL".
usage: ws_echo.py PORT HOST HEADER"""
import base64, os, socket, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                "../../scripts/testlib"))
import wsproto  # noqa: E402

port, host, header = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "%s\r\n\r\n" % (host, key, header)).encode())
f = s.makefile("rb")
status = f.readline()
while f.readline() not in (b"\r\n", b""):
    pass


def send(op, payload):
    s.sendall(wsproto.encode(op, payload, masked=True))


def recv():
    _, op, _, data = wsproto.decode(f.read)
    return op, data


ok = status.startswith(b"HTTP/1.1 101")
for msg in [b"hello", b"x" * 5000, "h\xe9llo".encode()]:
    send(1, msg)
    op, got = recv()
    ok = ok and op == 1 and got == msg
send(8, b"")
op, _ = recv()
ok = ok and op == 8
print("echo=%s eof=%s" % (ok, f.read(1) == b""))
