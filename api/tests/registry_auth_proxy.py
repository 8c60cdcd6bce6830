#!/usr/bin/env python3
"""A stand-in for Docker Hub's front of test_oci_registry, in front of a real
registry (python3 standard library only).

usage: registry_auth_proxy.py [--token-login | --basic] UPSTREAM_HOST:PORT PORT_FILE

Listens on 127.0.0.1 (port written to PORT_FILE). /v2/ requests without
"Authorization: Bearer t0k3n" get 401 with a Bearer challenge whose realm is
/token here; /token hands out the token for service sbx-test and scope
repository:test/img:pull only (other repositories: 400). Blobs are redirected (307) to a "CDN" on
127.0.0.2 that refuses any Authorization header (a client must not send the
registry's token to another host). The tag "garbage" answers a manifest that
is not JSON. Everything else is passed to the upstream registry.

--token-login: /token also wants "Authorization: Basic" of the login
sbx-user / s3cret (401 otherwise), as a private repository's token service.
--basic: no tokens; /v2/ wants "Authorization: Basic" of that login itself
and challenges with 'Basic realm="sbx-test"', as a registry behind htpasswd.
"""
import base64
import http.server
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

TOKEN = "t0k3n"
SERVICE = "sbx-test"
SCOPE = "repository:test/img:pull"
LOGIN = "Basic " + base64.b64encode(b"sbx-user:s3cret").decode()
MODES = ("--token-login", "--basic")
mode = sys.argv[1] if sys.argv[1] in MODES else None
args = sys.argv[2:] if mode else sys.argv[1:]
upstream = args[0]
state = {}


def forward(handler, path):
    req = urllib.request.Request("http://%s%s" % (upstream, path))
    if handler.headers.get("Accept"):
        req.add_header("Accept", handler.headers["Accept"])
    try:
        resp = urllib.request.urlopen(req)
        status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    handler.send_response(status)
    for name in ("Content-Type", "Docker-Content-Digest"):
        if headers.get(name):
            handler.send_header(name, headers[name])
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def reply(handler, status, body=b"", headers=()):
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Front(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/token":
            if mode == "--token-login" and self.headers.get("Authorization") != LOGIN:
                return reply(self, 401, b'{"details":"login needed"}',
                             [("WWW-Authenticate", 'Basic realm="sbx-test-token"')])
            q = urllib.parse.parse_qs(url.query)
            if q.get("service") == [SERVICE] and q.get("scope") == [SCOPE]:
                return reply(self, 200, b'{"token":"%s"}' % TOKEN.encode())
            return reply(self, 400, b'{"details":"bad service or scope"}')
        if mode == "--basic" and self.headers.get("Authorization") != LOGIN:
            return reply(self, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}',
                         [("WWW-Authenticate", 'Basic realm="sbx-test"')])
        if mode != "--basic" and self.headers.get("Authorization") != "Bearer " + TOKEN:
            repo = url.path[len("/v2/"):].rsplit("/", 2)[0]
            challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="%s",' \
                        'scope="repository:%s:pull"' % (state["port"], SERVICE, repo)
            return reply(self, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                         [("WWW-Authenticate", challenge)])
        if url.path.endswith("/manifests/garbage"):
            return reply(self, 200, b"garbage{",
                         [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        if "/blobs/" in url.path:
            return reply(self, 307, headers=[
                ("Location", "http://127.0.0.2:%d/cdn%s" % (state["cdn"], url.path))])
        return forward(self, self.path)


class Cdn(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.headers.get("Authorization"):
            return reply(self, 403, b"the registry's token was sent to the CDN")
        return forward(self, self.path[len("/cdn"):])


def main():
    front = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
    cdn = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Cdn)
    state["port"] = front.server_address[1]
    state["cdn"] = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    with open(args[1] + ".tmp", "w") as f:
        f.write("%d\n" % state["port"])
    os.rename(args[1] + ".tmp", args[1])
    front.serve_forever()


if __name__ == "__main__":
    main()
