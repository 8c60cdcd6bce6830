#!/usr/bin/env python3
"""sbx's data-plane commands (exec, console, tunnel, cp, ssh-setup, service-url,
snapshot build/capture/wait, wait) against a stand-in sbx-api written here with
the standard library: it speaks api/DATAPLANE.md's routes, checks that client
frames are masked, and runs the "sandbox" commands as host processes (pipes or a
PTY), tunnels to host ports, and keeps files under a temp folder.
Run as build/tests/api/test_cli_stream (a link to this file): build/bin/sbx is
found from that path. Exit 0 pass, 1 fail.

With --real URL KEY SANDBOX WORKDIR (test_cli_dataplane: the real sbx-api and a
real guest agent running as a host process) the checks that need no stand-in
behaviour run against that server instead: the "sandbox" is then the host, so
files go under WORKDIR."""
import fcntl
import hashlib
import http.server
import json
import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                "../../scripts/testlib"))
import tcp_echo  # noqa: E402
import wsproto  # noqa: E402

KEY = "stream-test-key"
TMP = tempfile.mkdtemp(prefix="sbx-cli-stream-")
FS = os.path.join(TMP, "fs")            # the stand-in sandbox's "/"
REMOTE = "/"                            # a folder of ours inside the sandbox
REAL = False                            # --real: against the real sbx-api
STATE = {"oneshot": [], "starts": [], "polls": 0}


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- server side of RFC 6455 ----

class WS:
    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def frame(self):
        fin, op, masked, data = wsproto.decode(self._read)
        if not masked:
            raise ValueError("unmasked client frame")      # RFC 6455 5.1
        return fin, op, data

    def recv(self):
        """(opcode, data) of the next text/binary/close message."""
        op, msg = None, b""
        while True:
            fin, o, data = self.frame()
            if o == 9:
                self.send(10, data)
                continue
            if o == 10:
                continue
            if o == 8:
                return 8, data
            if o != 0:
                op = o
            msg += data
            if fin:
                return op, msg

    def send(self, op, data):
        with self.lock:
            self.sock.sendall(wsproto.encode(op, data))

    def text(self, obj):
        self.send(1, json.dumps(obj).encode())

    def close(self, code, reason=""):
        try:
            self.send(8, struct.pack("!H", code) + reason.encode())
        except OSError:
            pass


def exec_session(ws):
    op, data = ws.recv()
    msg = json.loads(data)
    STATE["starts"].append(msg)
    if msg.get("type") != "start":
        ws.text({"type": "error", "error": {"type": "validation", "message": "bad first"}})
        ws.close(1008)
        return
    env = dict(os.environ, **msg.get("env", {}))
    cmd = msg["command"]
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    master = None
    try:
        if msg.get("pty"):
            master, slave = pty.openpty()
            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", msg.get("rows", 24), msg.get("cols", 80), 0, 0))

            def ctty():
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                                    cwd=msg.get("cwd"), preexec_fn=ctty)
            os.close(slave)
            outs = [(master, 1)]
        else:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd=msg.get("cwd"),
                                    start_new_session=True)
            outs = [(proc.stdout.fileno(), 1), (proc.stderr.fileno(), 2)]
    except OSError as e:
        ws.text({"type": "error", "error": {"type": "not_found", "message": str(e)}})
        ws.close(1011)
        return
    ws.text({"type": "started", "command_id": 7})

    def pump(fd, stream):
        while True:
            try:
                d = os.read(fd, 65536)
            except OSError:
                d = b""
            if not d:
                return
            ws.send(2, bytes([stream]) + d)

    readers = [threading.Thread(target=pump, args=o) for o in outs]
    for t in readers:
        t.start()

    def waiter():
        rc = proc.wait()
        for t in readers:
            t.join()
        sig = -rc if rc < 0 else 0
        ws.text({"type": "exit", "exit_code": -1 if sig else rc, "signal": sig,
                 "timed_out": False})
        ws.close(1000)
    w = threading.Thread(target=waiter)
    w.start()
    infd = master if master is not None else proc.stdin.fileno()
    while w.is_alive():
        try:
            op, data = ws.recv()
        except (EOFError, OSError):
            op = 8
        if op == 8:
            if msg.get("kill_on_disconnect") and proc.poll() is None:
                proc.kill()
            break
        if op == 2 and data[:1] == b"\0":
            try:
                os.write(infd, data[1:])
            except OSError:
                pass
            continue
        m = json.loads(data)
        STATE["starts"].append(m)
        if m["type"] == "stdin_eof" and master is None:
            proc.stdin.close()
        elif m["type"] == "signal":
            proc.send_signal(m["signal"])
        elif m["type"] == "kill":
            os.killpg(proc.pid, signal.SIGKILL)
        elif m["type"] == "resize" and master is not None:
            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", m["rows"], m["cols"], 0, 0))
            os.killpg(proc.pid, signal.SIGWINCH)
    w.join()


def tunnel_session(ws, port):
    port = STATE.get("port_map", {}).get(port, port)
    try:
        s = socket.create_connection(("127.0.0.1", port))
    except OSError:
        ws.close(1011, "nothing listening on port %d" % port)
        return

    def back():
        # A reset (the fake sshd closes with the client's KEXINIT unread) ends the
        # tunnel like an EOF; left unhandled it would leave the client waiting.
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if not d:
                ws.close(1000)
                return
            ws.send(2, d)
    t = threading.Thread(target=back, daemon=True)
    t.start()
    while True:
        try:
            op, data = ws.recv()
        except (EOFError, OSError):
            break
        if op == 8:
            ws.close(1000)
            break
        s.sendall(data)
    s.close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, typ, msg):
        self.answer(status, {"error": {"type": typ, "message": msg}})

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                out += self.rfile.read(n)
                self.rfile.readline()
                if n == 0:
                    return out
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def route(self):
        if self.headers.get("X-Api-Key") != KEY:
            return self.error(401, "unauthorized", "bad key")
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        parts = u.path.split("/")[1:]
        if parts[:2] == ["v1", "snapshots"]:
            return self.snapshots(parts[2:])
        if parts[:2] != ["v1", "sandboxes"] or len(parts) < 3:
            return self.error(404, "not_found", "no route")
        name, rest = parts[2], "/".join(parts[3:])
        if name == "nope":
            return self.error(404, "not_found", "sandbox 'nope' not found")
        if name == "stopped":
            return self.error(409, "conflict", "sandbox stopped is stopped")
        if rest == "" and self.command == "GET":
            return self.answer(200, {"name": name, "status": "running"})
        if rest in ("exec/ws", "tunnel"):
            return self.upgrade(rest, q)
        if rest == "exec" and self.command == "POST":
            return self.oneshot(json.loads(self.body()))
        if rest == "files":
            return self.files(q)
        if rest == "service-url":
            b = json.loads(self.body())
            return self.answer(200, {"url": "http://%s--%d.localhost:8081/" % (name, b["port"]),
                                     "expires_in": b.get("expires_in_seconds")})
        return self.error(404, "not_found", "no route " + rest)

    def upgrade(self, what, q):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            return self.error(400, "validation", "not an upgrade")
        wsproto.send_upgrade(self)
        ws = WS(self.connection)
        try:
            if what == "tunnel":
                tunnel_session(ws, int(q["port"]))
            else:
                exec_session(ws)
        except (EOFError, OSError, ValueError) as e:
            STATE.setdefault("ws_errors", []).append(str(e))
        self.close_connection = True

    def oneshot(self, b):
        STATE["oneshot"].append(b)
        script = b["command"][-1]
        out, rc = "", 0
        if "ssh_host_" in script:
            out = "ssh-ed25519 AAAAC3NzaHOSTKEY root@box\necdsa-sha2-nistp256 AAAAE2ECDSA root@box\n"
        elif "sshd" in script:
            rc = 0
        self.answer(200, {"command_id": 1, "exit_code": rc, "signal": 0, "timed_out": False,
                          "stdout": out, "stderr": "", "stdout_truncated": False,
                          "stderr_truncated": False})

    def files(self, q):
        p = q.get("path", "")
        if not p.startswith("/"):
            return self.error(400, "validation", "path must be absolute")
        local = os.path.join(FS, p.lstrip("/"))
        if self.command == "PUT":
            data = self.body()
            if not os.path.isdir(os.path.dirname(local)):
                return self.error(404, "not_found", "no folder for " + p)
            with open(local, "wb") as f:
                f.write(data)
            if "mode" in q:
                os.chmod(local, int(q["mode"], 8))
            return self.answer(200, {"path": p, "size": len(data)})
        if not os.path.exists(local):
            return self.error(404, "not_found", "no file " + p)
        size = os.path.getsize(local)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(local, "rb") as f:
            while True:
                d = f.read(65536)
                if not d:
                    break
                self.wfile.write(d)

    def snapshots(self, rest):
        if self.command == "POST":
            b = json.loads(self.body())
            STATE["snap_body"] = b
            status = "ready" if rest == ["capture"] else "building"
            return self.answer(201, {"id": "snap-1", "name": b["name"], "status": status})
        STATE["polls"] += 1
        st = "ready" if STATE["polls"] >= 3 else "building"
        return self.answer(200, {"id": "snap-1", "name": "py", "status": st})

    do_GET = do_PUT = do_POST = do_DELETE = route


# ---- the client under test ----

SBX = os.environ.get("SBX_CLI") or os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(sys.argv[0])))), "bin", "sbx")


def env(**extra):
    e = dict(os.environ, SBX_API_URL=URL, SBX_API_KEY=KEY, HOME=os.path.join(TMP, "home"))
    e.update(extra)
    return {k: v for k, v in e.items() if v is not None}


def sbx(*args, stdin=b"", **kw):
    p = subprocess.run([SBX, *args], input=stdin, capture_output=True, env=env(**kw),
                       timeout=60)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_exec():
    rc, out, err = sbx("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    check((rc, out, err) == (3, b"out\n", "err\n"), "exec streams: %r" % ((rc, out, err),))
    rc, out, err = sbx("exec", "box", "--env", "A=b c", "--cwd", "/tmp", "--", "sh", "-c",
                       'echo "$A"; pwd')
    check(rc == 0 and out == b"b c\n/tmp\n", "exec --env --cwd: %r %r" % (out, err))
    data = os.urandom(5 << 20)
    rc, out, err = sbx("exec", "box", "--", "sha256sum", stdin=data)
    check(rc == 0 and out.split()[0].decode() == hashlib.sha256(data).hexdigest(),
          "exec stdin 5 MiB: %r" % err)
    rc, out, err = sbx("exec", "box", "--", "head", "-c", "20000000", "/dev/urandom")
    check(rc == 0 and len(out) == 20000000, "exec 20 MB out: %d %r" % (len(out), err))
    p = subprocess.run(["sh", "-c", SBX + " exec box -- yes | head -n 2"], capture_output=True,
                       env=env(), timeout=30)
    check(p.stdout == b"y\ny\n", "exec into a closed pipe ends: %r" % (p,))
    rc, out, err = sbx("exec", "box", "--", "sh", "-c", "kill -9 $$")
    check(rc == 137, "exec killed -> 128+9, got %d" % rc)
    rc, out, err = sbx("exec", "nope", "--", "true")
    check(rc == 1 and "not_found: sandbox 'nope' not found" in err, "exec nope: %r" % err)
    if not REAL:
        rc, out, err = sbx("exec", "stopped", "--", "true")
        check(rc == 1 and "conflict" in err, "exec stopped: %r" % err)
        rc, out, err = sbx("exec", "box", "--", "/nonexistent/cmd")
        check(rc == 1 and "not_found" in err, "exec error frame: %r" % err)
    rc, out, err = sbx("exec", "box")
    check(rc == 2, "exec without a command is a usage error")
    rc, out, err = sbx("exec", "box", "--tty", "--", "sh", "-c", "test -t 0 && echo tty; stty size")
    check(rc == 0 and b"tty" in out and b"24 80" in out, "exec --tty: %r %r" % (out, err))
    if not REAL:
        start = [m for m in STATE["starts"] if m.get("type") == "start"][-1]
        check(start["pty"] is True and start["rows"] == 24, "start message: %r" % start)
    rc, out, err = sbx("--api-url", "https://127.0.0.1:1", "exec", "box", "--", "true")
    check(rc == 1 and "http://" in err, "https refused clearly: %r" % err)
    # a signal to sbx goes to the command
    p = subprocess.Popen([SBX, "exec", "box", "--", "sh", "-c",
                          "trap 'echo got-term; exit 5' TERM; echo ready; "
                          "while :; do sleep 0.1; done"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env())
    check(p.stdout.readline() == b"ready\n", "signal test start")
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20)
    check(p.returncode == 5 and b"got-term" in out, "SIGTERM forwarded: %d %r" % (p.returncode, out))
    # Ctrl+C is forwarded; a command that ignores it is killed at the third
    p = subprocess.Popen([SBX, "exec", "box", "--", "sh", "-c",
                          "trap '' INT; echo ready; sleep 30"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env())
    check(p.stdout.readline() == b"ready\n", "interrupt test start")
    for _ in range(3):
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
    p.communicate(timeout=20)
    check(p.returncode == 137, "third Ctrl+C kills: %d" % p.returncode)
    if not REAL:
        start = [m for m in STATE["starts"] if m.get("type") == "start"][-1]
        check(start.get("timeout_seconds") == 0, "exec asks for no time limit: %r" % start)


def read_until(fd, want, timeout=15):
    buf, end = b"", time.time() + timeout
    while want not in buf:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            fail("console: no %r in %r" % (want, buf))
        try:
            d = os.read(fd, 4096)
        except OSError:
            d = b""
        if not d:
            fail("console: EOF before %r in %r" % (want, buf))
        buf += d
    return buf


def test_console():
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(env())
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execv("/bin/sh", ["sh", "-c", SBX + " console box --shell /bin/sh; echo rc=$?; stty -a; echo DONE"])
    time.sleep(1.0)
    os.write(fd, b"stty size; echo AB''CD\r")
    out = read_until(fd, b"ABCD")
    check(b"30 100" in out, "console: the terminal's size at start: %r" % out)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    time.sleep(0.5)
    os.write(fd, b"stty size; echo EF''GH\r")
    out = read_until(fd, b"EFGH")
    check(b"40 120" in out, "console: resized: %r" % out)
    os.write(fd, b"exit 4\r")
    out = read_until(fd, b"DONE")
    check(b"rc=4" in out, "console exits with the shell's status: %r" % out)
    check(b"-icanon" not in out and b"icanon" in out and b"-echo " not in out,
          "console restores the terminal: %r" % out)
    os.waitpid(pid, 0)
    if REAL:
        return
    start = [m for m in STATE["starts"] if m.get("type") == "start"][-1]
    check(start["pty"] and start["kill_on_disconnect"] and start["command"][0] == "/bin/sh"
          and start["rows"] == 30 and start["cols"] == 100, "console start: %r" % start)
    check(any(m.get("type") == "resize" and m["rows"] == 40 for m in STATE["starts"]),
          "console sent resize")


def roundtrip(sock_send, sock_recv, data):
    got = bytearray()

    def reader():
        while len(got) < len(data):
            d = sock_recv(65536)
            if not d:
                return
            got.extend(d)
    t = threading.Thread(target=reader)
    t.start()
    sock_send(data)
    t.join(30)
    return bytes(got)


def test_tunnel():
    port = tcp_echo.start()
    p = subprocess.Popen([SBX, "tunnel", "box", "--remote-port", str(port), "--local-port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    info = json.loads(p.stdout.readline())
    check(info["remote_port"] == port and info["local_port"] > 0, "tunnel announce %r" % info)
    socks = [socket.create_connection(("127.0.0.1", info["local_port"])) for _ in range(3)]
    for i, s in enumerate(socks):
        data = os.urandom(1 << 20) + bytes([i])
        check(roundtrip(s.sendall, s.recv, data) == data, "tunnel connection %d echoes" % i)
    for s in socks:
        s.close()
    p.terminate()
    p.wait(10)
    # --stdio, as ssh's ProxyCommand
    p = subprocess.Popen([SBX, "tunnel", "box", "--remote-port", str(port), "--stdio"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env())
    data = os.urandom(3 << 20)
    got = roundtrip(lambda d: (p.stdin.write(d), p.stdin.flush()), p.stdout.read1, data)
    check(got == data, "tunnel --stdio echoes (%d of %d)" % (len(got), len(data)))
    p.stdin.close()
    check(p.wait(10) == 0, "tunnel --stdio exits 0 at EOF: %r" % p.stderr.read())
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead = free.getsockname()[1]
    free.close()
    rc, out, err = sbx("tunnel", "box", "--remote-port", str(dead), "--stdio")
    check(rc == 1 and "nothing listening on port %d" % dead in err, "refused port: %r" % err)
    rc, out, err = sbx("tunnel", "nope", "--remote-port", "22", "--local-port", "0")
    check(rc == 1 and "not_found" in err, "tunnel to a missing sandbox: %r" % err)
    rc, out, err = sbx("tunnel", "box", "--remote-port", "22", "--local-port", "1", "--stdio")
    check(rc == 2, "tunnel --stdio with --local-port is usage")


def rpath(p):
    """A path inside the sandbox (p relative to our folder there)."""
    return REMOTE + p


def lpath(p):
    """Where the stand-in (or, with --real, the host) keeps rpath(p)."""
    return os.path.join(FS, rpath(p).lstrip("/"))


def test_cp():
    os.makedirs(lpath("data"))
    local = os.path.join(TMP, "blob")
    data = os.urandom((7 << 20) + 3)
    with open(local, "wb") as f:
        f.write(data)
    os.chmod(local, 0o750)
    rc, out, err = sbx("cp", local, "box:" + rpath("data/"))
    check(rc == 0 and json.loads(out)["size"] == len(data), "cp up: %r %r" % (out, err))
    with open(lpath("data/blob"), "rb") as f:
        check(f.read() == data, "cp up content")
    check(os.stat(lpath("data/blob")).st_mode & 0o777 == 0o750, "cp up mode")
    rc, out, err = sbx("cp", "-", "box:" + rpath("data/piped"), stdin=data[:1000000])
    with open(lpath("data/piped"), "rb") as f:
        check(rc == 0 and f.read() == data[:1000000], "cp - (chunked) up: %r" % err)
    down = os.path.join(TMP, "down")
    os.makedirs(down)
    rc, out, err = sbx("cp", "box:" + rpath("data/blob"), down)
    with open(os.path.join(down, "blob"), "rb") as f:
        check(rc == 0 and f.read() == data, "cp down into a folder: %r" % err)
    rc, out, err = sbx("cp", "box:" + rpath("data/piped"), "-")
    check(rc == 0 and out == data[:1000000], "cp down to stdout")
    rc, out, err = sbx("cp", "box:" + rpath("data/missing"), os.path.join(down, "m"))
    check(rc == 1 and "not_found" in err and not os.path.exists(os.path.join(down, "m")),
          "cp missing: %r" % err)
    check([n for n in os.listdir(down) if n.startswith(".sbx")] == [], "no temp left")
    rc, out, err = sbx("cp", local, "box:" + rpath("nofolder/x"))
    check(rc == 1 and "not_found" in err, "cp into a missing folder: %r" % err)
    rc, out, err = sbx("cp", local, os.path.join(TMP, "x"))
    check(rc == 2, "cp needs one remote side")


def ssh_through_proxy(sshd):
    """ssh itself reads the block and runs the ProxyCommand (the key from the file
    ssh-setup wrote): a fake server behind "port 22" sends its banner through."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    STATE["port_map"] = {22: ls.getsockname()[1]}

    def banner():
        c, _ = ls.accept()
        c.sendall(b"SSH-2.0-sbxfake\r\n")
        STATE["ssh_client_banner"] = c.recv(256)
        c.close()
    t = threading.Thread(target=banner, daemon=True)
    t.start()
    p = subprocess.run(["ssh", "-v", "-F", os.path.join(sshd, "config"), "-o", "BatchMode=yes",
                        "sandbox-box", "true"], capture_output=True, timeout=30,
                       env=env(SBX_API_KEY=None, SBX_API_URL=None))
    t.join(10)
    ssh_err = p.stderr.decode(errors="replace")
    check("remote software version sbxfake" in ssh_err and
          STATE.get("ssh_client_banner", b"").startswith(b"SSH-2.0-"),
          "ssh through the ProxyCommand: %s" % ssh_err[-2000:])
    ls.close()


def test_ssh_setup():
    home = os.path.join(TMP, "home")
    sshd = os.path.join(TMP, "sshdir")
    os.makedirs(sshd)
    ident = os.path.join(TMP, "id_test.pub")
    with open(ident, "w") as f:
        f.write("ssh-ed25519 AAAAC3NzaUSERKEY me@host\n")
    with open(os.path.join(sshd, "config"), "w") as f:
        f.write("Host other\n    User bob\n\nHost sandbox-box\n    User old\n\nHost zed\n"
                "    Port 2222\n")
    with open(os.path.join(sshd, "known_hosts_sandboxes"), "w") as f:
        f.write("sandbox-other ssh-ed25519 AAAAOTHER\nsandbox-box ssh-rsa STALE\n")
    for _ in range(2):      # idempotent
        rc, out, err = sbx("ssh-setup", "box", "--identity", ident, "--ssh-dir", sshd)
        check(rc == 0 and json.loads(out)["host_keys"] == 2, "ssh-setup: %r %r" % (out, err))
    cfg = open(os.path.join(sshd, "config")).read()
    check(cfg.count("Host sandbox-box") == 1 and "User old" not in cfg and "Host other" in cfg
          and "Port 2222" in cfg, "config block replaced: %s" % cfg)
    check("    ProxyCommand %s --api-url %s tunnel box --remote-port 22 --stdio\n"
          % (SBX, URL) in cfg, "ProxyCommand: %s" % cfg)
    check("    UserKnownHostsFile %s/known_hosts_sandboxes\n" % sshd in cfg and
          "    StrictHostKeyChecking yes\n" in cfg and "    User root\n" in cfg, cfg)
    kh = open(os.path.join(sshd, "known_hosts_sandboxes")).read()
    check(kh == "sandbox-other ssh-ed25519 AAAAOTHER\nsandbox-box ssh-ed25519 AAAAC3NzaHOSTKEY\n"
          "sandbox-box ecdsa-sha2-nistp256 AAAAE2ECDSA\n", "known_hosts: %r" % kh)
    calls = STATE["oneshot"]
    check(calls[0]["stdin"] == "ssh-ed25519 AAAAC3NzaUSERKEY me@host" and
          "authorized_keys" in calls[0]["command"][-1] and "/usr/sbin/sshd" in calls[1]["command"][-1]
          and "ssh-keygen -A" in calls[1]["command"][-1], "sandbox side: %r" % calls[:3])
    keyfile = os.path.join(home, ".config", "sbx", "api-key")
    check(open(keyfile).read() == KEY + "\n" and os.stat(keyfile).st_mode & 0o777 == 0o600,
          "api-key file")
    rc, out, err = sbx("get", "box", SBX_API_KEY=None)
    check(rc == 0 and json.loads(out)["name"] == "box", "key from the file: %r" % err)
    rc, out, err = sbx("--api-key", "wrong", "get", "box")
    check(rc == 1 and "unauthorized" in err, "--api-key wins over the environment")
    if shutil.which("ssh"):
        ssh_through_proxy(sshd)
    rc, out, err = sbx("ssh-setup", "box", "--identity", os.path.join(TMP, "none.pub"),
                       "--ssh-dir", sshd)
    check(rc == 1 and "no public key" in err, "ssh-setup without a key: %r" % err)


def test_ssh_setup_real():
    """ssh-setup through the real one-shot exec, in test_cli_sshsetup's mount namespace
    (/root, /etc/ssh and /run are tmpfs there); no sshd on this host: a warning."""
    sshd = os.path.join(TMP, "sshdir")
    ident = os.path.join(TMP, "id_real.pub")
    with open(ident, "w") as f:
        f.write("ssh-ed25519 AAAAC3NzaREALKEY me@host\n")
    for _ in range(2):
        rc, out, err = sbx("ssh-setup", "box", "--identity", ident, "--ssh-dir", sshd)
        check(rc == 0 and "sshd did not start" in err, "ssh-setup (real): %r %r" % (out, err))
    pubs = sorted(n for n in os.listdir("/etc/ssh") if n.startswith("ssh_host_") and
                  n.endswith("_key.pub"))
    check(len(pubs) >= 2 and json.loads(out)["host_keys"] == len(pubs),
          "ssh-keygen -A made the host keys: %r %r" % (pubs, out))
    want = "".join("sandbox-box %s\n" % " ".join(open("/etc/ssh/" + n).read().split()[:2])
                   for n in pubs)
    kh = open(os.path.join(sshd, "known_hosts_sandboxes")).read()
    check(sorted(kh.splitlines()) == sorted(want.splitlines()), "known_hosts %r" % kh)
    ak = "/root/.ssh/authorized_keys"
    check(open(ak).read() == "ssh-ed25519 AAAAC3NzaREALKEY me@host\n" and
          os.stat(ak).st_mode & 0o777 == 0o600 and os.stat("/root/.ssh").st_mode & 0o777 == 0o700,
          "authorized_keys: %r" % open(ak).read())
    cfg = open(os.path.join(sshd, "config")).read()
    check(cfg.count("Host sandbox-box\n") == 1 and "IdentityFile %s\n" % ident[:-4] in cfg, cfg)


def test_small_commands():
    rc, out, err = sbx("service-url", "box", "--port", "8000", "--expires", "60")
    check(rc == 0 and json.loads(out)["url"].startswith("http://box--8000."),
          "service-url: %r %r" % (out, err))
    if REAL:
        rc, out, err = sbx("wait", "box", "--timeout", "60")
        check(rc == 0 and json.loads(out)["status"] == "running", "wait: %r" % err)
        return
    src = os.path.join(TMP, "rootfs.tar")
    open(src, "wb").close()
    rc, out, err = sbx("snapshot", "build", "py", "--source", "rootfs.tar", "--capacity", "2gb",
                       "--wait")
    check(rc == 0 and json.loads(out)["status"] == "ready", "snapshot build --wait: %r" % err)
    check(STATE["snap_body"] == {"name": "py", "source": src, "capacity_gib": 2} or
          STATE["snap_body"]["source"].endswith("rootfs.tar"), "build body %r" % STATE["snap_body"])
    rc, out, err = sbx("snapshot", "capture", "ml", "--box", "box")
    check(rc == 0 and STATE["snap_body"] == {"name": "ml", "sandbox": "box"}, "capture")
    rc, out, err = sbx("snapshot", "wait", "snap-1")
    check(rc == 0, "snapshot wait")
    rc, out, err = sbx("wait", "box")
    check(rc == 0 and json.loads(out)["status"] == "running", "wait: %r" % err)


def main():
    global URL, KEY, REAL, FS, REMOTE
    # the stand-in's handshake against RFC 6455's own example (section 1.3)
    check(wsproto.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
          "RFC 6455 accept example")
    if not os.access(SBX, os.X_OK):
        fail("no " + SBX)
    os.makedirs(os.path.join(TMP, "home"))
    tests = [test_exec, test_console, test_tunnel, test_cp, test_ssh_setup, test_small_commands]
    if sys.argv[1:2] == ["--real"]:
        URL, KEY, box, work = sys.argv[2:6]
        check(box == "box", "the sandbox is called box")
        REAL, FS, REMOTE = True, "/", os.path.join(os.path.abspath(work), "sandbox") + "/"
        os.makedirs(lpath(""))
        tests.remove(test_ssh_setup)     # it would write /root/.ssh of this host
        if os.environ.get("SBX_CLI_NS") == "1":     # test_cli_sshsetup's namespace
            tests = [test_ssh_setup_real]
    else:
        os.makedirs(FS)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        URL = "http://127.0.0.1:%d" % srv.server_address[1]
    os.chdir(TMP)
    try:
        for t in tests:
            t()
            print("ok", t.__name__)
        check(not STATE.get("ws_errors") or all("unmasked" not in e for e in STATE["ws_errors"]),
              "client frames masked: %r" % STATE.get("ws_errors"))
    finally:
        subprocess.run(["rm", "-rf", TMP])
    return 0


if __name__ == "__main__":
    sys.exit(main())
