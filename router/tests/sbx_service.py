#!/usr/bin/env python3
"""The HTTP test service of backend.py (same pages: /headers, /ws echo, /download,
/upload...) on loopback TCP, where the guest agent's tunnels reach it in the sbx backend
test, plus a server that speaks first: on accept it writes a whole HTTP response (with
Connection: close) before reading anything, so its bytes may ride in the same read as
the agent's tunnel OK.
usage: sbx_service.py FILE NAME ; writes "HTTP_PORT BANNER_PORT" to FILE when listening."""
import os, socket, socketserver, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backend  # noqa: E402

BANNER = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nspoken first\n"


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def banner_loop(srv):
    while True:
        conn, _ = srv.accept()
        try:
            conn.sendall(BANNER)
            conn.settimeout(2)
            conn.recv(65536)  # the request, read so that closing does not reset
        except OSError:
            pass
        time.sleep(0.05)
        conn.close()


def main():
    out, name = sys.argv[1], sys.argv[2]
    srv = Server(("127.0.0.1", 0), backend.Handler)
    srv.name = name
    srv.hits = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ban = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=banner_loop, args=(ban,), daemon=True).start()
    with open(out + ".tmp", "w") as f:
        f.write("%d %d\n" % (srv.server_address[1], ban.getsockname()[1]))
    os.rename(out + ".tmp", out)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
