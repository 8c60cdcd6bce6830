#!/usr/bin/env python3
"""Test service standing in for HTTP servers inside sandboxes: listens on Unix sockets
DIR/<sandbox>/<port>.sock (the router's unix-dir backend) and serves a few pages:
  /                 HTML page with a stylesheet and an image (for the browser test)
  /style.css /img.svg  its sub-resources
  /headers          the request head as JSON, plus which service answered
  /sse              server-sent events: "one", a pause, "two", "three"
  /download?size=N  N bytes of a fixed pattern, chunked
  /upload (POST)    reads the body (length or chunked), answers its size and sha256
  /ws               WebSocket echo
  /garbage /truncated  a malformed response, a body cut short
  /bye              answers with Connection: close and closes
On port 7070 idle connections are dropped after 0.3 s.
usage: backend.py DIR SANDBOX:PORT... ; writes DIR/ready when listening."""
import hashlib, json, os, socket, socketserver, sys, threading, time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                "../../scripts/testlib"))
import wsproto  # noqa: E402

PATTERN = bytes(range(256)) * 256  # 64 KiB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        # Port 7070 plays a service that drops idle keep-alive connections quickly.
        if self.server.name.endswith(":7070"):
            self.timeout = 0.3
        super().setup()

    def log_message(self, fmt, *args):
        pass

    def address_string(self):
        return "unix"

    def send_body(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/":
            page = (b"<!doctype html><html><head><title>sandbox page</title>"
                    b"<link rel=stylesheet href=/style.css></head><body>"
                    b"<h1 id=t>hello from " + self.server.name.encode() + b"</h1>"
                    b"<img src=/img.svg width=200 height=100></body></html>")
            self.send_body(200, "text/html", page)
        elif url.path == "/style.css":
            self.server.hits.append("css")
            self.send_body(200, "text/css", b"body{background:#3a6} h1{color:#fff}")
        elif url.path == "/img.svg":
            self.server.hits.append("img")
            self.send_body(200, "image/svg+xml",
                           b"<svg xmlns='http://www.w3.org/2000/svg' width='200' height='100'>"
                           b"<rect width='200' height='100' fill='#c33'/></svg>")
        elif url.path == "/hits":
            self.send_body(200, "text/plain", " ".join(self.server.hits).encode())
        elif url.path == "/headers":
            body = json.dumps({"service": self.server.name, "path": self.path,
                               "headers": [[k, v] for k, v in self.headers.items()]})
            self.send_body(200, "application/json", body.encode())
        elif url.path == "/sse":
            self.sse()
        elif url.path == "/download":
            self.download(int(parse_qs(url.query).get("size", ["0"])[0]))
        elif url.path == "/ws":
            self.websocket()
        elif url.path == "/bye":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"bye\n")
        elif url.path == "/garbage":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 twohundred OK\r\nX: y\r\n\r\n")
        elif url.path == "/truncated":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        else:
            self.send_body(404, "text/plain", b"no such page\n")

    def do_POST(self):
        h = hashlib.sha256()
        size = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                left = n
                while left:
                    b = self.rfile.read(min(left, 65536))
                    h.update(b)
                    left -= len(b)
                size += n
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                b = self.rfile.read(min(left, 65536))
                if not b:
                    break
                h.update(b)
                size += len(b)
                left -= len(b)
        self.send_body(200, "application/json",
                       json.dumps({"size": size, "sha256": h.hexdigest()}).encode())

    def sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, word in enumerate(["one", "two", "three"]):
            if i == 1:
                time.sleep(3)
            ev = ("data: %s\n\n" % word).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def download(self, size):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        left = size
        while left:
            b = PATTERN[:min(left, len(PATTERN))]
            self.wfile.write(b"%x\r\n" % len(b) + b + b"\r\n")
            left -= len(b)
        self.wfile.write(b"0\r\n\r\n")

    def websocket(self):
        self.close_connection = True
        wsproto.send_upgrade(self)
        while True:
            try:
                _, op, _, data = wsproto.decode(self.rfile.read)
            except EOFError:
                return
            if op == 8:
                self.wfile.write(wsproto.encode(8, b""))
                self.wfile.flush()
                return
            self.wfile.write(wsproto.encode(op, data))
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    top = sys.argv[1]
    for spec in sys.argv[2:]:
        box, port = spec.split(":")
        os.makedirs(os.path.join(top, box), exist_ok=True)
        path = os.path.join(top, box, port + ".sock")
        if os.path.exists(path):
            os.unlink(path)
        srv = Server(path, Handler)
        srv.name = spec
        srv.hits = []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    with open(os.path.join(top, "ready"), "w") as f:
        f.write("ready\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
